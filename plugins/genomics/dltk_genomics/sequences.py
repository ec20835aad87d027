"""Sequence readers: DeepBind ``.seq`` tables, labelled FASTA (streaming), one-sequence-per-line files.

Input policy, the same for every reader:

* letters are IUPAC (:data:`dltk_genomics.encoding.IUPAC`), either case: lowercase (soft-masked)
  bases are read as upper case, ``U`` as ``T``, ``N`` and ambiguity codes are kept (the encoder
  spreads them over their bases);
* a record with any other character, or with no sequence at all, is **skipped and counted**; the
  reader reports how many and where the first one is (``file row N``);
* FASTA headers: ``>`` up to the end of the line (whitespace inside is kept). Repeated headers are
  handled by ``duplicates``: ``first`` keeps the first record of each header and counts the rest
  as skipped (the PUM2 negatives repeat five records verbatim), ``keep`` keeps them all, ``error``
  stops with a one-line error at the first repeat;
* an empty file, or a file with no usable record, is a one-line :class:`~dltk.errors.DataError`.

FASTA files are read line by line (plain or gzip), never whole into memory by a library that
would refuse duplicate names (pyfaidx raises on them by default).
"""

from __future__ import annotations

import gzip
import io
import logging
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal

import numpy as np
from dltk.errors import DataError

from dltk_genomics import encoding

log = logging.getLogger("dltk.genomics")

Duplicates = Literal["first", "keep", "error"]


@dataclass
class SkipReport:
    """Counted skips by reason, each with the first place it happened."""

    source: str
    counts: dict[str, int] = field(default_factory=dict)
    first: dict[str, int] = field(default_factory=dict)

    def add(self, reason: str, row: int) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + 1
        self.first.setdefault(reason, row)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def lines(self) -> list[str]:
        return [f"{self.source}: skipped {n} sequence{'s' if n != 1 else ''} {reason} (first: row "
                f"{self.first[reason]})" for reason, n in self.counts.items()]

    def emit(self) -> None:
        for line in self.lines():
            log.warning("%s", line)


@dataclass
class SeqRecords:
    """Sequences read from one file.

    Attributes:
        ids: record names (FASTA header, DeepBind EventID).
        seqs: sequences as read (upper case; U kept as written, the encoder maps it).
        rows: 1-based line of each record's header / row in the file.
        labels: per-record label (0/1) when the file carries labels, else None.
        source: the file.
        skipped: what was skipped and why.
        lowercase: how many kept records had lowercase (soft-masked) letters.
    """

    ids: list[str]
    seqs: list[str]
    rows: list[int]
    labels: np.ndarray | None
    source: str
    skipped: SkipReport
    lowercase: int = 0

    def __len__(self) -> int:
        return len(self.seqs)

    def subset(self, index: np.ndarray) -> SeqRecords:
        index = np.asarray(index, dtype=np.int64)
        return SeqRecords([self.ids[i] for i in index], [self.seqs[i] for i in index],
                          [self.rows[i] for i in index],
                          None if self.labels is None else self.labels[index], self.source, self.skipped,
                          self.lowercase)


class _CheckedText:
    """A text stream whose decompression errors (a truncated or corrupt gzip) become one-line
    DataErrors naming the file and the line reached."""

    def __init__(self, path: Path, stream: IO[str]) -> None:
        self.path, self.stream, self.line = path, stream, 0

    def _fail(self, exc: Exception) -> DataError:
        return DataError(self.path, f"compressed file is truncated or corrupt ({exc})", row=self.line + 1)

    def __iter__(self) -> _CheckedText:
        return self

    def __next__(self) -> str:
        try:
            line = next(self.stream)
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise self._fail(exc) from exc
        self.line += 1
        return line

    def readline(self, *args: int) -> str:
        try:
            line = self.stream.readline(*args)
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise self._fail(exc) from exc
        self.line += bool(line)
        return line

    def close(self) -> None:
        self.stream.close()

    def __enter__(self) -> _CheckedText:  # noqa: PYI034 (Self needs Python 3.11)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_text(path: str | Path) -> IO[str]:
    """Open a plain or gzip text file (detected by its magic bytes, not its name); a truncated or
    corrupt gzip raises a DataError naming the file and line while it is read."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        stream = io.TextIOWrapper(gzip.open(path, "rb"), encoding="latin-1", newline=None)  # noqa: SIM115
    else:
        stream = open(path, encoding="latin-1", newline=None)  # noqa: SIM115 (closed by the wrapper)
    return _CheckedText(path, stream)  # type: ignore[return-value]


def check_sequence(seq: str) -> tuple[str | None, int]:
    """``(reason, position)`` why ``seq`` cannot be encoded, or ``(None, -1)`` when it can."""
    if not seq:
        return "with no sequence", -1
    bad = encoding.first_invalid(encoding.encode(seq))
    if bad >= 0:
        return "with non-IUPAC characters", bad
    return None, -1


def iter_fasta(path: str | Path) -> Iterator[tuple[str, str, int]]:
    """Stream ``(header, sequence, header_row)`` from a FASTA file (multi-line records, gzip ok).

    Raises:
        DataError: the file is empty or has sequence text before the first header.
    """
    header: str | None = None
    parts: list[str] = []
    start = 0
    seen_any = False
    with open_text(path) as fh:
        for row, line in enumerate(fh, start=1):
            line = line.strip()
            if not line or line.startswith(";"):
                continue
            seen_any = True
            if line.startswith(">"):
                if header is not None:
                    yield header, "".join(parts), start
                header, parts, start = line[1:].strip(), [], row
            elif header is None:
                raise DataError(path, "not a FASTA file: sequence text before the first '>' header", row=row)
            else:
                parts.append(line)
    if header is not None:
        yield header, "".join(parts), start
    elif not seen_any:
        raise DataError(path, "empty file: no FASTA records")


def read_fasta(path: str | Path, label: float | None = None, duplicates: Duplicates = "first") -> SeqRecords:
    """All usable records of a FASTA file, with counted skips (see the module policy).

    Args:
        path: FASTA file (plain or gzip).
        label: label given to every record (labelled positive/negative files), or None.
        duplicates: what to do with a repeated header: ``first``, ``keep`` or ``error``.
    """
    skipped = SkipReport(str(path))
    ids: list[str] = []
    seqs: list[str] = []
    rows: list[int] = []
    seen: set[str] = set()
    lowercase = 0
    for header, seq, row in iter_fasta(path):
        if header in seen:
            if duplicates == "error":
                raise DataError(path, f"duplicate FASTA header {header!r} (use duplicates: first or keep)",
                                row=row)
            if duplicates == "first":
                skipped.add("with a repeated header", row)
                continue
        seen.add(header)
        reason, _ = check_sequence(seq)
        if reason is not None:
            skipped.add(reason, row)
            continue
        if not seq.isupper():
            lowercase += 1
        ids.append(header)
        seqs.append(seq.upper())
        rows.append(row)
    if not seqs:
        raise DataError(path, f"no usable sequence ({skipped.total} skipped: {'; '.join(skipped.lines())})")
    labels = None if label is None else np.full(len(seqs), label, dtype=np.float32)
    return SeqRecords(ids, seqs, rows, labels, str(path), skipped, lowercase)


DEEPBIND_HEADER = ["FoldID", "EventID", "seq", "Bound"]


def read_deepbind(path: str | Path) -> SeqRecords:
    """A DeepBind ENCODE ``*.seq.gz`` table: tab-separated ``FoldID EventID seq Bound`` with a header.

    Raises:
        DataError: the file is empty, the header is different, or a row is malformed (wrong number
            of fields, a label other than 0/1).
    """
    skipped = SkipReport(str(path))
    ids: list[str] = []
    seqs: list[str] = []
    rows: list[int] = []
    labels: list[float] = []
    lowercase = 0
    with open_text(path) as fh:
        first = fh.readline()
        if not first.strip():
            raise DataError(path, "empty file: expected a DeepBind table with header "
                            + " ".join(DEEPBIND_HEADER))
        header = first.rstrip("\n").split("\t")
        if header != DEEPBIND_HEADER:
            raise DataError(path, f"expected the DeepBind header {' '.join(DEEPBIND_HEADER)!r}, got "
                            f"{' '.join(header)!r}", row=1)
        for row, line in enumerate(fh, start=2):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            fields = line.split("\t")
            if len(fields) != 4:
                raise DataError(path, f"expected 4 tab-separated fields, got {len(fields)}", row=row)
            if fields[3] not in ("0", "1"):
                raise DataError(path, f"label must be 0 or 1, got {fields[3]!r}", row=row, field="Bound")
            seq = fields[2].strip()
            reason, _ = check_sequence(seq)
            if reason is not None:
                skipped.add(reason, row)
                continue
            if not seq.isupper():
                lowercase += 1
            ids.append(fields[1])
            seqs.append(seq.upper())
            rows.append(row)
            labels.append(float(fields[3]))
    if not seqs:
        raise DataError(path, "no usable sequence" + (f" ({'; '.join(skipped.lines())})" if skipped.total else ""))
    return SeqRecords(ids, seqs, rows, np.asarray(labels, dtype=np.float32), str(path), skipped, lowercase)


def sniff_fasta(path: str | Path) -> bool:
    """Is the first non-blank line of the file a FASTA header?"""
    with open_text(path) as fh:
        for line in fh:
            if line.strip():
                return line.lstrip().startswith(">")
    return False


def iter_sequence_file(path: str | Path) -> Iterator[tuple[int, str, str]]:
    """Stream ``(row, id, sequence)`` from a FASTA file or a plain file with one sequence per line
    (optionally ``id<whitespace>sequence``); the id of a bare sequence is ``seq<row>``.

    Raises:
        DataError: the file is empty.
    """
    if sniff_fasta(path):
        for header, seq, row in iter_fasta(path):
            yield row, header, seq
        return
    any_row = False
    with open_text(path) as fh:
        for row, line in enumerate(fh, start=1):
            fields = line.split()
            if not fields or fields[0].startswith("#"):
                continue
            any_row = True
            if len(fields) == 1:
                yield row, f"seq{row}", fields[0]
            else:
                yield row, fields[0], "".join(fields[1:])
    if not any_row:
        raise DataError(path, "empty file: no sequences")


def fit_report(lengths: np.ndarray, length: int, source: str) -> None:
    """Log how many sequences the pad/crop policy changes."""
    longer = int((lengths > length).sum())
    shorter = int((lengths < length).sum())
    if longer or shorter:
        log.warning("%s: %d sequences centre-cropped and %d centre-padded (code 0, no base) to %d bases",
                    source, longer, shorter, length)
