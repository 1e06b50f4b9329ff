"""Shared subscriptions on the embedded broker (rumqttd 0.20, from the iotcore wheel).

rumqttd keys a shared group by its share name alone (its router's ``shared_subscriptions`` map
is ``name -> SharedGroup``, one cursor for the group), while MQTT 5 (4.8.2) makes a shared
subscription the pair (share name, filter). So several filters under one share name, as the
fleet's ingest subscribes (``$share/anycar-ingest/anycar/v1/+/<channel>`` for every channel),
share one read cursor over the filters' separate logs: the busiest filter (telemetry) is served
and the others' messages are mostly skipped; the demo therefore subscribes plainly (``group=""``).
A share name per filter is served, and balanced across the group's members. Our wrapper only
writes rumqttd's config: nothing in it touches subscriptions. If a new rumqttd fixes this, the
first test fails, and the demo can go back to shared groups."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from anycar.embedded_broker import EmbeddedBroker

pytestmark = pytest.mark.timeout(60)
TOPICS = ("anycar/v1/car-1/telemetry", "anycar/v1/car-1/events", "anycar/v1/car-1/pod")


class Member:
    """One MQTT 5 client subscribed to ``filters`` in one SUBSCRIBE; what it got, by topic."""

    def __init__(self, port: int, name: str, filters: list[str]) -> None:
        self.got: list[str] = []
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=name, protocol=mqtt.MQTTv5)
        self.client.on_message = lambda _c, _u, m: self.got.append(m.topic)
        self.subscribed = False
        self.client.on_subscribe = lambda *_: setattr(self, "subscribed", True)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.client.subscribe([(f, 1) for f in filters])
        _until(lambda: self.subscribed, "SUBACK")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _until(check: Any, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


@pytest.fixture
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as b:
        yield b


def _publish(port: int, topics: list[str]) -> None:
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="publisher", protocol=mqtt.MQTTv5)
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    try:
        for topic in topics:
            pub.publish(topic, b"x", qos=1).wait_for_publish(10)
    finally:
        pub.disconnect()
        pub.loop_stop()


def test_one_share_name_over_several_filters_loses_messages(broker: EmbeddedBroker) -> None:
    member = Member(broker.port, "ingest-1", [f"$share/anycar-ingest/{t}" for t in TOPICS])
    plain = Member(broker.port, "watcher", list(TOPICS))  # the same filters, plainly: all of them
    try:
        sent = [TOPICS[2], TOPICS[1], TOPICS[0]] * 3 + [TOPICS[0]] * 3  # telemetry the busiest
        _publish(broker.port, sent)
        _until(lambda: len(plain.got) == len(sent), "the plain deliveries")
        time.sleep(0.5)  # time for the group's, had rumqttd routed them all
        assert sorted(plain.got) == sorted(sent)
        # One cursor for the group over every filter's own log: a message is delivered only when
        # its place in its filter's log is past what the group read from any filter, so the busy
        # channel (telemetry) leaves the others (events, command results, proofs) behind.
        assert len(member.got) < len(sent), member.got
        assert {t: member.got.count(t) for t in TOPICS} != {t: sent.count(t) for t in TOPICS}
    finally:
        member.close()
        plain.close()


def test_a_share_name_per_filter_is_served_and_balanced(broker: EmbeddedBroker) -> None:
    filters = [f"$share/anycar-ingest-{i}/{t}" for i, t in enumerate(TOPICS)]
    members = [Member(broker.port, f"ingest-{n}", filters) for n in range(2)]
    try:
        _publish(broker.port, [t for t in TOPICS for _ in range(4)])  # four of each
        _until(lambda: sum(len(m.got) for m in members) == 12, "every message once")
        time.sleep(0.3)
        got = [t for m in members for t in m.got]
        assert sorted(got) == sorted(t for t in TOPICS for _ in range(4))  # each exactly once
        assert all(m.got for m in members)  # the group shares the load
    finally:
        for m in members:
            m.close()
