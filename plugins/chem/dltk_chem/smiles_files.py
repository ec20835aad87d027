"""A user's molecule files: a CSV of SMILES and labels (:func:`load_smiles_csv`) and the streaming
reader of prediction input (:func:`read_smiles_file`: ``.smi``/``.smiles``, CSV or TSV, gzipped or
not). SMILES are kept raw: unparsable structures are *not* dropped here; the featurizer flags them.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np

from dltk.errors import DataError
from dltk_chem.tables import MolTable


def _open_text(path: Path) -> IO[str]:
    """Open a (possibly gzipped) text file for reading, universal newlines, BOM stripped."""
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


_MISSING = {"", "nan", "na", "n/a"}


def _number(path: Path, value: str, row: int, column: str) -> float:
    text = value.strip()
    if text.lower() in _MISSING:
        return math.nan
    try:
        number = float(text)
    except ValueError:
        raise DataError(path, f"label {value!r} is not a number (leave it blank when missing)",
                        row=row, field=column) from None
    if not math.isfinite(number):
        raise DataError(path, f"label {value!r} is not finite", row=row, field=column)
    return number


def _find_column(path: Path, header: list[str], name: str) -> int:
    """Index of column ``name``: exact match first, else the first case-insensitive match."""
    if name in header:
        return header.index(name)
    lowered = [h.lower() for h in header]
    if name.lower() in lowered:
        return lowered.index(name.lower())
    raise DataError(path, f"no column {name!r}; available columns: {header}", row=1, field=name)


def load_smiles_csv(path: str | Path, smiles_column: str = "smiles",
                    target_columns: list[str] | None = None,
                    id_column: str | None = None) -> MolTable:
    """Read a user CSV of molecules and labels.

    Args:
        path: CSV file (``.gz`` allowed) with a header row.
        smiles_column: the SMILES column.
        target_columns: label columns; default every column except the SMILES and id columns.
            Column names match exactly, else case-insensitively.
        id_column: identifier column; default the line number.

    Returns:
        A :class:`MolTable`; blank (or ``nan``/``NA``) labels are missing (NaN). Row numbers in
        errors and default ids are 1-based file line numbers (the header is line 1).

    Raises:
        DataError: missing or empty file, unknown column (lists the columns), ragged row,
            blank SMILES, non-numeric label, or no data rows.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    with _open_text(path) as fh:
        reader = csv.reader(fh)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise DataError(path, "file is empty (expected a header row)") from None
        except (csv.Error, UnicodeDecodeError, OSError) as exc:
            raise DataError(path, f"cannot read CSV header: {exc}", row=1) from exc
        s_col, i_col, t_cols = _columns(path, header, smiles_column, target_columns, id_column)
        smiles: list[str] = []
        ids: list[str] = []
        rows: list[list[float]] = []
        try:
            for record in reader:
                row = reader.line_num
                if not any(v.strip() for v in record):
                    continue
                if len(record) != len(header):
                    raise DataError(path, f"expected {len(header)} fields, got {len(record)}", row=row)
                smi = record[s_col].strip()
                if not smi:
                    raise DataError(path, "blank SMILES", row=row, field=header[s_col])
                smiles.append(smi)
                ids.append(record[i_col].strip() if i_col is not None else str(row))
                rows.append([_number(path, record[c], row, header[c]) for c in t_cols])
        except (csv.Error, UnicodeDecodeError) as exc:
            raise DataError(path, f"malformed CSV: {exc}", row=reader.line_num) from exc
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise DataError(path, f"compressed file is truncated or corrupt ({exc})",
                            row=reader.line_num) from exc
    if not smiles:
        raise DataError(path, "no data rows after the header")
    return MolTable(smiles, ids, _labels(path, header, t_cols, rows), [header[c] for c in t_cols], str(path))


def _columns(path: Path, header: list[str], smiles_column: str, target_columns: list[str] | None,
             id_column: str | None) -> tuple[int, int | None, list[int]]:
    """Indexes of the SMILES column, the id column (None without one) and the label columns
    (default: every other column)."""
    s_col = _find_column(path, header, smiles_column)
    i_col = None if id_column is None else _find_column(path, header, id_column)
    if target_columns is None:
        target_columns = [h for k, h in enumerate(header) if k not in (s_col, i_col)]
        if not target_columns:
            raise DataError(path, f"no label columns besides {smiles_column!r}; "
                            f"available columns: {header}", row=1)
    return s_col, i_col, [_find_column(path, header, t) for t in target_columns]


def _labels(path: Path, header: list[str], t_cols: list[int], rows: list[list[float]]) -> np.ndarray:
    """The label matrix (n, T); a label column with no label at all is an error."""
    y = np.asarray(rows, dtype=np.float32).reshape(len(rows), len(t_cols))
    for j, c in enumerate(t_cols):
        if np.isnan(y[:, j]).all():
            raise DataError(path, f"label column {header[c]!r} has no labels (every row is blank)",
                            field=header[c])
    return y


# --------------------------------------------------------------------------------------------------
# Streaming reader for prediction input

SMILES_SUFFIXES = (".smi", ".smiles")


def read_smiles_file(path: str | Path, smiles_column: str | None = None, chunk_size: int = 10_000,
                     id_column: str | None = None) -> Iterator[list[tuple[int, str, str | None]]]:
    """Stream ``(line_no, smiles, id)`` records from a prediction input file, in chunks.

    Formats, chosen by suffix (a trailing ``.gz`` is allowed and decompressed on the fly):

    * ``.smi`` / ``.smiles``: no header; each non-blank line is ``SMILES [id ...]`` separated by
      whitespace; lines starting with ``#`` are comments.
    * anything else: CSV (``.tsv``/``.txt``: tab-separated) with a header; the SMILES column is
      ``smiles_column`` (default ``smiles``) matched case-insensitively; the optional id column
      likewise. Blank SMILES fields are yielded as ``""`` so outputs stay aligned with inputs.

    The file is never read whole; only one chunk is held at a time.

    Args:
        path: input file.
        smiles_column: SMILES column name for CSV input (default ``smiles``).
        chunk_size: records per yielded list.
        id_column: optional id column for CSV input; ids are None without it.

    Yields:
        Lists of up to ``chunk_size`` ``(line_no, smiles, id)`` tuples; ``line_no`` is 1-based.

    Raises:
        DataError: missing or empty file, or no such column (lists the columns).
    """
    path = Path(path)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    if not path.is_file():
        raise DataError(path, "file not found")
    if path.stat().st_size == 0:
        raise DataError(path, "file is empty")
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    kind = suffixes[-1] if suffixes else ""
    records = _smi_records(path) if kind in SMILES_SUFFIXES else _csv_records(
        path, smiles_column or "smiles", id_column, "\t" if kind in (".tsv", ".txt") else ",")
    chunk: list[tuple[int, str, str | None]] = []
    for record in records:
        chunk.append(record)
        if len(chunk) >= chunk_size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _smi_records(path: Path) -> Iterator[tuple[int, str, str | None]]:
    with _open_text(path) as fh:
        try:
            for line_no, line in enumerate(fh, start=1):
                parts = line.split(None, 1)
                if not parts or parts[0].startswith("#"):
                    continue
                yield line_no, parts[0], (parts[1].strip() or None) if len(parts) > 1 else None
        except UnicodeDecodeError as exc:
            raise DataError(path, f"not UTF-8 text ({exc.reason})") from exc
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise DataError(path, f"compressed file is truncated or corrupt ({exc})") from exc


def _csv_records(path: Path, smiles_column: str, id_column: str | None,
                 delimiter: str) -> Iterator[tuple[int, str, str | None]]:
    with _open_text(path) as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise DataError(path, "file is empty (expected a header row)") from None
        except (csv.Error, UnicodeDecodeError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise DataError(path, f"cannot read the header: {exc}", row=1) from exc
        s_col = _find_column(path, header, smiles_column)
        i_col = None if id_column is None else _find_column(path, header, id_column)
        try:
            for record in reader:
                if not any(v.strip() for v in record):
                    continue
                smi = record[s_col].strip() if s_col < len(record) else ""
                rid = record[i_col].strip() if i_col is not None and i_col < len(record) else None
                yield reader.line_num, smi, rid
        except (csv.Error, UnicodeDecodeError) as exc:
            raise DataError(path, f"malformed CSV: {exc}", row=reader.line_num) from exc
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise DataError(path, f"compressed file is truncated or corrupt ({exc})", row=reader.line_num) from exc
