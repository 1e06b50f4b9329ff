"""Orders: field checks with the field named, CSV import with file:line errors, streamed big files,
nothing half-imported (a bad row, or an id already on the board, refuses the whole file)."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from anycar.cli.main import main
from anycar.fleet import db, registry
from anycar.logistics import board
from anycar.logistics.csvimport import read_orders
from anycar.logistics.orders import OrderError, parse_order
from anycar.logistics.settings import service_area
from fleet_support import fleet_engine

AREA = service_area()
HEADER = "id,kind,lat,lon,windows,service_s,weight_kg,volume_m3,priority,features,cod,pickup_lat,pickup_lon,pickup_windows\n"
GOOD = "A1,delivery,60.170,24.941,09:00-11:00;14:00-16:00,120,12.5,0.1,1,refrigerated,25.50,,,\n"
COURIER = "C1,courier,60.168,24.950,12:00-13:00,60,3,0.01,0,,,60.172,24.938,10:00-11:00\n"


def _read(text: str, name: str = "orders.csv"):
    return read_orders(io.BytesIO(text.encode()), name, AREA)


def test_a_good_order_has_every_field() -> None:
    result = _read(HEADER + GOOD + COURIER)
    assert result.ok, result.errors
    a, c = result.orders
    assert [(w.start, w.end) for w in a.drop.windows] == [(9 * 3600, 11 * 3600), (14 * 3600, 16 * 3600)]
    assert a.features == {"refrigerated"} and a.cod == 25.5 and a.weight_kg == 12.5 and a.priority == 1
    assert c.kind == "courier" and c.pickup.windows[0].start == 10 * 3600 and c.drop.lat == 60.168
    assert parse_order(a.to_fields(), AREA) == a  # what the store keeps reads back the same


@pytest.mark.parametrize(
    ("row", "error"),
    [
        (
            "B1,delivery,60.17,24.94,11:00-09:00,,1,,,,,,,",
            "orders.csv:2: windows: time window ends before it starts (11:00-09:00)",
        ),
        ("B1,delivery,60.17,24.94,,,-4,,,,,,,", "orders.csv:2: weight_kg: -4 is negative"),
        ("B1,delivery,61.5,24.94,,,1,,,,,,,", "orders.csv:2: lat: 61.50000,24.94000 is outside the map"),
        ("B1,delivery,60.17,,,,1,,,,,,,", "orders.csv:2: lon: missing"),
        (
            "B1,parcel,60.17,24.94,,,1,,,,,,,",
            "orders.csv:2: kind: 'parcel': one of delivery, pickup, courier",
        ),
        (
            "B1,delivery,60.17,24.94,,,1,,,heated,,,,",
            "orders.csv:2: features: 'heated': one of refrigerated, tail_lift",
        ),
        (
            "B1,delivery,60.17,24.94,9am-10am,,1,,,,,,,",
            "orders.csv:2: windows: '9am' is not a time of day HH:MM",
        ),
        (
            "B1,delivery,60.17,24.94,09:00-11:00;10:00-12:00,,1,,,,,,,",
            "orders.csv:2: windows: windows 09:00-11:00 and 10:00-12:00 overlap",
        ),
        ("B1,delivery,60.17,24.94,,,1,,12,,,,,", "orders.csv:2: priority: 12 is above 9"),
        ("B1,delivery,60.17,24.94,,,nan,,,,,,,", "orders.csv:2: weight_kg: not a finite number"),
        ("B1,delivery,60.17,24.94", "orders.csv:2: 4 cells, the header has 14"),
        ("B 1,delivery,60.17,24.94,,,1,,,,,,,", "orders.csv:2: id: 'B 1': 1-64 of"),
        (
            "C2,courier,60.17,24.94,08:00-09:00,,1,,,,,60.17,24.94,10:00-11:00",
            "orders.csv:2: windows: the drop-off's windows all end before the pickup can start",
        ),
    ],
)
def test_each_bad_row_is_named_by_line_and_field(row: str, error: str) -> None:
    result = _read(HEADER + row + "\n")
    assert not result.ok
    assert result.errors[0].startswith(error), result.errors


def test_every_bad_row_is_listed_and_duplicates_name_the_first_line() -> None:
    text = (
        HEADER
        + GOOD
        + "B1,delivery,60.17,24.94,,,-1,,,,,,,\n"
        + GOOD
        + "\n"
        + "B2,delivery,99,24.94,,,1,,,,,,,\n"
    )
    result = _read(text)
    assert result.errors == [
        "orders.csv:3: weight_kg: -1 is negative",
        "orders.csv:4: id 'A1' repeats line 2",
        "orders.csv:6: lat: 99 is above 90",
    ]


def test_bad_headers_and_empty_files() -> None:
    assert _read("").errors == ["orders.csv:1: empty file (a header row with id, lat, lon, ... expected)"]
    assert _read("id,lat,lon,colour\n").errors[0].startswith("orders.csv:1: unknown column 'colour'")
    assert _read("lat,lon\n60.17,24.94\n").errors == ["orders.csv:1: no 'id' column"]
    assert _read("id,lat,lon\n\x00\n").errors[0].startswith("orders.csv:2")


def test_nothing_is_half_imported(tmp_path: Path) -> None:
    with fleet_engine("sqlite", tmp_path) as engine:
        tid = registry.tenant_id(engine, "acme", create=True)
        other = registry.tenant_id(engine, "rival", create=True)
        first = _read(HEADER + GOOD)
        board.add_orders(engine, tid, first.orders, {})
        second = _read(HEADER + COURIER + GOOD)  # A1 is already on the board
        with pytest.raises(board.BoardError) as err:
            board.add_orders(
                engine, tid, second.orders, {r: f"orders.csv:{n}" for r, n in second.lines.items()}
            )
        assert err.value.errors == ["orders.csv:3: id 'A1' is already on the board"]
        assert [o["id"] for o in board.orders(engine, tid)] == ["A1"]  # C1 was not stored either
        board.add_orders(engine, other, second.orders, {})  # another tenant's board is its own
        assert len(board.orders(engine, other)) == 2


@pytest.mark.timeout(300)  # ~14 s on a quiet run; the shared machine can make it three times that
def test_a_100000_line_csv_streams_with_progress_and_imports_in_one_go(tmp_path: Path, capsys) -> None:
    path = tmp_path / "big.csv"
    with path.open("w") as f:
        f.write(HEADER)
        for i in range(100_000):
            f.write(f"o{i},delivery,60.1{2 + i % 8},24.9{i % 7},08:00-18:00,60,{1 + i % 20},,,,,,,\n")
    seen: list[int] = []
    started = time.perf_counter()
    with path.open("rb") as raw:
        result = read_orders(raw, "big.csv", AREA, seen.append)
    assert result.ok and len(result.orders) == 100_000
    assert len(seen) > 10 and seen == sorted(seen) and seen[-1] == path.stat().st_size
    with fleet_engine("sqlite", tmp_path) as engine:
        tid = registry.tenant_id(engine, "acme", create=True)
        board.add_orders(engine, tid, result.orders, {})
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(db.orders)).scalar() == 100_000
    assert time.perf_counter() - started < 240


def test_cli_import_reports_rows_and_stores_nothing_on_error(tmp_path: Path, capsys) -> None:
    url = f"sqlite:///{tmp_path / 'fleet.sqlite3'}"
    assert main(["fleet", "tenant", "add", "acme", "--db", url]) == 0
    bad = tmp_path / "orders.csv"
    bad.write_text(HEADER + GOOD + "B1,delivery,60.17,24.94,17:00-16:00,,1,,,,,,,\n")
    assert main(["fleet", "orders", "import", str(bad), "--tenant", "acme", "--db", url]) == 1
    err = capsys.readouterr().err
    assert "orders.csv:3: windows: time window ends before it starts (17:00-16:00)" in err
    assert "nothing imported" in err and "Traceback" not in err
    good = tmp_path / "good.csv"
    good.write_text(HEADER + GOOD + COURIER)
    assert main(["fleet", "orders", "import", str(good), "--tenant", "acme", "--db", url, "--json"]) == 0
    assert '"imported": 2' in capsys.readouterr().out
    assert main(["fleet", "orders", "import", str(good), "--tenant", "acme", "--db", url]) == 1
    assert "good.csv:2: id 'A1' is already on the board" in capsys.readouterr().err


def test_parse_order_from_api_objects() -> None:
    with pytest.raises(board.BoardError) as err:
        board.parse_objects([{"id": "x", "lat": 60.17, "lon": 24.94, "weight_kg": -1}, "no"], AREA)
    assert err.value.errors == ["orders[0].weight_kg: -1 is negative", "orders[1]: an object"]
    with pytest.raises(OrderError):
        parse_order({"id": "x", "lat": 60.17, "lon": 24.94, "windows": [[100, 50]]}, AREA)
    orders, where = board.parse_objects(
        {"orders": [{"id": "x", "lat": 60.17, "lon": 24.94, "windows": ["08:00-09:00"]}]}, AREA
    )
    assert orders[0].drop.windows[0].end == 9 * 3600 and where == {"x": "orders[0]"}
