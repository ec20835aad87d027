"""``dltk serve``: a run behind an HTTP API (FastAPI on uvicorn).

Endpoints: ``POST /predict`` (the plugin's own input kind as JSON, or a multipart upload where the
plugin takes files), ``GET /health``, ``GET /info`` (the model card) and the OpenAPI schema
(``/openapi.json``, pages at ``/docs``). The engine is :mod:`dltk.serve`; how a request decodes is
declared by the run's datamodule (:mod:`dltk.serving`).

Security: binds 127.0.0.1 unless told otherwise; an optional bearer token (401 without it; ``/health``
stays open for probes); bodies over ``max_body`` bytes and requests over ``max_rows`` inputs get
413; malformed JSON, wrong types and unknown fields get 422 with one message. Nothing in a request
becomes a path or an import.
"""

from __future__ import annotations

import hmac
import json
import os
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from dltk import __version__
from dltk.errors import ConfigError, DltkUserError
from dltk.serving import RequestError, RequestFiles, RequestRows, validate

ENV = "DLTK_SERVE_SETTINGS"
"""The settings of :func:`create_app` as JSON, for uvicorn worker processes (``--workers N``)."""

DEFAULTS: dict[str, Any] = {"which": None, "max_batch": 1024, "batch_timeout_ms": 5.0, "token": None,
                            "max_body": 32 * 1024 * 1024, "max_rows": 4096, "threads": 1}


def create_app(run_dir: str, **settings: Any) -> Any:
    """The FastAPI application serving ``run_dir`` (settings: see :data:`DEFAULTS`)."""
    from dltk.run import Run
    from dltk.serve import Batcher, Predictor

    s = {**DEFAULTS, **{k: v for k, v in settings.items() if v is not None}}
    run = Run.open(run_dir)
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: Any) -> Any:
        import torch

        torch.set_num_threads(int(s["threads"]))  # per worker process; see docs/serving.md
        predictor = Predictor(run, s["which"])
        state["predictor"] = predictor
        state["card"] = model_card(run, predictor, schema, s)  # the run does not change while served
        state["batcher"] = Batcher(predictor, int(s["max_batch"]), float(s["batch_timeout_ms"]) / 1000)
        state["batcher"].start()
        yield
        await state["batcher"].stop()

    app = FastAPI(title=f"dltk serve: {run.plugin.name}/{run.preset.name}", version=__version__,
                  lifespan=lifespan, description="Predictions of a dltk run; see docs/serving.md.")
    schema = run.datamodule_class.request_schema() if run.kind != "combined" else \
        Run.open(run.member_dirs[0]).datamodule_class.request_schema()
    if schema is None:
        raise ConfigError(f"{run.name}: its datamodule declares no request schema; this run cannot be served "
                          "(see docs/serving.md)")
    _routes(app, run, s, state, schema)
    app.add_middleware(BodyLimit, max_body=int(s["max_body"]))  # type: ignore[arg-type]
    return app


def app_from_env() -> Any:
    """The application of a uvicorn worker process, from :data:`ENV`."""
    settings = json.loads(os.environ[ENV])
    return create_app(settings.pop("run"), **settings)


def _routes(app: Any, run: Any, s: dict[str, Any], state: dict[str, Any], schema: dict[str, Any] | None) -> None:
    token = s["token"]
    upload = {"multipart/form-data": {"schema": {"type": "object", "properties": {"files": {
        "type": "array", "items": {"type": "string", "format": "binary"}}}}}}

    def refused(request: Request) -> Any:
        given = request.headers.get("authorization", "")
        if token and not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return JSONResponse({"detail": "missing or wrong bearer token"}, status_code=401,
                                headers={"WWW-Authenticate": "Bearer"})
        return None

    @app.get("/health")
    async def health() -> dict[str, Any]:
        """Liveness: 200 once the model is loaded."""
        return {"status": "ok", "batches": state["batcher"].batches if "batcher" in state else 0}

    @app.get("/info")
    async def info(request: Request) -> Any:
        """The model card: plugin, preset, training data and split, test metrics, input schema."""
        return refused(request) or state["card"]

    @app.post("/predict", openapi_extra={"requestBody": {"required": True, "content": {
        "application/json": {"schema": schema}, **upload}}})
    async def predict(request: Request) -> Any:
        """Predictions with the same columns as ``dltk predict`` (a per-row ``error``)."""
        denied = refused(request)
        if denied is not None:
            return denied
        try:
            decoded = await _decode(request, state["predictor"].datamodule_class, schema, int(s["max_rows"]))
            table = await state["batcher"].submit(decoded)
        except _Refusal as exc:
            return JSONResponse({"detail": str(exc)}, status_code=exc.status)
        except (RequestError, DltkUserError) as exc:  # a whole request the reader refused: its message
            message = " ".join(str(exc).split()).replace(str(state["predictor"].tmp_dir), "<request>")
            return JSONResponse({"detail": message}, status_code=422)
        return Response(answer(table), media_type="application/json")


class _Refusal(Exception):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


async def _decode(request: Any, cls: Any, schema: dict[str, Any] | None, max_rows: int) -> RequestRows | RequestFiles:
    """The request body as the datamodule's decoded input (422/413/415 on bad input)."""
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await request.form(max_files=max_rows, max_fields=16)
        files = [await v.read() for _, v in form.multi_items() if hasattr(v, "read")]
        if not files:
            raise RequestError("multipart body without a file part")
        decoded = cls.decode_upload(files)
        if decoded is None:
            raise _Refusal(f"{cls.__name__} takes JSON bodies, not uploads", 415)
    else:
        body = await request.body()
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise RequestError(f"malformed JSON body: {str(exc)[:120]}") from None
        validate(payload, schema)
        decoded = cls.decode_request(payload)
    n = len(decoded.lines) if isinstance(decoded, RequestRows) else len(decoded.files)
    if n > max_rows:
        raise _Refusal(f"{n} inputs in one request; the limit is {max_rows} (--max-rows)", 413)
    if isinstance(decoded, RequestRows) and any("\n" in line or "\r" in line for line in decoded.lines):
        raise RequestError("an input contains a line break")
    return decoded


def answer(table: Any) -> bytes:
    """A prediction table as the JSON answer: ``{"predictions": [row, ...], "counts": {...}}``."""
    ok = int((table["error"].fillna("") == "").sum()) if "error" in table else len(table)
    counts = {"rows": len(table), "predicted": ok, "errors": len(table) - ok}
    rows = table.to_json(orient="records", double_precision=15)
    return f'{{"predictions":{rows},"counts":{json.dumps(counts)}}}'.encode()


def model_card(run: Any, predictor: Any, schema: dict[str, Any], s: dict[str, Any]) -> dict[str, Any]:
    """What ``GET /info`` answers."""
    data = run.config.get("data") or {}
    init = data.get("init_args") or {}
    info = predictor.model.data_info
    return {
        "dltk_version": __version__, "plugin": run.plugin.name, "preset": run.preset.name, "kind": run.kind,
        "members": len(run.members) if run.kind != "single" else 1, "run": run.dir.name,
        "checkpoint": s["which"] or run.default_checkpoint(),
        "data": {"class_path": data.get("class_path"), "init_args": init},
        "split": {k: v for k, v in init.items() if "split" in k or "fraction" in k or k.endswith("seed")},
        "task_type": info.get("task_type"), "task_names": list(info.get("task_names") or []),
        "test_metrics": {k: v for k, v in run.metrics.items() if k.startswith("test/")} or run.metrics,
        "input_schema": schema, "uploads": _takes_uploads(predictor),
        "limits": {"max_rows": s["max_rows"], "max_body": s["max_body"], "max_batch": s["max_batch"]},
    }


def _takes_uploads(predictor: Any) -> bool:
    from dltk.base import BaseDataModule

    return predictor.datamodule_class.decode_upload.__func__ is not BaseDataModule.decode_upload.__func__


class BodyLimit:
    """ASGI middleware: 413 for a body over ``max_body`` bytes (declared or streamed)."""

    def __init__(self, app: Any, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length", b"0")
        if declared.isdigit() and int(declared) > self.max_body:
            await _too_large(send, self.max_body)
            return
        seen = 0

        async def limited() -> Any:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_body:
                raise _TooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await _too_large(send, self.max_body)


class _TooLarge(Exception):
    pass


async def _too_large(send: Any, limit: int) -> None:
    body = json.dumps({"detail": f"request body over {limit} bytes (--max-body-mb)"}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def serve(run: str, host: str = "127.0.0.1", port: int = 8000, workers: int = 1, **settings: Any) -> int:
    """Serve ``run`` until SIGTERM/SIGINT; requests in flight are answered before the exit."""
    import uvicorn

    settings = {k: v for k, v in settings.items() if v is not None}
    settings.setdefault("token", os.environ.get("DLTK_SERVE_TOKEN") or None)
    options: dict[str, Any] = {"host": host, "port": port, "access_log": False, "log_level": "info",
                               "timeout_graceful_shutdown": 60}
    if workers > 1:  # each worker process loads the run once
        os.environ[ENV] = json.dumps({"run": str(run), **settings})
        create_app(run, **settings)  # a bad run: one line, before any worker starts
        uvicorn.run("dltk.serve_app:app_from_env", factory=True, workers=workers, **options)
    else:
        uvicorn.run(create_app(run, **settings), **options)
    return 0
