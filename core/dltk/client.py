"""A small Python client of ``dltk serve`` (on httpx)::

    from dltk.client import Client

    with Client("http://127.0.0.1:8000", token="...") as client:
        client.info()["plugin"]                                  # the model card
        rows = client.predict({"smiles": ["CCO", "c1ccccc1"]})   # one dict per input row
        rows = client.predict_files(["cell1.png", "cell2.png"])  # plugins that take uploads

Each row has the columns of ``dltk predict`` (``error`` is empty where the row was scored). A
refused request raises :class:`ServeError` with the server's status code and one-line message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class ServeError(RuntimeError):
    """A request the server refused (4xx) or failed (5xx)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class Client:
    """Talks to one ``dltk serve``; ``token``: its bearer token, if it requires one."""

    def __init__(self, url: str = "http://127.0.0.1:8000", token: str | None = None, timeout: float = 60.0) -> None:
        try:
            import httpx
        except ImportError as exc:  # pragma: no cover - the serve extra brings httpx
            raise ImportError("dltk.client needs httpx: pip install 'dltk[serve]'") from exc
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def health(self) -> dict[str, Any]:
        return self._json(self._http.get("/health"))

    def info(self) -> dict[str, Any]:
        """The model card: plugin, preset, data and split, test metrics, input schema."""
        return self._json(self._http.get("/info"))

    def predict(self, payload: dict[str, Any]) -> list[dict[str, Any]]:
        """Predict a JSON body in the run's input schema (``info()["input_schema"]``)."""
        return self.answer(payload)["predictions"]

    def answer(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The whole answer: ``{"predictions": [...], "counts": {"rows", "predicted", "errors"}}``."""
        return self._json(self._http.post("/predict", json=payload))

    def predict_files(self, paths: list[str | Path]) -> list[dict[str, Any]]:
        """Upload files (images, pose files) as multipart parts; their names are not sent."""
        files = [("files", (f"{i}", Path(p).read_bytes())) for i, p in enumerate(paths)]
        return self._json(self._http.post("/predict", files=files))["predictions"]

    @staticmethod
    def _json(response: Any) -> Any:
        if response.status_code >= 400:
            try:
                message = response.json().get("detail", response.text)
            except ValueError:
                message = response.text
            raise ServeError(response.status_code, str(message))
        return response.json()
