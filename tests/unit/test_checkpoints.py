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


def test_a_finished_marker_is_never_resumed_and_needs_no_torch(tmp_path):
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    path = tmp_path / "teacher_checkpoint.pt"
    code = (
        "import sys; from pathlib import Path; from sentipipe.training import checkpoints as c; "
        f"p = Path({str(path)!r}); c.write_finished(p); "
        "assert c.load(p, 'any', fresh=False) is None; assert 'torch' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    assert path.read_bytes() == checkpoints.FINISHED
    checkpoints.save(path, {"fingerprint": "f", "complete": False, "step": 3})  # a real one over it resumes again
    assert checkpoints.load(path, "f", fresh=False)["step"] == 3
