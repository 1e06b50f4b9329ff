"""demo-route: a failed delivery goes back to dispatch with its reason and is not planned to the
same door before its retry rule (``data/retry.yaml``) allows: the rules as data, a failed proof
of delivery judged on the room's clock, the board as the console shows it, the planner's
windows cut to the retry time, a re-dispatch keeping the parcel on its vehicle. SQLite, the
real planner."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from anycar.errors import ConfigError
from anycar.fleet import registry
from anycar.logistics import board, dayreport, execution, retry, service
from anycar.logistics.orders import parse_order
from anycar.logistics.settings import service_area
from anycar.uplink.delivery import public_b64
from anycar.wire import signature
from fleet_support import fleet_engine, vin

DAY = 1_767_225_600.0  # 2026-01-01T00:00:00Z: the planner's day
AT = DAY + 9 * 3600 + 2 * 60  # 09:02, the failure
DEPOT = {"lat": 60.169, "lon": 24.9372}


def test_the_shipped_rules_and_their_words() -> None:
    fields = {"windows": "09:00-11:00;14:00-16:00"}
    absent = retry.decide(fields, "recipient absent", AT, "PM-1")
    assert absent["code"] == "recipient_absent" and absent["retry_at"] == AT + 300
    assert absent["retry"] == "not before 09:07" and absent["reason"] == "recipient absent"
    refused = retry.decide(fields, "Refused", AT, "PM-1")
    assert refused["retry_at"] is None and "the dispatcher decides" in refused["retry"]
    gate = retry.decide(fields, "no access", AT, "PM-1")  # next window and 600 s: the later one
    assert gate["retry_at"] == DAY + 14 * 3600 and gate["retry"] == "not before 14:00"
    late = retry.decide(fields, "no access", DAY + 15 * 3600, "PM-1")  # no window starts later
    assert late["retry_at"] is None and late["retry"].startswith("no retry today")
    other = retry.decide(fields, "van broke down", AT, "PM-1")
    assert other["code"] == "van_broke_down" and other["retry_at"] == AT + 1800


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("reasons: [1]", "reasons: a mapping"),
        ("reasons: {x: {retry_after_s: -1}}", r"reasons.x.retry_after_s: seconds"),
        ("reasons: {x: {next_window: maybe}}", r"reasons.x.next_window: true or false"),
        ("reasons: {x: {wait: 1}}", r"reasons.x: unknown wait"),
        ("reasons: {x: {}}", r"reasons.x: retry_after_s, next_window or never"),
        ("reasons: {x: [", "not valid YAML"),
    ],
)
def test_bad_rule_files_name_the_field(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        retry.load_rules(text, "retry.yaml")
    assert str(info.value).startswith("retry.yaml")


def test_the_windows_are_cut_to_the_retry_time() -> None:
    order = parse_order(
        {"id": "D1", "lat": 60.17, "lon": 24.94, "windows": "09:00-11:00;14:00-16:00"}, service_area()
    )
    cut = retry.clip(order, 9 * 3600 + 420)
    assert cut is not None and [(w.start, w.end) for w in cut.drop.windows] == [
        (9 * 3600 + 420, 11 * 3600),
        (14 * 3600, 16 * 3600),
    ]
    assert [(w.start, w.end) for w in retry.clip(order, 12 * 3600).drop.windows] == [(14 * 3600, 16 * 3600)]
    assert retry.clip(order, 17 * 3600) is None


@pytest.fixture
def engine(tmp_path: Path):
    with fleet_engine("sqlite", tmp_path) as e:
        yield e


KEY = Ed25519PrivateKey.generate()  # the hub's (pinned on its first POD)


def _failed_pod(engine, tid: int, wire: str, ref: str, reason: str, clock: float) -> None:
    """A hub's signed failed POD, judged by ``PodJudge`` on the room's clock."""
    key = KEY
    record = {
        "order": ref, "plan": 1, "version": 1, "outcome": "failed", "ts": 123.0, "reason": reason,
        "position": None, "door": {"path": None, "opened": None, "closed": None},
        "weight": {"path": None, "before_kg": None, "after_kg": None, "drop_kg": None},
        "pin": {"source": None, "digest": None}, "photo": None,
    }  # fmt: skip
    doc = {"record": signature.sign(record, key), "public_key": public_b64(key)}
    with engine.connect() as conn:
        vid = conn.exec_driver_sql("SELECT id FROM vehicles WHERE wire_id = ?", (wire,)).scalar()
    judge = execution.PodJudge(clock=lambda: clock)
    with engine.begin() as conn:
        judge(conn, SimpleNamespace(id=vid, tenant_id=tid, wire_id=wire), doc)


def test_a_failed_delivery_is_back_at_dispatch_and_replanned_no_earlier_than_its_retry(engine) -> None:
    wire = "PM-R1"
    registry.add_vehicle(engine, vin(1), "kaiyun_pickman", tenant="acme", wire_id=wire)
    tid = registry.tenant_id(engine, "acme")
    rows = [
        {"id": "D016", "lat": 60.165245, "lon": 24.942640, "weight_kg": 5, "windows": "09:00-11:00"},
        {"id": "D009", "lat": 60.166604, "lon": 24.943402, "weight_kg": 5, "windows": "09:00-13:00"},
        {"id": "GONE", "lat": 60.171405, "lon": 24.953386, "weight_kg": 5, "windows": "09:00-13:00"},
    ]
    board.add_orders(engine, tid, [parse_order(r, service_area()) for r in rows], {})
    first = service.propose(engine, tid, {"depot": DEPOT, "shift": "09:00-17:00", "time_limit_s": 0.5})
    service.accept(engine, tid, int(first["id"]))
    _failed_pod(engine, tid, wire, "D016", "recipient absent", AT)
    _failed_pod(engine, tid, wire, "GONE", "refused", AT)
    # the console's board: failed, why, and when it may go again
    view = {o["id"]: o for o in dayreport.board_view(engine, tid, None, None, None)["orders"]}
    assert view["D016"]["column"] == "failed" and view["D016"]["reason"] == "recipient absent"
    assert view["D016"]["retry"] == "not before 09:07" and view["D016"]["retry_at"] == AT + 300
    assert view["GONE"]["retry_at"] is None and "dispatcher decides" in view["GONE"]["retry"]
    # the re-dispatch at 09:02: D016 goes again, no earlier than 09:07, on the vehicle that has it
    again = service.propose_redispatch(
        engine, tid, {"depot": DEPOT, "shift": "09:00-17:00", "now": "09:02", "time_limit_s": 0.5}
    )
    (route,) = again["plan"]["routes"]
    stop = next(s for s in route["stops"] if s.get("order") == "D016")
    assert stop["window"] == "09:07-11:00" and stop["start"] >= "09:07", stop
    assert "GONE" not in [s.get("order") for s in route["stops"]]
    assert any(n.startswith("GONE: failed (refused); no automatic retry") for n in again["plan"]["notes"])
    # accepting it makes the new attempt planned, and its delivery row open again
    service.accept(engine, tid, int(again["id"]))
    status = {o["id"]: o["status"] for o in board.orders(engine, tid)}
    assert status["D016"] == "planned" and status["GONE"] == "failed"
    rows_now = {r["order"]: r for r in execution.delivery_rows(engine, tid)}
    assert rows_now["D016"]["status"] == "planned" and rows_now["D016"]["window"] == "09:07-11:00"


def test_a_failure_marked_in_the_console_gets_its_retry_on_the_rooms_clock(engine) -> None:
    registry.add_vehicle(engine, vin(2), "kaiyun_pickman", tenant="acme", wire_id="PM-R2")
    tid = registry.tenant_id(engine, "acme")
    row = {"id": "C1", "lat": 60.165, "lon": 24.942, "weight_kg": 5, "windows": "09:00-11:00"}
    board.add_orders(engine, tid, [parse_order(row, service_area())], {})
    assert dayreport.record_outcome(engine, tid, "C1", "failed", "recipient absent", "disp", now=AT)
    (o,) = [x for x in dayreport.board_view(engine, tid, None, None, None)["orders"] if x["id"] == "C1"]
    assert o["retry_at"] == AT + 300 and o["retry"] == "not before 09:07"


# --- the cap on attempts (retry.yaml ``cap``) ------------------------------------------------


def test_the_shipped_cap_is_data() -> None:
    assert retry.cap() == retry.load_cap(retry.DATA.read_text("utf-8"))
    assert retry.cap().then in retry.THEN and retry.cap().max_attempts >= 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("cap: 3", "cap: a mapping"),
        ("cap: {max_attempts: 0}", r"cap.max_attempts: a whole number 1..20"),
        ("cap: {max_attempts: true}", r"cap.max_attempts: a whole number"),
        ("cap: {max_attempts: 2.5}", r"cap.max_attempts: a whole number"),
        ("cap: {then: burn}", r"cap.then: one of return_to_depot, failed"),
        ("cap: {tries: 2}", r"cap: unknown tries"),
    ],
)
def test_a_bad_cap_names_the_field(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        retry.load_cap(text, "retry.yaml")
    assert str(info.value).startswith("retry.yaml")


@given(
    most=st.integers(1, 6),
    reasons=st.lists(
        st.sampled_from(["recipient absent", "no access", "van broke down", "Refused"]),
        min_size=1,
        max_size=8,
    ),
    then=st.sampled_from(sorted(retry.THEN)),
)
def test_no_order_is_retried_past_the_cap(most: int, reasons: list[str], then: str) -> None:
    """Whatever the reasons, the n-th failure counts n, and the one at the cap (and any after it,
    should the dispatcher re-open the order) is final with no retry time."""
    limit = retry.Cap(most, then)
    fields: dict = {"windows": "09:00-11:00;14:00-16:00"}
    for n, reason in enumerate(reasons, 1):
        out = retry.decide(fields, reason, AT + n, "PM-1", limit)
        assert out["attempts"] == n and out["max_attempts"] == most
        if n >= most:
            assert out["retry_at"] is None and out["final"] == then and out["rule"] == "cap"
            assert out["retry"] == f"no retry: attempt {n} of {most} failed; {retry.THEN[then]}"
        else:
            assert "final" not in out
        fields = {**fields, "outcome": out}


def test_an_outcome_from_before_the_count_is_one_attempt() -> None:
    old = {"windows": "09:00-11:00", "outcome": {"status": "failed", "reason": "x", "retry_at": None}}
    assert retry.decide(old, "recipient absent", AT, "PM-1", retry.Cap(2))["final"] == "return_to_depot"
    assert retry.attempts_before({"windows": "09:00-11:00"}) == 0


def test_the_failure_at_the_cap_is_final_raises_the_event_and_is_not_planned_again(engine) -> None:
    """Three failed attempts (the shipped cap): the console's, then two hub PODs; the third is
    final: no retry, the alert for the dispatcher (and its webhook), the board's words, and the
    re-dispatch leaves it out with the reason."""
    from sqlalchemy import select

    from anycar.fleet.domain_tables import alerts
    from anycar.logistics.execution_tables import pod_outbox

    wire = "PM-CAP"
    registry.add_vehicle(engine, vin(3), "kaiyun_pickman", tenant="acme", wire_id=wire)
    tid = registry.tenant_id(engine, "acme")
    rows = [
        {"id": "K1", "lat": 60.165245, "lon": 24.942640, "weight_kg": 5, "windows": "09:00-16:00"},
        {"id": "K2", "lat": 60.166604, "lon": 24.943402, "weight_kg": 5, "windows": "09:00-16:00"},
    ]
    board.add_orders(engine, tid, [parse_order(r, service_area()) for r in rows], {})
    first = service.propose(engine, tid, {"depot": DEPOT, "shift": "09:00-17:00", "time_limit_s": 0.5})
    service.accept(engine, tid, int(first["id"]))
    assert dayreport.record_outcome(engine, tid, "K1", "failed", "recipient absent", "disp", now=AT)
    _failed_pod(engine, tid, wire, "K1", "recipient absent", AT + 600)
    with engine.connect() as conn:
        assert conn.execute(select(alerts).where(alerts.c.type == "delivery_final")).all() == []
    view = {o["id"]: o for o in dayreport.board_view(engine, tid, None, None, None)["orders"]}
    assert (view["K1"]["attempts"], view["K1"]["max_attempts"], view["K1"]["final"]) == (2, 3, None)
    _failed_pod(engine, tid, wire, "K1", "no access", AT + 1200)
    view = {o["id"]: o for o in dayreport.board_view(engine, tid, None, None, None)["orders"]}
    assert (view["K1"]["attempts"], view["K1"]["final"], view["K1"]["retry_at"]) == (
        3,
        "return_to_depot",
        None,
    )
    assert view["K1"]["retry"] == "no retry: attempt 3 of 3 failed; the parcel goes back to the depot"
    assert view["K2"]["attempts"] is None
    with engine.connect() as conn:
        (raised,) = conn.execute(select(alerts).where(alerts.c.type == "delivery_final")).all()
        hooks = conn.execute(select(pod_outbox.c.kind, pod_outbox.c.item)).all()
    assert raised.data["order"] == "K1" and raised.data["attempts"] == 3 and raised.severity == "warning"
    assert "attempt 3 of 3" in raised.message and "no access" in raised.message
    assert [
        h.item["type"] for h in hooks if h.kind == "alert" and h.item.get("type") == "delivery_final"
    ] == ["delivery_final"]
    (told,) = [h.item for h in hooks if h.kind == "delivery_failed" and h.item.get("final")]
    assert told["final"] == "return_to_depot" and told["attempts"] == 3
    again = service.propose_redispatch(
        engine, tid, {"depot": DEPOT, "shift": "09:00-17:00", "now": "09:30", "time_limit_s": 0.5}
    )
    planned = [s.get("order") for r in again["plan"]["routes"] for s in r["stops"]]
    assert "K1" not in planned and "K2" in planned
    assert any(
        n.startswith("K1: failed (no access); no retry: attempt 3 of 3") for n in again["plan"]["notes"]
    )
