"""The swap tests' real parts: a CA with a server certificate for 127.0.0.1 and station client
certificates, a migrated fleet database, a running CSMS, simulated stations written with the
same ``ocpp`` package, and raw OCPP clients for frames a well-behaved station never sends."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import ipaddress
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy.engine import Engine
from websockets.asyncio.client import connect

from anycar.fleet import registry as fleet_registry
from anycar.swap import registry
from anycar.swap.csms import Csms, server_tls
from anycar.swap.migrate import upgrade
from anycar.swap.station import StationSim, client_tls
from fleet_support import fleet_engine, vin


def _write(path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> tuple[str, str]:
    path.with_suffix(".pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    path.with_suffix(".key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return str(path.with_suffix(".pem")), str(path.with_suffix(".key"))


class Pki:
    """A CA that signs the CSMS's certificate and the stations' client certificates."""

    def __init__(self, folder: Path, name: str = "anycar-test-ca") -> None:
        self.folder = folder
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = dt.datetime.now(dt.UTC)
        self.cert = (
            x509.CertificateBuilder().subject_name(self.name).issuer_name(self.name)
            .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=1)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )  # fmt: skip
        self.ca, _ = _write(folder / name, self.cert, self.key)

    def issue(self, common_name: str, *, server: bool = False) -> tuple[str, str]:
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self.name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=1)).not_valid_after(now + dt.timedelta(days=1))
        )  # fmt: skip
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
            )
        return _write(self.folder / common_name, builder.sign(self.key, hashes.SHA256()), key)


@contextlib.contextmanager
def swap_engine(kind: str, tmp_path: Path) -> Iterator[Engine]:
    """``fleet_engine`` with the swap tables migrated too."""
    with fleet_engine(kind, tmp_path, migrate=upgrade) as engine:
        yield engine


@contextlib.asynccontextmanager
async def running_csms(engine: Engine, pki: Pki | None = None, **kwargs: Any) -> AsyncIterator[Csms]:
    ctx = None
    if pki is not None:
        cert, key = pki.issue("csms", server=True)
        ctx = server_tls(cert, key, client_ca=pki.ca)
    csms = Csms(engine, ssl_context=ctx, flush_interval=0.2, **kwargs)
    await csms.start()
    try:
        yield csms
    finally:
        await csms.stop()


def vehicle(engine: Engine, tenant: str = "acme") -> tuple[str, str]:
    """A registered PICKMAN and its swap idToken."""
    creds = fleet_registry.add_vehicle(engine, vin(1), "kaiyun_pickman", tenant=tenant)
    return creds.vehicle, registry.add_token(engine, creds.vehicle)


def station(
    engine: Engine,
    ident: str,
    csms: Csms,
    pki: Pki | None = None,
    *,
    layout: str = "pickman-8",
    tenant: str = "swapco",
    **kwargs: Any,
) -> StationSim:
    """A registered, stocked station and its simulator (not yet running)."""
    password = registry.add_station(engine, ident, tenant=tenant, layout=layout)
    registry.stock_station(engine, ident, layout)
    ctx = client_tls(pki.ca) if pki else None
    return StationSim(ident, csms.url, layout, password=password, ssl_context=ctx, **kwargs)


@contextlib.asynccontextmanager
async def running(*sims: StationSim, timeout: float = 30.0) -> AsyncIterator[list[asyncio.Task[None]]]:
    tasks = [asyncio.ensure_future(s.run()) for s in sims]
    try:
        await asyncio.wait_for(asyncio.gather(*(s.booted.wait() for s in sims)), timeout)
        yield tasks
    finally:
        for s in sims:
            await s.stop()
        for task in tasks:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(task, 10)


def basic(ident: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{ident}:{password}".encode()).decode()}


@contextlib.asynccontextmanager
async def raw_station(url: str, ident: str, password: str, ssl_context: Any = None) -> AsyncIterator[Any]:
    """A bare OCPP-J client, for frames the library would refuse to build."""
    async with connect(
        f"{url}/{ident}", subprotocols=["ocpp2.1"], additional_headers=basic(ident, password), ssl=ssl_context
    ) as ws:  # type: ignore[list-item]
        yield ws


async def raw_call(ws: Any, frame: Any, timeout: float = 10.0) -> list[Any]:
    await ws.send(frame if isinstance(frame, str) else json.dumps(frame))
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def until(check: Any, timeout: float = 30.0, what: str = "") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        await asyncio.sleep(0.05)


ROUND = [  # six of the demo's addresses (fleetdemo/data/orders.csv): one PICKMAN's round
    ("D001", 60.164197, 24.946092),
    ("D002", 60.170738, 24.949822),
    ("D003", 60.167761, 24.951183),
    ("D006", 60.172103, 24.947599),
    ("D009", 60.166604, 24.943402),
    ("D012", 60.178253, 24.952248),
]


def half_charge_swap(
    route_json: dict[str, Any], depot: tuple[float, float], station: str, point: tuple[float, float]
) -> Any:
    """The swap ``plan_swap`` plans into a planned round (its JSON) for a PICKMAN with half the
    round's energy above the reserve, at ``station``; asserts there is one."""
    from anycar.logistics.problem import PlanVehicle
    from anycar.logistics.settings import vehicle_type
    from anycar.logistics.swaproute import route_from_plan
    from anycar.logistics.swapstops import RoadProvider, SwapStation, plan_swap

    route = route_from_plan(route_json)
    kind = vehicle_type("kaiyun_pickman")
    low = 0.15 + 0.5 * route.energy_kwh / kind.battery_kwh
    vehicle = PlanVehicle(str(route_json["vehicle"]), depot, depot, kind.payload_kg, kind.cargo_m3, kind.battery_kwh,
                          kind.kwh_per_km, soc=low)  # fmt: skip
    decision = plan_swap(route, vehicle, [SwapStation(station, point, 3)], RoadProvider(None, "delivery"))
    assert decision.swap is not None, decision.reason
    return decision
