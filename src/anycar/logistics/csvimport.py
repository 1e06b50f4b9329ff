"""Orders from a CSV file: streamed row by row, every bad row reported as ``file:line: field: why``.

The file is read once, as a stream (a 100,000-line file is never held as text), each row checked
by ``parse_order``; duplicate ids within the file are caught here, ids already on the board by
the store, in the same transaction as the insert. Nothing is stored unless every row is good.

Columns (header row, any order; only ``id`` and the coordinates are needed):
``id, kind, lat, lon, address, windows, service_s, weight_kg, volume_m3, priority, features, cod,
note, pickup_lat, pickup_lon, pickup_address, pickup_windows, pickup_service_s``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO

from anycar.logistics.orders import Order, OrderError, parse_order
from anycar.logistics.settings import ServiceArea

COLUMNS = (
    "id",
    "kind",
    "lat",
    "lon",
    "address",
    "windows",
    "service_s",
    "weight_kg",
    "volume_m3",
    "priority",
    "features",
    "cod",
    "note",
    "pickup_lat",
    "pickup_lon",
    "pickup_address",
    "pickup_windows",
    "pickup_service_s",
)
MAX_FIELD = 4096  # characters in one cell
MAX_ROWS = 1_000_000
MAX_ERRORS = 100  # listed; the count goes on


@dataclass
class ImportResult:
    orders: list[Order] = field(default_factory=list)
    lines: dict[str, int] = field(default_factory=dict)  # ref -> line, for the store's errors
    errors: list[str] = field(default_factory=list)
    error_count: int = 0
    rows: int = 0

    def error(self, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(message)

    @property
    def ok(self) -> bool:
        return self.error_count == 0


class _Counting:
    """Passes lines through and counts the bytes read, for the progress bar."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw, self.read_bytes = raw, 0
        self.text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")

    def __iter__(self) -> Iterator[str]:
        for line in self.text:
            self.read_bytes = self.raw.tell() if self.raw.seekable() else self.read_bytes + len(line)
            yield line


def read_orders(
    raw: IO[bytes],
    name: str,
    area: ServiceArea,
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Every row of the CSV stream ``raw`` (``name`` is what errors call it)."""
    result = ImportResult()
    stream = _Counting(raw)
    reader = csv.reader(stream)
    try:
        header = next(reader)
    except StopIteration:
        result.error(f"{name}:1: empty file (a header row with id, lat, lon, ... expected)")
        return result
    except (csv.Error, UnicodeDecodeError) as exc:
        result.error(f"{name}:1: {exc}")
        return result
    columns = [h.strip().lower() for h in header]
    unknown = [c for c in columns if c not in COLUMNS]
    if unknown:
        result.error(f"{name}:1: unknown column {unknown[0][:40]!r} (columns: {', '.join(COLUMNS)})")
        return result
    if "id" not in columns:
        result.error(f"{name}:1: no 'id' column")
        return result
    seen: dict[str, int] = {}
    last_report = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except (csv.Error, UnicodeDecodeError) as exc:
            result.error(f"{name}:{reader.line_num}: {str(exc)[:120]}")
            break  # the rest of the stream cannot be trusted to be split into the same rows
        line = reader.line_num
        if not row or all(not c.strip() for c in row):
            continue
        result.rows += 1
        if result.rows > MAX_ROWS:
            result.error(f"{name}:{line}: more than {MAX_ROWS} orders in one file")
            break
        if progress is not None and stream.read_bytes - last_report > 65536:
            last_report = stream.read_bytes
            progress(stream.read_bytes)
        if len(row) != len(columns):
            result.error(f"{name}:{line}: {len(row)} cells, the header has {len(columns)}")
            continue
        if any(len(c) > MAX_FIELD for c in row):
            result.error(f"{name}:{line}: a cell longer than {MAX_FIELD} characters")
            continue
        fields = {k: v.strip() for k, v in zip(columns, row, strict=True) if v.strip()}
        try:
            order = parse_order(fields, area)
        except OrderError as exc:
            result.error(f"{name}:{line}: {exc}")
            continue
        first = seen.get(order.ref)
        if first is not None:
            result.error(f"{name}:{line}: id {order.ref!r} repeats line {first}")
            continue
        seen[order.ref] = line
        result.lines[order.ref] = line
        result.orders.append(order)
    if progress is not None:
        progress(stream.read_bytes)
    return result
