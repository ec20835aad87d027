"""How ``dltk serve`` reads an image request: ``{"images": ["<base64 PNG/TIFF/JPEG>", ...]}``, or
the same images as a multipart upload (one file part each).

Core writes the images into a private folder as ``000000.png``, ``000001.tif``, ... (the suffix from
the image's own magic bytes, never from a name in the request) and predicts the folder as
``dltk predict`` would: the answer's ``id`` is that name (the image's position in the request),
then the predicted class, ``prob_<class>`` and ``error`` (an undecodable image gets its error; the
others are scored).
"""

from __future__ import annotations

from typing import Any

from dltk.serving import RequestFiles, b64decode

MAGIC = ((b"\x89PNG\r\n\x1a\n", ".png"), (b"II*\x00", ".tif"), (b"MM\x00*", ".tif"), (b"\xff\xd8\xff", ".jpg"))

SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["images"],
    "properties": {"images": {"type": "array", "minItems": 1,
                              "description": "base64 PNG, TIFF or JPEG images (a data: URL prefix is allowed)",
                              "items": {"type": "string", "minLength": 1}}},
}


def suffix(data: bytes) -> str:
    """The file suffix of an image by its magic bytes (``.png`` for anything unknown: the reader then
    reports the image as unreadable on its row)."""
    return next((s for magic, s in MAGIC if data.startswith(magic)), ".png")


def decode(payload: dict[str, Any]) -> RequestFiles:
    images = [b64decode(value, f"body.images[{i}]") for i, value in enumerate(payload["images"])]
    return decode_files(images)


def decode_files(files: list[bytes]) -> RequestFiles:
    return RequestFiles([(suffix(data), data) for data in files], folder=True)


class ImageServing:
    """The ``dltk serve`` hooks of the image-classification datamodules (a mixin before
    ``BaseDataModule``)."""

    @classmethod
    def request_schema(cls) -> dict[str, Any]:
        return SCHEMA

    @classmethod
    def decode_request(cls, payload: dict[str, Any]) -> RequestFiles:
        return decode(payload)

    @classmethod
    def decode_upload(cls, files: list[bytes]) -> RequestFiles:
        return decode_files(files)
