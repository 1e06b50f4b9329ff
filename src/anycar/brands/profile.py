"""Brand profiles: one folder of data per vehicle model, under ``brands/data/<profile_id>/``.

``profile.yaml`` names the brand and model, lists the buses with their DBC files (and the
channel each is usually seen on), the mapping files, and whether the DBCs are ``reference``
files written by this project rather than the maker's own. Other rooms keep their own files
beside it (accessory mount points in ``mounts.yaml``): ``BrandProfile.directory`` is the folder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from anycar import decoding
from anycar.can.dbc import LoadedDbc, load_dbc
from anycar.can.mapping import Mapping, load_mappings
from anycar.can.network import Bus, CanNetwork
from anycar.errors import ConfigError

_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_KEYS = frozenset(
    {
        "brand",
        "model",
        "reference",
        "buses",
        "mappings",
        "sample_log",
        "description",
        "source",
        "vehicle_class",
        "overlays",
        "body",
    }
)
BODIES = ("sedan", "hatchback", "suv", "pickup")


@dataclass(slots=True)
class BusSpec:
    name: str
    dbc: list[str]
    channel: str | None = None


@dataclass(slots=True)
class BrandProfile:
    id: str
    brand: str
    model: str
    directory: Path
    buses: list[BusSpec]
    mappings: list[str]
    reference: bool = False
    description: str = ""
    source: str = ""
    vehicle_class: str = "passenger_car"
    sample_log: str | None = None
    #: VSS overlays (``.vspec``/YAML/JSON) the catalog needs before the mapping: new signals it feeds
    overlays: list[str] = field(default_factory=list)
    body: str = "sedan"  # the outline people see: sedan, hatchback, suv or pickup
    _dbcs: dict[str, LoadedDbc] = field(default_factory=dict, repr=False)

    @property
    def title(self) -> str:
        return f"{self.brand} {self.model}"

    def file(self, name: str) -> Path:
        """A file of the profile's folder (what other rooms use to find their own data)."""
        return self.directory / name

    def dbc(self, name: str) -> LoadedDbc:
        if name not in self._dbcs:
            self._dbcs[name] = _cached_dbc(self.directory / name)
        return self._dbcs[name]

    def network(self) -> CanNetwork:
        return CanNetwork([Bus(b.name, [self.dbc(d) for d in b.dbc], b.channel) for b in self.buses])

    def mapping(self) -> Mapping:
        return load_mappings(self.directory / m for m in self.mappings)

    def overlay_files(self) -> list[Path]:
        return [self.directory / o for o in self.overlays]

    def dbc_warnings(self) -> list[str]:
        return [str(w) for b in self.buses for d in b.dbc for w in self.dbc(d).warnings]

    def sample_log_path(self) -> Path | None:
        return self.directory / self.sample_log if self.sample_log else None


_DBC_CACHE: dict[tuple[str, int, int], LoadedDbc] = {}


def _cached_dbc(path: Path) -> LoadedDbc:
    """Parsing a large DBC takes a tenth of a second; profiles share the result (read-only)."""
    try:
        st = path.stat()
    except OSError:
        return load_dbc(path)
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    hit = _DBC_CACHE.get(key)
    if hit is None:
        hit = _DBC_CACHE[key] = load_dbc(path)
    return hit


def data_root() -> Path:
    return Path(str(resources.files("anycar.brands").joinpath("data")))


@cache
def profile_ids(root: Path | None = None) -> tuple[str, ...]:
    base = root or data_root()
    return tuple(sorted(p.name for p in base.iterdir() if (p / "profile.yaml").is_file()))


def list_profiles(root: Path | None = None) -> list[BrandProfile]:
    return [load_profile(pid, root) for pid in profile_ids(root)]


def load_profile(profile_id: str, root: Path | None = None) -> BrandProfile:
    """The profile with this id; an unknown id is an error listing the known ones."""
    base = root or data_root()
    if not isinstance(profile_id, str) or not _ID.match(profile_id) or not (base / profile_id).is_dir():
        known = ", ".join(profile_ids(root))
        raise ConfigError(f"unknown brand profile {profile_id!r} (known: {known})")
    return load_profile_dir(base / profile_id)


def load_profile_dir(directory: Path) -> BrandProfile:
    """A profile folder anywhere (``--profile DIR``): ``profile.yaml`` and the files it names."""
    path = directory / "profile.yaml"
    if not path.is_file():
        raise ConfigError(f"{directory}: not a brand profile folder (no profile.yaml)")
    try:
        data = decoding.load_document(path.read_text(encoding="utf-8"), str(path))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read profile: {exc.strerror}") from None
    except decoding.DecodingError as exc:
        raise ConfigError(str(exc)) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a profile is a mapping")
    unknown = set(data) - _KEYS
    if unknown:
        raise ConfigError(f"{path}: unknown field {sorted(unknown)[0]!r} (known: {', '.join(sorted(_KEYS))})")
    for key in ("brand", "model"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise ConfigError(f"{path}: field {key!r} (a name) is required")
    buses = [_bus(path, i, b, directory) for i, b in enumerate(_list(path, data, "buses"))]
    if not buses:
        raise ConfigError(f"{path}: field 'buses' needs at least one bus")
    names = [b.name for b in buses]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: bus names must be unique, got {names}")
    mappings = [str(m) for m in _list(path, data, "mappings")]
    for m in mappings:
        if not (directory / m).is_file():
            raise ConfigError(f"{path}: mapping file {m!r} is missing")
    overlays = [str(o) for o in _list(path, data, "overlays")]
    for o in overlays:
        if not (directory / o).is_file():
            raise ConfigError(f"{path}: overlay file {o!r} is missing")
    body = data.get("body", "pickup" if "pickup" in str(data.get("vehicle_class", "")) else "sedan")
    if body not in BODIES:
        raise ConfigError(f"{path}: field 'body' must be one of {', '.join(BODIES)}, got {body!r}")
    reference = data.get("reference", False)
    if not isinstance(reference, bool):
        raise ConfigError(f"{path}: field 'reference' must be true or false")
    return BrandProfile(
        id=directory.name,
        brand=data["brand"],
        model=data["model"],
        directory=directory,
        buses=buses,
        mappings=mappings,
        reference=reference,
        description=str(data.get("description", "")),
        source=str(data.get("source", "")),
        vehicle_class=str(data.get("vehicle_class", "passenger_car")),
        sample_log=data.get("sample_log"),
        overlays=overlays,
        body=body,
    )


def _list(path: Path, data: dict[str, Any], key: str) -> list[Any]:
    value = data.get(key) or []
    if not isinstance(value, list):
        raise ConfigError(f"{path}: field {key!r} must be a list")
    return value


def _bus(path: Path, i: int, spec: Any, directory: Path) -> BusSpec:
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise ConfigError(f"{path}: buses[{i}] needs a 'name'")
    dbc = spec.get("dbc")
    dbcs = [dbc] if isinstance(dbc, str) else dbc
    if not isinstance(dbcs, list) or not dbcs or not all(isinstance(d, str) for d in dbcs):
        raise ConfigError(f"{path}: buses[{i}] ({spec['name']}) needs 'dbc': a file name or a list of them")
    for d in dbcs:
        if not (directory / d).is_file():
            raise ConfigError(f"{path}: buses[{i}] ({spec['name']}): DBC file {d!r} is missing")
    channel = spec.get("channel")
    return BusSpec(spec["name"], dbcs, str(channel) if channel is not None else None)
