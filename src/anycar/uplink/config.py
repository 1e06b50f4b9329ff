"""The uplink's settings: where the broker is, who this vehicle is, credentials, TLS, the spool,
campaigns, the fleet's keys and what remote commands may do. From ``hub.yaml``'s ``uplink:``
section or from ``anycar hub --uplink mqtt://HOST:PORT --vehicle-id ID``.

Example::

    uplink:
      broker: mqtts://fleet.example.com:8883
      vehicle_id: PM-0001
      username: PM-0001
      password_file: secrets/mqtt.pass
      tls: {ca: certs/ca.pem, cert: certs/PM-0001.pem, key: certs/PM-0001.key}
      spool: {path: uplink.sqlite3, quota_mb: 64}
      campaigns: [campaigns/default.yaml]
      fleet_keys: [keys/fleet.pub]          # base64 Ed25519 public keys
      commands: {actuates: [Vehicle.Cabin.Light.*], rate_per_s: 1, burst: 5,
                 scenes: [night_delivery], fleet_events: true, firmware: true, firmware_max_mb: 16}
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from anycar.config_checks import only_keys, optional_str
from anycar.errors import ConfigError
from anycar.wire import Format, WireError, check_vehicle

SHIPPED = Path(__file__).with_name("data")
DEFAULT_CAMPAIGN = SHIPPED / "campaigns" / "default.yaml"
_KEYS = {
    "broker",
    "vehicle_id",
    "client_id",
    "username",
    "password",
    "password_file",
    "tls",
    "protocol",
    "keepalive_s",
    "spool",
    "drain_rate",
    "window",
    "reconnect",
    "campaigns",
    "fleet_keys",
    "commands",
    "format",
    "compress",
    "events",
}


@dataclass
class TlsSettings:
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None


@dataclass
class CommandSettings:
    """What the fleet may actuate (patterns, Operate at most: never a safety-critical branch)."""

    actuates: list[str] = field(default_factory=list)
    rate_per_s: float = 2.0
    burst: int = 10
    max_ttl_s: float = 3600.0
    scenes: list[str] = field(default_factory=list)  # scene ids the fleet may apply; "*": any
    fleet_events: bool = True  # fleet events reach the automations' fleet_event triggers
    firmware: bool = True  # vendor-signed accessory firmware may be installed
    firmware_max_mb: float = 16.0


@dataclass
class UplinkConfig:
    host: str = "127.0.0.1"
    port: int = 1883
    tls_on: bool = False
    vehicle_id: str = ""
    client_id: str = ""
    username: str | None = None
    password: str | None = None
    tls: TlsSettings = field(default_factory=TlsSettings)
    protocol: int = 5  # 5 or 4 (3.1.1, for brokers without MQTT 5)
    keepalive_s: int = 30
    spool_path: Path | None = None
    quota_mb: float = 64.0
    drain_rate: float = 200.0  # backlog messages per second after an outage
    window: int = 32  # messages in flight awaiting PUBACK
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 60.0
    campaigns: list[Path] = field(default_factory=lambda: [DEFAULT_CAMPAIGN])
    fleet_keys: list[str] = field(default_factory=list)  # base64 Ed25519 public keys
    commands: CommandSettings = field(default_factory=CommandSettings)
    format: Format = Format.CBOR
    compress: bool = True
    events: Path | None = None  # thresholds file; None: the shipped one
    source: str = "<uplink>"

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls_on else 'mqtt'}://{self.host}:{self.port}"

    @classmethod
    def from_url(cls, url: str, vehicle_id: str | None = None) -> UplinkConfig:
        cfg = cls(source="--uplink")
        cfg.set_broker(url)
        cfg.set_vehicle(vehicle_id)
        return cfg

    def set_broker(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ConfigError(
                f"{self.source}: broker {url!r} must look like mqtt://HOST:PORT or mqtts://HOST:PORT"
            )
        self.tls_on = parts.scheme == "mqtts"
        self.host = parts.hostname
        try:
            self.port = parts.port or (8883 if self.tls_on else 1883)
        except ValueError:
            raise ConfigError(f"{self.source}: broker {url!r} has a bad port") from None
        if parts.username:
            self.username = parts.username
            self.password = parts.password

    def set_vehicle(self, vehicle_id: str | None) -> None:
        chosen = vehicle_id or self.vehicle_id or _hostname_id()
        try:
            self.vehicle_id = check_vehicle(chosen)
        except WireError as exc:
            raise ConfigError(f"{self.source}: {exc}") from None
        self.client_id = self.client_id or f"anycar-{self.vehicle_id}"

    def rename(self, vehicle_id: str) -> None:
        """Another vehicle id (``--vehicle-id`` over the config's); a derived client id follows it."""
        if self.client_id == f"anycar-{self.vehicle_id}":
            self.client_id = ""
        self.vehicle_id = ""
        self.set_vehicle(vehicle_id)

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "<uplink>", base: Path | None = None) -> UplinkConfig:
        where = f"{source}: uplink"
        if not isinstance(data, dict):
            raise ConfigError(f"{where} must be a mapping, got {type(data).__name__}")
        only_keys(data, _KEYS, where)
        cfg = cls(source=source)
        broker = data.get("broker")
        if not isinstance(broker, str):
            raise ConfigError(f"{where}.broker: needed, as mqtt://HOST:PORT or mqtts://HOST:PORT")
        cfg.set_broker(broker)
        cfg.client_id = optional_str(data.get("client_id"), f"{where}.client_id") or ""
        cfg.username = optional_str(data.get("username"), f"{where}.username") or cfg.username
        cfg.password = optional_str(data.get("password"), f"{where}.password") or cfg.password
        if data.get("password_file") is not None:
            secret = _file(data["password_file"], base, f"{where}.password_file")
            cfg.password = secret.read_text("utf-8").strip()
        tls = data.get("tls") or {}
        if not isinstance(tls, dict):
            raise ConfigError(f"{where}.tls must be a mapping with ca, cert, key")
        only_keys(tls, {"ca", "cert", "key"}, f"{where}.tls")
        cfg.tls = TlsSettings(
            *(_file(tls[k], base, f"{where}.tls.{k}") if tls.get(k) else None for k in ("ca", "cert", "key"))
        )
        if (cfg.tls.cert is None) != (cfg.tls.key is None):
            raise ConfigError(f"{where}.tls: a client certificate needs both 'cert' and 'key'")
        if tls:
            cfg.tls_on = True
        protocol = data.get("protocol", 5)
        if protocol not in (5, 4, "5", "3.1.1"):
            raise ConfigError(f"{where}.protocol: 5 or 3.1.1, got {protocol!r}")
        cfg.protocol = 5 if str(protocol) == "5" else 4
        cfg.keepalive_s = int(_number(data.get("keepalive_s", 30), f"{where}.keepalive_s", 5, 3600))
        spool = data.get("spool") or {}
        if not isinstance(spool, dict):
            raise ConfigError(f"{where}.spool must be a mapping with path, quota_mb")
        only_keys(spool, {"path", "quota_mb"}, f"{where}.spool")
        if spool.get("path") is not None:
            path = Path(str(spool["path"])).expanduser()
            cfg.spool_path = path if path.is_absolute() or base is None else base / path
        cfg.quota_mb = _number(spool.get("quota_mb", cfg.quota_mb), f"{where}.spool.quota_mb", 0.01, 1e6)
        cfg.drain_rate = _number(data.get("drain_rate", cfg.drain_rate), f"{where}.drain_rate", 0.1, 1e6)
        cfg.window = int(_number(data.get("window", cfg.window), f"{where}.window", 1, 1000))
        reconnect = data.get("reconnect") or {}
        if not isinstance(reconnect, dict):
            raise ConfigError(f"{where}.reconnect must be a mapping with min_s, max_s")
        only_keys(reconnect, {"min_s", "max_s"}, f"{where}.reconnect")
        cfg.reconnect_min_s = _number(reconnect.get("min_s", 0.5), f"{where}.reconnect.min_s", 0.01, 600)
        cfg.reconnect_max_s = _number(
            reconnect.get("max_s", 60), f"{where}.reconnect.max_s", cfg.reconnect_min_s, 3600
        )
        if "campaigns" in data:
            files = data["campaigns"] or []
            if not isinstance(files, list):
                raise ConfigError(f"{where}.campaigns must be a list of campaign files")
            cfg.campaigns = [_file(f, base, f"{where}.campaigns[{i}]") for i, f in enumerate(files)]
        keys = data.get("fleet_keys") or []
        if not isinstance(keys, list):
            raise ConfigError(f"{where}.fleet_keys must be a list of key files or base64 keys")
        cfg.fleet_keys = [_key_text(k, base, f"{where}.fleet_keys[{i}]") for i, k in enumerate(keys)]
        commands = data.get("commands") or {}
        if not isinstance(commands, dict):
            raise ConfigError(f"{where}.commands must be a mapping")
        only_keys(
            commands,
            {
                "actuates",
                "rate_per_s",
                "burst",
                "max_ttl_s",
                "scenes",
                "fleet_events",
                "firmware",
                "firmware_max_mb",
            },
            f"{where}.commands",
        )
        scenes = commands.get("scenes", [])
        if not isinstance(scenes, list) or not all(isinstance(s, str) for s in scenes):
            raise ConfigError(f"{where}.commands.scenes must be a list of scene ids (or '*')")
        for flag in ("fleet_events", "firmware"):
            if not isinstance(commands.get(flag, True), bool):
                raise ConfigError(f"{where}.commands.{flag} must be true or false")
        actuates = commands.get("actuates", [])
        if not isinstance(actuates, list) or not all(isinstance(a, str) for a in actuates):
            raise ConfigError(f"{where}.commands.actuates must be a list of VSS paths or patterns")
        cfg.commands = CommandSettings(
            actuates=actuates,
            rate_per_s=_number(commands.get("rate_per_s", 2.0), f"{where}.commands.rate_per_s", 0.001, 1000),
            burst=int(_number(commands.get("burst", 10), f"{where}.commands.burst", 1, 10000)),
            max_ttl_s=_number(commands.get("max_ttl_s", 3600), f"{where}.commands.max_ttl_s", 1, 86400 * 7),
            scenes=scenes,
            fleet_events=commands.get("fleet_events", True),
            firmware=commands.get("firmware", True),
            firmware_max_mb=_number(
                commands.get("firmware_max_mb", 16), f"{where}.commands.firmware_max_mb", 0.001, 64
            ),
        )
        fmt = data.get("format", "cbor")
        if fmt not in ("cbor", "json"):
            raise ConfigError(f"{where}.format: cbor or json, got {fmt!r}")
        cfg.format = Format(fmt)
        compress = data.get("compress", True)
        if not isinstance(compress, bool):
            raise ConfigError(f"{where}.compress must be true or false")
        cfg.compress = compress
        if data.get("events") is not None:
            cfg.events = _file(data["events"], base, f"{where}.events")
        cfg.set_vehicle(optional_str(data.get("vehicle_id"), f"{where}.vehicle_id"))
        return cfg


def _hostname_id() -> str:
    name = "".join(c if c.isalnum() or c in "_.:-" else "-" for c in socket.gethostname())[:60]
    return f"hub-{name or 'local'}"


def _number(value: Any, where: str, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise ConfigError(f"{where} must be a number in [{lo:g}, {hi:g}], got {value!r}")
    return float(value)


def _file(value: Any, base: Path | None, where: str) -> Path:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where} must be a file name")
    path = Path(value).expanduser()
    if not path.is_absolute() and base is not None:
        path = base / path
    if not path.is_file():
        raise ConfigError(f"{where}: file {path} does not exist")
    return path


def _key_text(value: Any, base: Path | None, where: str) -> str:
    """A key given inline (base64 of 32 bytes) or as a file holding it."""
    if isinstance(value, str) and len(value) == 44 and value.endswith("="):
        return value
    return _file(value, base, where).read_text("utf-8").strip()
