"""The hub's configuration: addresses, ports, token key, TLS, limits; read from YAML or TOML.

Example (YAML; TOML has the same keys)::

    host: 127.0.0.1            # where every server binds
    ports:                     # 0 picks a free port; null turns that server off
      grpc: 55555              # kuksa.val.v2
      viss: 8090               # VISS v2 over WebSocket
      http: 8080               # REST management API, VISS over HTTP and the dashboard
      accessories: 8765        # accessory protocol (WebSocket), with --brand
    tokens:
      public_key: keys/jwt.key.pub   # PEM, RSA (RS256) or EC P-256 (ES256)
      audience: null
      issuer: null
    tls:                       # optional; serves wss://, grpcs and https
      cert: certs/server.pem
      key: certs/server.key
    limits:
      max_message_bytes: 65536
      requests_per_s: 1000
      burst: 2000
      max_subscriptions: 256
      history_per_signal: 100  # recent values kept for VISS's history filter; 0: none
      max_update_age_ms: 2000  # a subscriber's update queued longer is dropped, counted; 0: none
    actuation_timeout_s: 2.0
    automations: [automations/]  # definition files or folders (anycar.automations)
    uplink:                    # optional; MQTT to the fleet cloud (see anycar.uplink.config)
      broker: mqtt://127.0.0.1:1883
      vehicle_id: PM-0001

Relative file names are taken from the config file's folder. Without a token key the hub
serves everyone, so it refuses any address but loopback.
"""

from __future__ import annotations

import ipaddress
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from anycar import decoding
from anycar.api.viss import VissLimits
from anycar.config_checks import only_keys, optional_str
from anycar.errors import ConfigError
from anycar.uplink.config import UplinkConfig

DEFAULT_PORTS = {"grpc": 55555, "viss": 8090, "http": 8080, "accessories": 8765}
_TOP = {"host", "ports", "tokens", "tls", "limits", "actuation_timeout_s", "automations", "uplink"}


@dataclass
class HubConfig:
    host: str = "127.0.0.1"
    ports: dict[str, int | None] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    token_public_key: Path | None = None
    token_audience: str | None = None
    token_issuer: str | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    limits: VissLimits = field(default_factory=VissLimits)
    actuation_timeout_s: float = 2.0
    automations: list[Path] | None = None
    uplink: UplinkConfig | None = None
    source: str = "<defaults>"

    @property
    def open(self) -> bool:
        """True when no token key is configured: every client may do everything."""
        return self.token_public_key is None

    def check(self) -> None:
        """Refuse combinations that are unsafe or cannot work, saying which setting to change."""
        if self.open and not is_loopback(self.host):
            raise ConfigError(
                f"{self.source}: host {self.host!r} is not loopback and no token key is configured; "
                "set tokens.public_key (see `anycar token mint`) or bind 127.0.0.1"
            )
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError(f"{self.source}: tls needs both 'cert' and 'key'")
        used = [p for p in self.ports.values() if p]
        if len(used) != len(set(used)):
            raise ConfigError(f"{self.source}: two servers are configured on the same port: {self.ports}")

    @classmethod
    def load(cls, path: str | Path) -> HubConfig:
        file = Path(path)
        try:
            text = file.read_text("utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read hub config {file}: {exc.strerror}") from None
        try:
            data = tomllib.loads(text) if file.suffix == ".toml" else decoding.load_document(text, str(file))
        except decoding.DecodingError as exc:
            raise ConfigError(f"{file}: not valid YAML: {exc.detail}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(
                f"{file}: not valid {'TOML' if file.suffix == '.toml' else 'YAML'}: {exc}"
            ) from None
        return cls.from_dict(data or {}, source=str(file), base=file.parent)

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "<config>", base: Path | None = None) -> HubConfig:
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: the hub config must be a mapping, got {type(data).__name__}")
        unknown = set(data) - _TOP
        if unknown:
            raise ConfigError(f"{source}: unknown key(s) {sorted(unknown)}; expected {sorted(_TOP)}")
        cfg = cls(source=source)
        host = data.get("host", cfg.host)
        if not isinstance(host, str) or not host:
            raise ConfigError(f"{source}: 'host' must be a non-empty string")
        cfg.host = host
        ports = _section(data, "ports", source)
        for name, value in ports.items():
            if name not in DEFAULT_PORTS:
                raise ConfigError(f"{source}: ports.{name} is not one of {sorted(DEFAULT_PORTS)}")
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535
            ):
                raise ConfigError(f"{source}: ports.{name} must be 0..65535 or null, got {value!r}")
            cfg.ports[name] = value
        tokens = _section(data, "tokens", source)
        only_keys(tokens, {"public_key", "audience", "issuer"}, f"{source}: tokens")
        cfg.token_public_key = _path(tokens.get("public_key"), base, f"{source}: tokens.public_key")
        cfg.token_audience = optional_str(tokens.get("audience"), f"{source}: tokens.audience")
        cfg.token_issuer = optional_str(tokens.get("issuer"), f"{source}: tokens.issuer")
        tls = _section(data, "tls", source)
        only_keys(tls, {"cert", "key"}, f"{source}: tls")
        cfg.tls_cert = _path(tls.get("cert"), base, f"{source}: tls.cert")
        cfg.tls_key = _path(tls.get("key"), base, f"{source}: tls.key")
        limits = _section(data, "limits", source)
        names = {f.name: f for f in fields(VissLimits)}
        only_keys(limits, set(names), f"{source}: limits")
        values: dict[str, Any] = {}
        for key, value in limits.items():
            floor_ok = value >= 0 if key in ("history_per_signal", "max_update_age_ms") else value > 0
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not floor_ok:
                raise ConfigError(f"{source}: limits.{key} must be a positive number, got {value!r}")
            values[key] = float(value) if key == "requests_per_s" else int(value)
        cfg.limits = VissLimits(**values)
        timeout = data.get("actuation_timeout_s", cfg.actuation_timeout_s)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 60:
            raise ConfigError(f"{source}: actuation_timeout_s must be a number in (0, 60], got {timeout!r}")
        cfg.actuation_timeout_s = float(timeout)
        cfg.automations = _automation_paths(data.get("automations"), base, source)
        if data.get("uplink") is not None:
            cfg.uplink = UplinkConfig.from_dict(data["uplink"], source=source, base=base)
        return cfg


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _section(data: dict[str, Any], key: str, source: str) -> dict[str, Any]:
    value = data.get(key) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: '{key}' must be a mapping, got {type(value).__name__}")
    return value


def _path(value: Any, base: Path | None, where: str) -> Path | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where} must be a file name")
    path = Path(value).expanduser()
    if not path.is_absolute() and base is not None:
        path = base / path
    if not path.is_file():
        raise ConfigError(f"{where}: file {path} does not exist")
    return path


def _automation_paths(value: Any, base: Path | None, source: str) -> list[Path] | None:
    """``automations:`` is a file or folder name, or a list of them (relative to the config)."""
    if value is None:
        return None
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(v, str) and v for v in items):
        raise ConfigError(f"{source}: 'automations' must be a file or folder name, or a list of them")
    out = []
    for item in items:
        path = Path(item).expanduser()
        out.append(base / path if base is not None and not path.is_absolute() else path)
    return out
