"""How ``dltk serve`` reads a pose request: one pose file (DeepLabCut CSV or SLEAP HDF5), uploaded
as a multipart file part or sent as ``{"pose_file": "<base64>"}``.

Core writes the file into a private folder (``.h5`` when it starts with the HDF5 signature, else
``.csv``; never a name from the request) and predicts it as ``dltk predict`` would: one row per
frame (``frame``, ``time_s``, ``behavior``, ``prob_<class>``, with ``_std`` columns for an ensemble).
"""

from __future__ import annotations

from typing import Any

from dltk.serving import RequestError, RequestFiles, b64decode

HDF5 = b"\x89HDF\r\n\x1a\n"

SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["pose_file"],
    "properties": {"pose_file": {"type": "string", "minLength": 1,
                                 "description": "a DeepLabCut CSV or SLEAP HDF5 pose file, base64-encoded"}},
}


def decode_files(files: list[bytes]) -> RequestFiles:
    if len(files) != 1:
        raise RequestError(f"one pose file per request, got {len(files)}")
    data = files[0]
    return RequestFiles([(".h5" if data.startswith(HDF5) else ".csv", data)], folder=False)


class PoseServing:
    """The ``dltk serve`` hooks of the pose datamodules (a mixin before ``BaseDataModule``)."""

    @classmethod
    def request_schema(cls) -> dict[str, Any]:
        return SCHEMA

    @classmethod
    def decode_request(cls, payload: dict[str, Any]) -> RequestFiles:
        return decode_files([b64decode(payload["pose_file"], "body.pose_file")])

    @classmethod
    def decode_upload(cls, files: list[bytes]) -> RequestFiles:
        return decode_files(files)
