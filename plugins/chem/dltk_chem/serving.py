"""How ``dltk serve`` reads a chem request: ``{"smiles": ["CCO", "c1ccccc1", ...]}``.

The SMILES become rows of the CSV that ``dltk predict`` reads (a ``smiles`` column), so a served
answer is the ``dltk predict`` table of the same molecules: ``line``, ``id``, ``smiles``, ``error``
(an unparsable or empty SMILES gets its error; the others are scored) and the model's columns.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from dltk.serving import RequestRows

MAX_SMILES_LENGTH = 4096
"""Longer strings are refused (422): no drug-like SMILES comes near it."""

SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["smiles"],
    "properties": {"smiles": {"type": "array", "minItems": 1, "description": "SMILES strings, one per molecule",
                              "items": {"type": "string", "maxLength": MAX_SMILES_LENGTH}}},
    "example": {"smiles": ["CCO", "c1ccccc1O"]},
}


def decode(payload: dict[str, Any]) -> RequestRows:
    """SMILES -> CSV lines ``smiles,n`` (``n`` keeps a blank SMILES from being a blank line, which a
    CSV reader skips; ``dltk predict`` ignores the column)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for i, smiles in enumerate(payload["smiles"], start=1):
        writer.writerow([smiles, i])
    return RequestRows(".csv", buffer.getvalue().splitlines(), header="smiles,n", index_columns=("line",))
