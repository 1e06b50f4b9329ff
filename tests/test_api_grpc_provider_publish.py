"""A provider stream's ``PublishValuesRequest`` whose datapoints carry different timestamps stores
each value with its own, however the timestamps alternate (the stream compares each datapoint's
timestamp with the previous one before reading it)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from kuksa.val.v2 import val_pb2 as v2

from anycar.api.auth import Grants
from anycar.api.grpc import lean_request as lean
from anycar.api.grpc.provider_stream import ProviderStream
from anycar.api.grpc.val_v2 import ValV2Service
from anycar.broker import SignalBroker
from anycar.model import Catalog

CATALOG = Catalog.load_default()
PATHS = [
    "Vehicle.Acceleration.Lateral",
    "Vehicle.Acceleration.Longitudinal",
    "Vehicle.Acceleration.Vertical",
    "Vehicle.CurrentLocation.Altitude",
]
STAMPS = [(0, 0), (1_700_000_000, 1000), (1_700_000_000, 2000), (1_700_000_001, 1000)]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(STAMPS), min_size=len(PATHS), max_size=len(PATHS)))
def test_each_value_keeps_the_timestamp_its_datapoint_gave(stamps: list[tuple[int, int]]) -> None:
    broker = SignalBroker(CATALOG)
    service = ValV2Service(broker, None)  # type: ignore[arg-type] # open grants: no token checks
    stream = ProviderStream(broker, service.access, Grants(open=True), "test")
    request = v2.PublishValuesRequest(request_id=1)
    for k, (path, (seconds, nanos)) in enumerate(zip(PATHS, stamps, strict=True)):
        sig = CATALOG.get(path)
        dp = request.data_points[sig.id]
        if seconds or nanos:
            dp.timestamp.seconds, dp.timestamp.nanos = seconds, nanos
        if sig.datatype == "float":
            dp.value.float = 1.5 + k
        else:
            dp.value.double = 1.5 + k
    stream._publish(lean.PublishValuesRequest.FromString(request.SerializeToString()))
    assert stream.outgoing.empty()  # nothing refused
    for k, (path, (seconds, nanos)) in enumerate(zip(PATHS, stamps, strict=True)):
        stored = broker.get(path)
        assert stored is not None and stored.value == 1.5 + k
        if seconds or nanos:
            assert stored.timestamp == seconds + nanos * 1e-9
        else:  # no timestamp: the hub's time of receipt
            assert stored.timestamp > 1_700_000_001
    stream.close()
