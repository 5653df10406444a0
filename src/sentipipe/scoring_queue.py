"""How the server scores: requests that arrive together are scored together, one forward pass a batch.

A request waits for nothing: the batch is whatever queued while the previous one
ran. With a prediction log, each request's rows come back with their features from
the same pass (the log's length, unseen words and sentence vector).
"""

from __future__ import annotations

import asyncio

from sentipipe.serving import Served


class Batcher:
    """Requests that arrive while a batch is being scored are scored together in the next one.

    With a prediction log, each request's rows come back with their features (the log's
    length, unseen words and sentence vector), taken from the same pass over the batch.
    """

    def __init__(self, model: Served, max_rows: int = 256, features: bool = False):
        self.model, self.max_rows, self.features = model, max_rows, features
        self.queue: asyncio.Queue | None = None
        self.task: asyncio.Task | None = None  # held: the loop keeps only a weak reference to a task

    def _scored(self, texts: list[str], params: dict) -> tuple[list[dict], dict | None]:
        if not self.features:
            return self.model.predict_rows(texts, params), None
        if params:  # options (explain): the rows they ask for, and the log's features of the same texts
            return self.model.predict_rows(texts, params), self.model.scored(texts)[1]
        return self.model.scored(texts)

    async def score(self, texts: list[str], params: dict) -> tuple[list[dict], dict | None]:
        if params or len(texts) >= self.max_rows:  # options, or a batch of its own: scored on its own
            return await asyncio.to_thread(self._scored, texts, params)
        if self.queue is None:
            self.queue = asyncio.Queue()
            self.task = asyncio.get_running_loop().create_task(self._run())
        done = asyncio.get_running_loop().create_future()
        await self.queue.put((texts, done))
        return await done

    async def _run(self) -> None:
        while True:
            waiting = [await self.queue.get()]
            rows = len(waiting[0][0])
            while rows < self.max_rows and not self.queue.empty():
                waiting.append(self.queue.get_nowait())
                rows += len(waiting[-1][0])
            texts = [t for batch, _ in waiting for t in batch]
            try:
                out, features = await asyncio.to_thread(self._scored, texts, {})
            except Exception as exc:  # noqa: BLE001 - one request's failure is not its neighbours': each alone
                if len(waiting) == 1:
                    settle(waiting[0][1], error=exc)
                else:
                    await self._one_by_one(waiting)
                continue
            start = 0
            for batch, done in waiting:
                end = start + len(batch)
                part = None if features is None else {k: v[start:end] for k, v in features.items()}
                settle(done, (out[start:end], part))
                start = end

    async def _one_by_one(self, waiting: list) -> None:
        for batch, done in waiting:
            try:
                settle(done, await asyncio.to_thread(self._scored, batch, {}))
            except Exception as exc:  # noqa: BLE001 - the request that failed hears of it
                settle(done, error=exc)


def settle(done: asyncio.Future, rows: tuple | None = None, error: Exception | None = None) -> None:
    """A waiting request's outcome; one whose handler was cancelled has nobody waiting (and must not stop the loop)."""
    if done.done():
        return
    if error is not None:
        done.set_exception(error)
    else:
        done.set_result(rows)
