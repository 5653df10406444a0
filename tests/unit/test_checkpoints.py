from sentipipe.training import checkpoints


def test_the_code_digest_changes_with_any_package_source_or_the_stage_script(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "a.py").write_text("x = 1\n")
    (package / "sub" / "b.py").write_text("y = 2\n")
    (package / "notes.txt").write_text("not code\n")
    script = tmp_path / "train.py"
    script.write_text("run()\n")
    before = checkpoints.code_digest(package, str(script))
    assert checkpoints.code_digest(package, str(script)) == before
    (package / "notes.txt").write_text("still not code\n")
    assert checkpoints.code_digest(package, str(script)) == before
    (package / "sub" / "b.py").write_text("y = 3\n")
    edited = checkpoints.code_digest(package, str(script))
    assert edited != before
    script.write_text("run(fast=True)\n")
    assert checkpoints.code_digest(package, str(script)) != edited


def test_a_checkpoint_of_other_code_is_not_resumed(tmp_path):
    path = tmp_path / "checkpoint.pt"
    section, data = {"max_steps": 10}, {"data.md5.train": "abc"}
    checkpoints.save(path, {"fingerprint": checkpoints.fingerprint(section, data, code="old"), "step": 5})
    assert checkpoints.load(path, checkpoints.fingerprint(section, data, code="new"), fresh=False) is None
    resumed = checkpoints.load(path, checkpoints.fingerprint(section, data, code="old"), fresh=False)
    assert resumed is not None and resumed["step"] == 5
    assert checkpoints.fingerprint(section, data) == checkpoints.fingerprint(section, data)  # this package, stable
