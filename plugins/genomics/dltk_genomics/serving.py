"""How ``dltk serve`` reads a sequence request: ``{"sequences": ["ACGT...", ...], "ids": [...]}``.

The sequences become lines ``id sequence`` of the one-sequence-per-line file ``dltk predict``
reads, so a served answer is the ``dltk predict`` table of the same sequences: ``row``, ``id``,
``length``, ``error`` (a non-IUPAC character gets its error; the others are scored) and the model's
columns. Without ``ids``, the ids are ``seq1, seq2, ...`` as for a file of bare sequences.
"""

from __future__ import annotations

from typing import Any

from dltk.serving import RequestError, RequestRows

MAX_LENGTH = 100_000
"""Longer sequences are refused (422); a model crops to its own ``seq_length`` anyway."""

SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["sequences"],
    "properties": {
        "sequences": {"type": "array", "minItems": 1, "description": "DNA/RNA sequences (IUPAC letters)",
                      "items": {"type": "string", "minLength": 1, "maxLength": MAX_LENGTH, "pattern": r"^\S+$"}},
        "ids": {"type": "array", "description": "one id per sequence (default seq1, seq2, ...)",
                "items": {"type": "string", "pattern": r"^[^\s#>]\S{0,63}$"}}},
    "example": {"sequences": ["ACGTGCCCATATAAGGCA", "TTTTACGT"]},
}


def decode(payload: dict[str, Any]) -> RequestRows:
    sequences, ids = payload["sequences"], payload.get("ids")
    if ids is not None and len(ids) != len(sequences):
        raise RequestError(f"body.ids: {len(ids)} ids for {len(sequences)} sequences")
    ids = ids or [f"seq{i}" for i in range(1, len(sequences) + 1)]
    return RequestRows(".txt", [f"{i} {s}" for i, s in zip(ids, sequences, strict=True)], index_columns=("row",))
