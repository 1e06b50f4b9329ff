"""The commit's hand-written PostgreSQL text (``anycar.fleet.pgarrays``, the COPY lines of
``signal_batches``, the dedup's key arrays) reads back exactly, through a real PostgreSQL, for
arbitrary text: quotes, backslashes, braces, commas, spaces, NULL-like words, tabs, newlines,
unicode; and for every float, the sign of a zero included."""

from __future__ import annotations

import json
import math
import struct
import time
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from anycar.fleet import daily, db, pgarrays, registry
from anycar.fleet.store import TINY_DEGREES, Accepted, Store, _first_time_pg, _number
from fleet_support import PG, fleet_engine, vin

# the characters array_in and COPY treat specially, and words that read as NULL
_TRICKY = st.sampled_from(
    ['"', "\\", "{", "}", ",", " ", "\t", "\n", "\r", "NULL", "null", "NuLl", "\\N", "é", "車", "🚗", "a b"]
)
_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20
) | st.lists(_TRICKY, max_size=4).map("".join)
_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _bits(x: float | None) -> object:
    """A float by its bits (so -0.0 differs from 0.0 and a NaN equals a NaN); None as is."""
    if x is None:
        return None
    return "nan" if math.isnan(x) else struct.pack(">d", x)


@pytest.fixture(scope="module")
def pg() -> psycopg.Connection:
    with psycopg.connect(PG, autocommit=True) as conn:
        yield conn


@_SETTINGS
@given(values=st.lists(st.none() | _TEXT, max_size=8))
def test_text_arrays_read_back(pg: psycopg.Connection, values: list[str | None]) -> None:
    got = pg.execute("SELECT %s::text[], %s::varchar(64)[]", [pgarrays.text_array(values)] * 2).fetchone()
    assert got == (values, values)


@_SETTINGS
@given(
    values=st.lists(
        st.none() | st.floats() | st.integers(-(2**53), 2**53) | st.sampled_from([0.0, -0.0]), max_size=8
    )
)
def test_float_arrays_read_back_bit_for_bit(pg: psycopg.Connection, values: list[float | int | None]) -> None:
    for _ in range(2):  # the second time every text comes from the cache
        (got,) = pg.execute("SELECT %s::float8[]", [pgarrays.float_array(values)]).fetchone()
        assert [_bits(x) for x in got] == [_bits(None if v is None else float(v)) for v in values]


@_SETTINGS
@given(
    ints=st.lists(st.integers(-(2**63), 2**63 - 1), max_size=8),
    bools=st.lists(st.none() | st.booleans(), max_size=8),
)
def test_int_and_bool_arrays_read_back(
    pg: psycopg.Connection, ints: list[int], bools: list[bool | None]
) -> None:
    got = pg.execute(
        "SELECT %s::bigint[], %s::boolean[]", [pgarrays.int_array(ints), pgarrays.bool_array(bools)]
    ).fetchone()
    assert got == (ints, bools)


def test_a_cached_zero_keeps_its_sign() -> None:
    pgarrays.FLOATS.clear()
    assert pgarrays.float_array([0.0, -0.0, 0.0, -0.0, 1.5, 1.5]) == "{0.0,-0.0,0.0,-0.0,1.5,1.5}"
    assert pgarrays.float_array([-0.0, 0.0]) == "{-0.0,0.0}"


_VALUE = (
    st.floats(allow_nan=False, allow_infinity=False)
    | st.integers(-(2**63), 2**63 - 1)
    | st.booleans()
    | st.none()
    | _TEXT
    | st.lists(st.none() | st.integers(-5, 5) | _TEXT, max_size=3)
)
_PATH = (_TEXT | st.just("Vehicle.Speed")).filter(lambda p: 0 < len(p) <= 256)


def test_signal_values_read_back_through_the_copy_lines(tmp_path: Path) -> None:
    """Arbitrary paths and values, committed by ``Store.commit`` (COPY text lines), read back
    one per value through the ``signal_values`` view."""
    with fleet_engine("postgres", tmp_path) as engine:
        creds = registry.add_vehicle(engine, vin(7), "kaiyun_pickman", tenant="arrays")
        store = Store(engine)
        ref = store.vehicle(creds.vehicle)
        assert ref is not None
        t0 = time.time() - 3600
        seq = iter(range(1, 10**6))

        @_SETTINGS
        @given(
            paths=st.lists(_PATH, min_size=1, max_size=4, unique=True),
            samples=st.lists(
                st.tuples(st.integers(0, 3), st.integers(0, 5000), _VALUE), min_size=1, max_size=6
            ),
        )
        def check(paths: list[str], samples: list[tuple[int, int, object]]) -> None:
            n = next(seq)
            start = t0 + 10 * n  # examples 10 s apart, a message's values within 5 s
            values = [[i % len(paths), ms, v] for i, ms, v in samples]
            doc = {
                "kind": "telemetry",
                "v": 1,
                "vehicle": creds.vehicle,
                "boot": "00000000000000aa",
                "seq": n,
                "ts": start,
                "t0": start,
                "paths": paths,
                "values": values,
            }
            stored = store.commit([Accepted(ref, doc)])
            assert stored.messages == 1
            sv = db.signal_values.c
            with engine.connect() as conn:
                rows = conn.execute(
                    select(sv.path, sv.ts, sv.num, sv.value).where(
                        sv.vehicle_id == ref.id, sv.batch_ts >= start, sv.batch_ts <= start + 5.0
                    )
                ).all()
            want = [
                (paths[i], start + ms / 1000, _number(v), json.loads(json.dumps(v))) for i, ms, v in values
            ]
            key = repr
            assert sorted(map(key, (tuple(r) for r in rows))) == sorted(map(key, want))

        check()


def test_dedup_keys_of_any_text_are_stored_once(tmp_path: Path) -> None:
    with fleet_engine("postgres", tmp_path) as engine:

        @_SETTINGS
        @given(
            keys=st.lists(
                st.tuples(
                    _TEXT.filter(lambda s: len(s) <= 64),
                    _TEXT.filter(lambda s: len(s) <= 16),
                    st.integers(1, 2**62),
                ),
                min_size=1,
                max_size=6,
                unique=True,
            )
        )
        def check(keys: list[tuple[str, str, int]]) -> None:
            keys = sorted(keys)
            with engine.begin() as conn:
                first = _first_time_pg(conn, keys)
            with engine.begin() as conn:
                again = _first_time_pg(conn, keys)
            with engine.begin() as conn:  # leave no key for the next example
                conn.execute(db.received.delete())
            assert first == set(keys)
            assert again == set()

        check()


# (not within TINY_DEGREES of 0 but 0 itself: those are stored as 0, tests/test_fleet_store_refused.py)
_COORD = st.floats(-89.9, 89.9).filter(lambda x: x == 0 or abs(x) >= TINY_DEGREES) | st.sampled_from(
    [0.0, -0.0, 48.137154, 11.576124]
)


def test_positions_vehicles_and_rollup_keep_every_float_exactly(tmp_path: Path) -> None:
    """The texts a message's values leave for its position, vehicle and rollup rows (shared
    within a batch) read back bit for bit, signed zeros included, in all three tables."""
    lat_p, lon_p, speed_p = (
        "Vehicle.CurrentLocation.Latitude",
        "Vehicle.CurrentLocation.Longitude",
        "Vehicle.Speed",
    )
    with fleet_engine("postgres", tmp_path) as engine:
        creds = registry.add_vehicle(engine, vin(8), "kaiyun_pickman", tenant="floats")
        store = Store(engine)
        ref = store.vehicle(creds.vehicle)
        assert ref is not None
        day0 = (int(time.time()) // 86_400 - 1) * 86_400.0
        seq = iter(range(1, 10**6))

        @_SETTINGS
        @given(lat=_COORD, lon=_COORD, speed=st.floats(0, 300) | st.just(-0.0), other=_COORD)
        def check(lat: float, lon: float, speed: float, other: float) -> None:
            n = next(seq)
            ts = day0 + n  # every example later than the one before: the rollup extends its day
            doc = {
                "kind": "telemetry",
                "vehicle": creds.vehicle,
                "boot": "00000000000000bb",
                "seq": n,
                "ts": ts,
                "t0": ts,
                "paths": [lat_p, lon_p, speed_p, "Vehicle.Other"],
                "values": [[0, 0, lat], [1, 0, lon], [2, 0, speed], [3, 0, other]],
            }
            stored = store.commit([Accepted(ref, doc)])
            assert stored.messages == 1, (stored, n)
            with engine.connect() as conn:
                pos = conn.execute(
                    select(db.positions.c.lat, db.positions.c.lon, db.positions.c.speed).where(
                        db.positions.c.vehicle_id == ref.id, db.positions.c.ts == ts
                    )
                ).one()
                car = conn.execute(
                    select(db.vehicles.c.last_lat, db.vehicles.c.last_lon, db.vehicles.c.last_speed).where(
                        db.vehicles.c.id == ref.id
                    )
                ).one()
                rollup = conn.execute(
                    select(daily.D.last_lat, daily.D.last_lon, daily.D.last_ts).where(
                        daily.D.vehicle_id == ref.id, daily.D.day == int(ts // 86_400)
                    )
                ).one()
            want = [_bits(lat), _bits(lon), _bits(speed)]
            assert [_bits(x) for x in pos] == want
            assert [_bits(x) for x in car] == want
            assert [_bits(x) for x in rollup] == [*want[:2], _bits(ts)]

        check()
