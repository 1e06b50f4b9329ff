"""PostgreSQL array literals written as text, for the ingest's per-batch statements (ingest-commit).

The commit hands PostgreSQL its rows as parallel arrays (``unnest``) so each step is one short
prepared statement. psycopg's list dumper paid a Python call and a regex search per element
(a profile of the commit: a quarter of its Python); these build the literal with a few C-level
joins, caching the element form of each distinct text (vehicle ids, boots and paths repeat), and
the statements cast the text (``%s::float8[]``), so PostgreSQL parses it with ``array_in`` as it
parsed psycopg's. The same element form, COPY-escaped, is what the ``signal_batches`` lines carry.

Floats are written with ``repr`` (the shortest text that reads back as the same double; ``nan``
and ``inf`` are accepted by PostgreSQL's ``float8in``), integers with ``str``; ``None`` is NULL.
``repr`` of a double is costly (a callgrind profile of the commit: ~45 % of its instructions in
``dtoa``, ~2 µs for a 17-digit timestamp on this box) and a batch writes the same few values many
times (a fix's time and coordinates go into ``signal_batches``, ``positions``, ``vehicles`` and
``position_days``), so each distinct float's text is kept in ``FLOATS``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_BARE = re.compile(r"[A-Za-z0-9_.:/\-]+")  # an element that needs no quotes (and is not NULL)
_ELEMENTS: dict[str, str] = {}  # text -> its array element (bounded: ids and paths repeat)
_CACHE_MAX = 100_000


class FloatTexts(dict[float, str]):
    """A number -> the text of it as a double (``repr``), computed on a miss; ``None`` -> NULL.

    Only floats are kept (an int or a bool is looked up as the float it equals, so ``5`` may
    read ``5.0``: right for a float8 column, which is all this is for). Zeros are never kept:
    ``0.0 == -0.0`` would give one the other's text, and a zero's sign is kept exactly."""

    def __missing__(self, value: float | None) -> str:
        if value is None:
            return "NULL"
        number = float(value)
        text = repr(number)
        if type(value) is float and number != 0 and len(self) < _CACHE_MAX:
            self[value] = text
        return text

    def trim(self) -> None:
        """Start afresh once full (called at the start of a batch: what repeats is the batch's)."""
        if len(self) >= _CACHE_MAX // 2:
            self.clear()


FLOATS = FloatTexts()  # shared by the store's and the rollup's statements of a batch


def element(text: str) -> str:
    """``text`` as one element of an array literal: bare when that reads back the same, else in
    double quotes with backslash and double quote escaped (array_in's rules)."""
    found = _ELEMENTS.get(text)
    if found is None:
        if _BARE.fullmatch(text) is not None and text.upper() != "NULL":
            found = text
        else:
            found = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if len(_ELEMENTS) < _CACHE_MAX:
            _ELEMENTS[text] = found
    return found


def text_array(values: Iterable[str | None]) -> str:
    """A ``text[]`` (or ``varchar[]``) literal."""
    get = _ELEMENTS.get
    return "{" + ",".join(["NULL" if v is None else (get(v) or element(v)) for v in values]) + "}"


def float_array(values: Iterable[float | int | None]) -> str:
    """A ``float8[]`` literal; an int is written as the float it is stored as."""
    return "{" + ",".join(map(FLOATS.__getitem__, values)) + "}"  # type: ignore[arg-type]


def int_array(values: Iterable[int]) -> str:
    """An ``integer[]`` or ``bigint[]`` literal (no NULLs: ids and sequence numbers)."""
    return "{" + ",".join(map(str, map(int, values))) + "}"


def bool_array(values: Iterable[bool | None]) -> str:
    """A ``boolean[]`` literal."""
    return "{" + ",".join(["NULL" if v is None else ("t" if v else "f") for v in values]) + "}"
