"""The ingest's COPY (FORMAT binary) rows (``anycar.fleet.pgcopy``, pg-tail) through a real
PostgreSQL: every double, NaN (its payload too), the infinities and -0.0 included, comes back
bit for bit (PostgreSQL's own ``array_send`` of what it stored is the bytes we sent); any text
comes back as it went; a NUL, an invalid length or a lone surrogate is refused as the COPY text
form refused it."""

from __future__ import annotations

import math
import struct
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anycar.fleet import pgcopy
from anycar.fleet.store import refused_for_its_data
from fleet_support import PG

_SETTINGS = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
# any double, NaNs of any payload, signed zeros and infinities among them
_DOUBLE = st.floats(allow_nan=True, allow_infinity=True) | st.integers(0, 2**64 - 1).map(
    lambda bits: struct.unpack(">d", bits.to_bytes(8, "big"))[0]
)
_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=30
)
_COLUMNS = "f float8[], t text[], v varchar(256)[], x float8, s text"


@pytest.fixture(scope="module")
def pg() -> Iterator[psycopg.Connection]:
    with psycopg.connect(PG, autocommit=True) as conn:
        yield conn


@pytest.fixture
def table(pg: psycopg.Connection) -> Iterator[str]:
    name = f"pgcopy_{uuid.uuid4().hex[:10]}"
    pg.execute(f"CREATE TABLE {name} ({_COLUMNS})")
    try:
        yield name
    finally:
        pg.execute(f"DROP TABLE {name}")


def _copy(pg: psycopg.Connection, table: str, rows: list[bytes]) -> None:
    with pg.cursor() as cur, cur.copy(f"COPY {table} (f, t, v, x, s) FROM STDIN (FORMAT binary)") as copy:
        copy.write(pgcopy.stream(rows))


def _bits(x: float | None) -> bytes | None:
    return None if x is None else struct.pack(">d", x)


@_SETTINGS
@given(
    floats=st.lists(st.none() | _DOUBLE, min_size=1, max_size=12),
    texts=st.lists(st.none() | _TEXT, min_size=1, max_size=6),
    paths=st.lists(_TEXT, min_size=1, max_size=6),
    x=st.none() | _DOUBLE,
    s=_TEXT,
)
def test_every_value_reads_back_bit_for_bit(
    pg: psycopg.Connection,
    table: str,
    floats: list[float | None],
    texts: list[str | None],
    paths: list[str],
    x: float | None,
    s: str,
) -> None:
    fields = (
        pgcopy.float8_array(floats),
        pgcopy.text_array(texts),
        pgcopy.text_array(paths, pgcopy.VARCHAR),
        pgcopy.float8_field(x),
        pgcopy.text_field(s),
    )
    pg.execute(f"TRUNCATE {table}")
    _copy(pg, table, [pgcopy.row(*fields)])
    with pg.cursor(binary=True) as cur:
        cur.execute(f"SELECT array_send(f), array_send(t), array_send(v), float8send(x), s FROM {table}")
        got = cur.fetchone()
    assert got is not None
    # what PostgreSQL stored, sent back in its own binary form, is what we sent (less our length)
    assert [bytes(g) for g in got[:3]] == [f[4:] for f in fields[:3]]
    assert (None if got[3] is None else bytes(got[3])) == _bits(x)
    assert got[4] == s


@_SETTINGS
@given(values=st.lists(_DOUBLE.filter(lambda v: not math.isnan(v)), min_size=1, max_size=12))
def test_fresh_text_arrays_are_text_arrays(values: list[float]) -> None:
    texts = list(map(repr, values))
    assert pgcopy.fresh_text_array(texts) == pgcopy.text_array(texts)


@_SETTINGS
@given(rounds=st.lists(st.lists(_DOUBLE, min_size=1, max_size=12), min_size=1, max_size=4))
def test_cached_json_floats_are_the_fresh_texts(rounds: list[list[float]]) -> None:
    """pg-worker: a ``vals`` array from the cache of each float's text is the array of its
    ``repr``s, whatever came before it (zeros of both signs, NaNs of any payload among them)."""
    for values in rounds:
        assert pgcopy.json_float_array(values) == pgcopy.fresh_text_array(list(map(repr, values)))


def test_a_cached_json_zero_keeps_its_sign() -> None:
    for first, then in ((0.0, -0.0), (-0.0, 0.0)):
        pgcopy.json_float_array([first])
        assert pgcopy.json_float_array([then]) == pgcopy.fresh_text_array([repr(then)])


def test_the_json_float_cache_starts_afresh_when_full(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pgcopy, "_CACHE_MAX", 3)
    monkeypatch.setattr(pgcopy, "JSON_FLOATS", pgcopy._JsonFloats())
    pgcopy.json_float_array([1.5, 2.5, 3.5])
    assert len(pgcopy.JSON_FLOATS) == 3
    assert pgcopy.json_float_array([4.5]) == pgcopy.fresh_text_array(["4.5"])
    assert list(pgcopy.JSON_FLOATS) == [4.5]


@_SETTINGS
@given(value=_DOUBLE, n=st.integers(1, 20))
def test_a_repeated_float8_array_is_the_array(value: float, n: int) -> None:
    assert pgcopy.float8_repeat(value, n) == pgcopy.float8_array([value] * n)


def test_signed_zero_nan_and_infinities_by_value(pg: psycopg.Connection, table: str) -> None:
    special = [-0.0, 0.0, math.inf, -math.inf, math.nan, 5e-324, 1.7976931348623157e308]
    _copy(
        pg,
        table,
        [
            pgcopy.row(
                pgcopy.float8_array(special),
                pgcopy.text_array(["a"]),
                pgcopy.text_array(["b"], pgcopy.VARCHAR),
                pgcopy.float8_field(-0.0),
                pgcopy.text_field(""),
            )
        ],
    )
    f, x = pg.execute(f"SELECT f, x FROM {table}").fetchone()  # type: ignore[misc]
    assert [_bits(v) for v in f[:4]] == [_bits(v) for v in special[:4]]
    assert math.isnan(f[4]) and f[5:] == special[5:]
    assert _bits(x) == _bits(-0.0)


@pytest.mark.parametrize(
    ("where", "text", "state"),
    [
        ("t", "a\x00b", "22021"),  # PostgreSQL's text cannot hold a NUL
        ("v", "a\x00b", "22021"),
        ("s", "\x00", "22021"),
        ("v", "p" * 257, "22001"),  # over varchar(256)
    ],
)
def test_text_the_database_cannot_hold_is_refused_for_its_data(
    pg: psycopg.Connection, table: str, where: str, text: str, state: str
) -> None:
    fields = {
        "t": pgcopy.text_array([text if where == "t" else "ok"]),
        "v": pgcopy.text_array([text if where == "v" else "ok"], pgcopy.VARCHAR),
        "s": pgcopy.text_field(text if where == "s" else "ok"),
    }
    with pytest.raises(psycopg.Error) as caught:
        _copy(
            pg,
            table,
            [
                pgcopy.row(
                    pgcopy.float8_array([1.0]),
                    fields["t"],
                    fields["v"],
                    pgcopy.float8_field(1.0),
                    fields["s"],
                )
            ],
        )
    assert caught.value.sqlstate == state
    assert refused_for_its_data(caught.value)


def test_a_lone_surrogate_is_refused_before_the_server() -> None:
    with pytest.raises(UnicodeEncodeError):
        pgcopy.text_array(["a\ud800"])


# ---- the per-batch statements' arrays as binary parameters (pg-worker) -------------------------
@_SETTINGS
@given(
    floats=st.lists(_DOUBLE | st.none(), min_size=1, max_size=12),
    ints=st.lists(st.integers(-(2**31), 2**31 - 1), min_size=1, max_size=12),
    bigs=st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=12),
    bools=st.lists(st.booleans() | st.none(), min_size=1, max_size=12),
    texts=st.lists(_TEXT | st.none(), min_size=1, max_size=12),
)
def test_binary_array_parameters_are_what_postgres_stores(
    pg: psycopg.Connection,
    floats: list[float | None],
    ints: list[int],
    bigs: list[int],
    bools: list[bool | None],
    texts: list[str | None],
) -> None:
    """Each parameter reaches PostgreSQL as the array of its values: PostgreSQL's own
    ``array_send`` of it is the bytes sent (every double bit for bit, NULLs where None)."""
    pgcopy.binary_params(pg)
    params = (
        pgcopy.float8_param(floats),
        pgcopy.int_param(ints),
        pgcopy.int_param(bigs, pgcopy.INT8),
        pgcopy.bool_param(bools),
        pgcopy.text_param(texts),
    )
    row = pg.execute(
        "SELECT array_send(%s::float8[]), array_send(%s::int[]), array_send(%s::bigint[]),"
        " array_send(%s::bool[]), array_send(%s::text[]), %s::int[], %s::bigint[], %s::bool[], %s::text[]",
        (*params, *params[1:]),
        prepare=False,
    ).fetchone()
    assert row is not None
    assert [bytes(b) for b in row[:5]] == [bytes(p) for p in params]
    assert list(row[5:]) == [ints, bigs, bools, texts]


@pytest.mark.parametrize(("values", "oid"), [([2**31], pgcopy.INT4), ([-(2**63) - 1], pgcopy.INT8)])
def test_an_int_out_of_range_raises_before_the_server(values: list[int], oid: int) -> None:
    with pytest.raises(struct.error):
        pgcopy.int_param(values, oid)


def test_a_value_the_binary_form_cannot_hold_goes_as_text() -> None:
    """So PostgreSQL refuses it for its data (SQLSTATE 22003), as when every array was text,
    and the batch's message becomes a dead letter instead of a retry without end."""
    from anycar.fleet import pgarrays

    assert pgcopy.param(pgcopy.int_param, [1, 2**31], pgarrays.int_array) == "{1,2147483648}"
    with pytest.raises(OverflowError):  # what the text form raised for it, too
        pgcopy.param(pgcopy.float8_param, [1.5, 10**400], pgarrays.float_array)


def test_the_text_fallback_is_refused_for_its_data(pg: psycopg.Connection) -> None:
    from anycar.fleet import pgarrays

    with pytest.raises(psycopg.errors.NumericValueOutOfRange) as caught:
        pg.execute("SELECT %s::int[]", (pgcopy.param(pgcopy.int_param, [2**31], pgarrays.int_array),))
    assert refused_for_its_data(caught.value)


def test_binary_parameters_leave_psycopg_s_own_array_dumpers_alone() -> None:
    """A connection made before, or without, ``binary_params`` keeps psycopg's dumpers by OID
    (COPY's ``set_types`` looks them up), and one with them sends ours."""
    with psycopg.connect(PG, autocommit=True) as conn:
        before = type(conn.adapters.get_dumper_by_oid(1022, psycopg.pq.Format.BINARY))
        pgcopy.binary_params(conn)
        pgcopy.binary_params(conn)  # once is enough, twice is harmless
        assert type(conn.adapters.get_dumper_by_oid(1022, psycopg.pq.Format.BINARY)) is before
        row = conn.execute("SELECT %s::float8[]", (pgcopy.float8_param([1.5, None]),)).fetchone()
        assert row == ([1.5, None],)
