"""The engine data-parallel work runs on: this process (compute.engine: local) or a Ray cluster (ray).

Work is a function over chunks of rows, and results come back in the chunks'
order whichever engine ran them, so a stage writes the same bytes either way.
On Ray a bounded window of chunks is in flight (memory stays flat as the input
grows) and each result carries the id of the node that computed it, counted in
`Usage` so that a run can say where its work went.

Ray is optional (`pip install 'sentipipe[ray]'`) and imported only when the
engine is ray; the cluster's address is Ray's own RAY_ADDRESS.
"""

from __future__ import annotations

import os
import socket
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from sentipipe.errors import SentipipeError

if TYPE_CHECKING:
    from sentipipe.config import ComputeParams

T = TypeVar("T")
R = TypeVar("R")
ADDRESS_ENV = "RAY_ADDRESS"
INSTALL = "pip install 'sentipipe[ray]'"
IN_FLIGHT_PER_CPU = 2  # chunks queued a worker: it never waits for the next, and memory stays bounded


@dataclass
class Usage:
    """Chunks computed per node (one node, "local", on the local engine)."""

    engine: str
    chunks: Counter = field(default_factory=Counter)

    def summary(self) -> str:
        if self.engine == "local":
            return f"{sum(self.chunks.values())} chunks in this process"
        nodes = ", ".join(f"{node[:8]} {n}" for node, n in sorted(self.chunks.items()))
        return f"{sum(self.chunks.values())} chunks on Ray over {len(self.chunks)} node(s) ({nodes})"


def with_inputs(items: Iterable[T], run: Callable[[Iterable[T]], Iterator[R]]) -> Iterator[tuple[T, R]]:
    """(item, result) pairs of an order-keeping `run` over items: the inputs wait here, not on the workers."""
    sent: deque = deque()

    def remember() -> Iterator[T]:
        for item in items:
            sent.append(item)
            yield item

    for result in run(remember()):
        yield sent.popleft(), result


def _ray():
    try:
        import ray  # noqa: PLC0415 - optional: only compute.engine ray needs it
    except ImportError:
        raise SentipipeError(f"compute.engine is ray, but Ray is not installed: {INSTALL}") from None
    return ray


def _reachable(address: str) -> None:
    """A host:port address that answers nothing fails here at once (ray.init would retry for minutes)."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        return  # "auto", "local": Ray's own ways of finding a cluster
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        raise SentipipeError(
            f"compute.engine ray: nothing answers at {ADDRESS_ENV}={address} ({exc.strerror or exc}); "
            f"start the cluster (ray start --head) or point {ADDRESS_ENV} at its head"
        ) from None


def connect():
    """The Ray module, connected to the cluster at RAY_ADDRESS (unset: a local Ray instance started here)."""
    ray = _ray()
    if not ray.is_initialized():
        address = os.environ.get(ADDRESS_ENV) or None
        if address:
            _reachable(address)
        try:
            ray.init(address=address, logging_level="ERROR", log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = f"{ADDRESS_ENV}={address}" if address else "a local Ray instance"
            raise SentipipeError(f"compute.engine ray: cannot reach {where}: {str(exc).splitlines()[0]}") from None
    return ray


def cluster_cpus() -> int:
    return max(1, int(connect().cluster_resources().get("CPU", 1)))


def node_id() -> str:
    return _ray().get_runtime_context().get_node_id()


def _on_node(fn: Callable[[T], R], item: T) -> tuple[str, R]:
    return node_id(), fn(item)


class _Holder:
    """A Ray actor holding what `build` makes (a loaded model) for every chunk sent to it."""

    def __init__(self, build: Callable[[], Any]):
        self.value = build()

    def run(self, fn: Callable[[Any, T], R], item: T) -> tuple[str, R]:
        return node_id(), fn(self.value, item)


def _ordered(submit: Callable[[int, T], Any], items: Iterable[T], in_flight: int, usage: Usage) -> Iterator:
    ray, pending = connect(), deque()

    def take():
        node, result = ray.get(pending.popleft())
        usage.chunks[node] += 1
        return result

    for i, item in enumerate(items):
        pending.append(submit(i, item))
        if len(pending) >= in_flight:
            yield take()
    while pending:
        yield take()


def map_chunks(fn: Callable[[T], R], items: Iterable[T], params: ComputeParams, usage: Usage) -> Iterator[R]:
    """fn over each item, results in the items' order: here, or as Ray tasks spread over the cluster."""
    if params.engine == "local":
        for item in items:
            usage.chunks["local"] += 1
            yield fn(item)
        return
    ray = connect()
    task = ray.remote(num_cpus=1, scheduling_strategy="SPREAD")(_on_node)
    yield from _ordered(lambda _, item: task.remote(fn, item), items, IN_FLIGHT_PER_CPU * cluster_cpus(), usage)


def map_with(
    build: Callable[[], Any], fn: Callable[[Any, T], R], items: Iterable[T], params: ComputeParams, usage: Usage
) -> Iterator[R]:
    """fn(built, item) for each item, in order; on Ray, one actor a CPU of the cluster builds its own once."""
    if params.engine == "local":
        built = build()
        for item in items:
            usage.chunks["local"] += 1
            yield fn(built, item)
        return
    ray = connect()
    cpus = cluster_cpus()
    holder = ray.remote(num_cpus=1, scheduling_strategy="SPREAD")(_Holder)
    actors: list = []  # one a CPU at most, started as chunks come: a short input loads the model once

    def submit(i: int, item: T):
        if len(actors) < cpus and i >= len(actors):
            actors.append(holder.remote(build))
        return actors[i % len(actors)].run.remote(fn, item)

    try:
        yield from _ordered(submit, items, IN_FLIGHT_PER_CPU * cpus, usage)
    finally:
        for actor in actors:
            ray.kill(actor)
