"""The engine seam (sentipipe.compute) on the local engine; tests/integration/test_ray_cluster.py runs Ray."""

import sys

import pytest

from sentipipe import compute
from sentipipe.config import ComputeParams
from sentipipe.errors import SentipipeError


def test_the_local_engine_keeps_the_order_and_counts_the_chunks():
    usage = compute.Usage("local")
    out = list(compute.map_chunks(lambda xs: [x * 2 for x in xs], iter([[1, 2], [3], [4, 5]]), ComputeParams(), usage))
    assert out == [[2, 4], [6], [8, 10]]
    assert usage.summary() == "3 chunks in this process"


def test_a_built_object_is_built_once_for_every_chunk():
    built = []
    build = lambda: built.append("model") or len(built)
    out = list(compute.map_with(build, lambda model, x: (model, x), range(3), ComputeParams(), compute.Usage("local")))
    assert out == [(1, 0), (1, 1), (1, 2)] and built == ["model"]


def test_inputs_are_paired_with_their_results_without_travelling_to_the_workers():
    seen = []

    def run(items):
        for item in items:
            seen.append(item)
            yield item.upper()

    assert list(compute.with_inputs(iter("abc"), run)) == [("a", "A"), ("b", "B"), ("c", "C")]
    assert seen == ["a", "b", "c"]


def test_the_ray_engine_without_ray_installed_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(SentipipeError, match=r"pip install 'sentipipe\[ray\]'"):
        list(compute.map_chunks(len, [[1]], ComputeParams(engine="ray"), compute.Usage("ray")))


def test_an_address_where_no_cluster_answers_fails_at_once_naming_it(monkeypatch):
    from tests.servers import free_port

    address = f"127.0.0.1:{free_port()}"
    monkeypatch.setenv("RAY_ADDRESS", address)
    with pytest.raises(SentipipeError, match=f"nothing answers at RAY_ADDRESS={address}.*ray start --head"):
        list(compute.map_chunks(len, [[1]], ComputeParams(engine="ray"), compute.Usage("ray")))
