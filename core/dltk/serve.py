"""The prediction engine behind ``dltk serve``: a run opened once, requests micro-batched.

:class:`Predictor` opens a run with :meth:`dltk.run.Run.open` (a plain, ensemble or combined run)
and keeps its models in memory. A decoded request (:mod:`dltk.serving`) is written into a private
temporary directory under a name core chooses, and predicted exactly as ``dltk predict`` would
(the datamodule's ``predict_chunks`` or ``predict_file``, averaged with the members' spread), so a
served answer has the same columns as the CSV ``dltk predict`` writes, ``error`` included.

:class:`Batcher` is an asyncio queue: rows of requests arriving within ``batch_timeout`` seconds
(up to ``max_batch`` rows) are predicted as one table by a single worker thread; the answer of each
request is its slice. A batch that fails as a whole is retried request by request, so one request
cannot fail another. The web layer is :mod:`dltk.serve_app`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import itertools
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd

from dltk import options as plugin_options
from dltk.errors import ConfigError
from dltk.serving import SUFFIX, RequestError, RequestFiles, RequestRows


class Predictor:
    """A run's model(s) in memory, predicting decoded requests (one thread at a time)."""

    def __init__(self, run: Any, which: str | None = None) -> None:
        from dltk.predict import prediction_frame
        from dltk.trainer_cli import quiet_lightning

        quiet_lightning()
        self.run = run
        self._frame = prediction_frame
        if run.kind == "combined":
            from dltk.combine import open_members

            self.members = open_members(run, which)
            self.model = self.members[0].model
            self.datamodule_class: type = type(self.members[0].datamodule)
            self.with_std = True
        else:
            self.models = run.models(which)
            self.model = self.models[0]
            self.datamodule = run.datamodule()
            self.datamodule_class = type(self.datamodule)
            self.with_std = len(self.models) > 1
            self.options = plugin_options.parse(self.datamodule_class.predict_options, [], "dltk serve")
            self.predict_kwargs = dataclasses.asdict(self.options) if dataclasses.is_dataclass(self.options) else {}
        self.tmp_dir = Path(tempfile.mkdtemp(prefix="dltk-serve-"))
        self._ids = itertools.count()

    def close(self) -> None:
        shutil.rmtree(self.tmp_dir, ignore_errors=True)

    # -- prediction ---------------------------------------------------------------------------------
    def predict_rows(self, requests: list[RequestRows]) -> list[pd.DataFrame]:
        """Predict the rows of several requests as one table; each request's slice of the answer."""
        first = requests[0]
        text = io.StringIO()
        if first.header is not None:
            text.write(first.header + "\n")
        for req in requests:
            for line in req.lines:
                text.write(line + "\n")
        path = self._new_path(first.suffix)
        try:
            path.write_text(text.getvalue(), encoding="utf-8")
            table = self._score_table(str(path))
        finally:
            path.unlink(missing_ok=True)
        sizes = [len(r.lines) for r in requests]
        if len(table) != sum(sizes):
            raise RequestError(f"the model's reader returned {len(table)} rows for {sum(sizes)} inputs")
        out, start = [], 0
        for req, size in zip(requests, sizes, strict=True):
            part = table.iloc[start:start + size].reset_index(drop=True)
            for column in req.index_columns:
                if column in part and start:
                    part[column] = part[column] - start
            out.append(part)
            start += size
        return out

    def _score_table(self, path: str) -> pd.DataFrame:
        from dltk.predict import score_chunks

        with contextlib.redirect_stdout(io.StringIO()):
            if self.run.kind == "combined":
                from dltk.combine import score_members

                chunks = score_members(self.members, path, self.run.dir)
            else:
                chunks = score_chunks(self.models, self.datamodule.predict_chunks(
                    path, data_info=self.model.data_info, **self.predict_kwargs))
            frames = [self._frame(self.model, r, p, s, self.with_std) for r, p, s in chunks]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def predict_files(self, request: RequestFiles) -> pd.DataFrame:
        """Predict whole files (images, pose files) with the datamodule's ``predict_file``."""
        if self.run.kind == "combined":
            raise RequestError("a combined run predicts tables of rows only")
        folder = self._new_path("")
        out = folder.with_name(folder.name + "-out")  # the table, and whatever the plugin writes beside it
        folder.mkdir()
        try:
            paths = []
            for i, (suffix, data) in enumerate(request.files):
                paths.append(folder / f"{i:06d}{_suffix(suffix)}")
                paths[-1].write_bytes(data)
            target = folder if request.folder else paths[0]
            out.mkdir()
            with contextlib.redirect_stdout(io.StringIO()):
                counts = self.datamodule.predict_file(str(target), str(out / "predictions.csv"), self.models,
                                                      self.options)
            if counts is None or not (out / "predictions.csv").is_file():
                raise RequestError("this run's datamodule does not answer whole files with a table")
            table = pd.read_csv(out / "predictions.csv", keep_default_na=False, na_values=[""])
        finally:
            shutil.rmtree(folder, ignore_errors=True)
            shutil.rmtree(out, ignore_errors=True)
        if "error" in table:
            table["error"] = table["error"].fillna("")
        prefix = str(folder) + "/"
        return table.apply(lambda c: c.str.replace(prefix, "", regex=False) if c.dtype == object else c)

    def _new_path(self, suffix: str) -> Path:
        return self.tmp_dir / f"{next(self._ids):08d}{_suffix(suffix) if suffix else ''}"


def _suffix(suffix: str) -> str:
    if not SUFFIX.match(suffix):
        raise ConfigError(f"a plugin asked for the file suffix {suffix!r}; allowed: {SUFFIX.pattern}")
    return suffix


_STOP = object()


class Batcher:
    """Micro-batching in front of a :class:`Predictor`: one worker thread, an asyncio queue."""

    def __init__(self, predictor: Predictor, max_batch: int = 1024, batch_timeout: float = 0.005) -> None:
        self.predictor = predictor
        self.max_batch = max(1, max_batch)
        self.batch_timeout = max(0.0, batch_timeout)
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="dltk-serve")
        self.task: asyncio.Task[None] | None = None
        self.batches = 0

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        """Answer everything queued, then stop the worker."""
        await self.queue.put(_STOP)
        if self.task is not None:
            await self.task
        self.executor.shutdown(wait=True)
        self.predictor.close()

    async def submit(self, request: RequestRows | RequestFiles) -> pd.DataFrame:
        future: asyncio.Future[pd.DataFrame] = asyncio.get_running_loop().create_future()
        await self.queue.put((request, future))
        return await future

    async def _loop(self) -> None:
        pending: Any = None
        while True:
            item = pending if pending is not None else await self.queue.get()
            pending = None
            if item is _STOP:
                return
            batch = [item]
            if isinstance(item[0], RequestRows):
                batch, pending = await self._collect(batch)
            await self._run(batch)

    async def _collect(self, batch: list[Any]) -> tuple[list[Any], Any]:
        """More row requests until ``max_batch`` rows or ``batch_timeout`` after the first."""
        loop = asyncio.get_running_loop()
        rows = len(batch[0][0].lines)
        deadline = loop.time() + self.batch_timeout
        while rows < self.max_batch:
            try:
                nxt = self.queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    nxt = await asyncio.wait_for(self.queue.get(), remaining)
                except asyncio.TimeoutError:
                    break
            if nxt is _STOP or not isinstance(nxt[0], RequestRows) or rows + len(nxt[0].lines) > self.max_batch:
                return batch, nxt
            batch.append(nxt)
            rows += len(nxt[0].lines)
        return batch, None

    async def _run(self, batch: list[Any]) -> None:
        loop = asyncio.get_running_loop()
        self.batches += 1
        if isinstance(batch[0][0], RequestFiles):
            groups = [[b] for b in batch]
        else:
            groups = [batch]
        for group in groups:
            try:
                answers = await loop.run_in_executor(self.executor, self._predict, [g[0] for g in group])
            except Exception as exc:  # noqa: BLE001 -- a failed batch is retried one request at a time
                if len(group) == 1:
                    _settle(group[0][1], exc=exc)
                    continue
                for single in group:
                    await self._run([single])
                continue
            for (_, future), answer in zip(group, answers, strict=True):
                _settle(future, answer)

    def _predict(self, requests: list[Any]) -> list[pd.DataFrame]:
        if isinstance(requests[0], RequestFiles):
            return [self.predictor.predict_files(requests[0])]
        return self.predictor.predict_rows(requests)


def _settle(future: asyncio.Future[Any], answer: Any = None, exc: BaseException | None = None) -> None:
    if future.done():  # the client went away
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(answer)
