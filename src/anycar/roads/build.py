"""Compile an OpenStreetMap extract into the routable network shipped in ``data/``.

pyosmium (libosmium's Python bindings) reads the ``.osm.pbf``; we keep every way with a highway
class some profile may use, cut it into directed edges between consecutive nodes (one direction
for ``oneway=yes``/``-1`` and roundabouts), give each edge its speed (``maxspeed``, else the
class default of ``data/profiles.yaml``) and a bit per profile allowed on it (highway class and
the access tags), and keep the turn restrictions (``type=restriction`` relations with a via
node). The result is a handful of numpy arrays in one ``.npz`` plus a GeoJSON base map of the
streets. Run by ``tools/build_roads.py``; nothing here runs when the network is used.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from anycar.roads.geo import haversine_m
from anycar.roads.profiles import RoadRules, load_rules

FORMAT = 1
KINDS = ("no", "only")
_SPEED = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(mph|km/h|kmh)?\s*$")
# Zone/implicit values (RU:urban, FI:urban, walk, ...) resolve to these km/h.
_IMPLICIT = {"urban": 50.0, "rural": 80.0, "walk": 7.0, "living_street": 20.0, "motorway": 120.0}


def parse_maxspeed(value: str | None) -> float | None:
    """km/h from an OSM ``maxspeed`` value (``30``, ``20 mph``, ``FI:urban``, ``walk``), else None."""
    if not value:
        return None
    first = value.split(";")[0].strip()
    m = _SPEED.match(first)
    if m:
        kmh = float(m.group(1)) * (1.609344 if m.group(2) == "mph" else 1.0)
        return kmh if kmh > 0 else None
    zone = first.split(":")[-1].lower()
    return _IMPLICIT.get(zone)


def oneway_of(tags: dict[str, str]) -> int:
    """+1 along the way, -1 against it, 0 both ways."""
    value = tags.get("oneway", "")
    if value in ("yes", "true", "1"):
        return 1
    if value in ("-1", "reverse"):
        return -1
    if value in ("no", "false", "0"):
        return 0
    if tags.get("junction") in ("roundabout", "circular") or tags.get("highway") == "motorway":
        return 1
    return 0


def allowed(tags: dict[str, str], keys: tuple[str, ...], rules: RoadRules) -> bool:
    """The most specific of the profile's access keys that is set decides (OSM's access hierarchy)."""
    verdict = True
    for key in keys:
        value = tags.get(key)
        if value is None:
            continue
        value = value.split(";")[0].strip()
        if value in rules.closed_values:
            verdict = False
        elif value in rules.open_values:
            verdict = True
    return verdict


@dataclass
class _Way:
    osm_id: int
    nodes: list[int]
    cls: int
    speed: float
    oneway: int
    mask: int
    name: str
    tagged: bool = False


@dataclass
class _Restriction:
    osm_id: int
    kind: int
    from_way: int
    via: int
    to_way: int
    exempt: set[str] = field(default_factory=set)
    conditional: bool = False


def read_pbf(
    path: Path, rules: RoadRules
) -> tuple[list[_Way], dict[int, tuple[float, float]], list[_Restriction], dict[str, int]]:
    """Ways with their nodes' locations, and the restrictions, read with pyosmium."""
    import osmium

    classes = list(rules.default_kmh)
    profiles = list(rules.profiles.values())
    ways: list[_Way] = []
    restrictions: list[_Restriction] = []
    skipped = {"via_way": 0, "unknown_kind": 0, "incomplete": 0}
    wanted_nodes: set[int] = set()

    for obj in osmium.FileProcessor(str(path), osmium.osm.WAY | osmium.osm.RELATION):
        tags = {t.k: t.v for t in obj.tags}
        if isinstance(obj, osmium.osm.Way):
            highway = tags.get("highway")
            if highway not in rules.default_kmh or tags.get("area") == "yes":
                continue
            mask = 0
            for bit, p in enumerate(profiles):
                if highway in p.classes and allowed(tags, p.access_keys, rules):
                    mask |= 1 << bit
            refs = [n.ref for n in obj.nodes]
            if not mask or len(refs) < 2:
                continue
            tagged = parse_maxspeed(tags.get("maxspeed"))
            speed = tagged or rules.default_kmh[highway]
            ways.append(
                _Way(
                    obj.id,
                    refs,
                    classes.index(highway),
                    speed,
                    oneway_of(tags),
                    mask,
                    tags.get("name", ""),
                    tagged is not None,
                )
            )
            wanted_nodes.update(refs)
        elif isinstance(obj, osmium.osm.Relation) and tags.get("type") == "restriction":
            kind = tags.get("restriction") or ""
            prefix = kind.split("_")[0]
            if prefix not in KINDS:
                skipped["unknown_kind"] += 1
                continue
            roles: dict[str, list[tuple[str, int]]] = {}
            for m in obj.members:
                roles.setdefault(m.role, []).append((m.type, m.ref))
            via = roles.get("via", [])
            if any(t == "w" for t, _ in via):
                skipped["via_way"] += 1
                continue
            if len(via) != 1 or len(roles.get("from", [])) != 1 or len(roles.get("to", [])) != 1:
                skipped["incomplete"] += 1
                continue
            restrictions.append(
                _Restriction(
                    obj.id,
                    KINDS.index(prefix),
                    roles["from"][0][1],
                    via[0][1],
                    roles["to"][0][1],
                    {e.strip() for e in tags.get("except", "").split(";") if e.strip()},
                    conditional=any(k in tags for k in ("day_on", "hour_on", "time")),
                )
            )

    where: dict[int, tuple[float, float]] = {}
    for node in osmium.FileProcessor(str(path), osmium.osm.NODE):
        if isinstance(node, osmium.osm.Node) and node.id in wanted_nodes:
            where[node.id] = (node.location.lat, node.location.lon)
    return ways, where, restrictions, skipped


def compile_network(
    pbf: Path, out_npz: Path, out_geojson: Path | None = None, rules: RoadRules | None = None
) -> dict[str, Any]:
    """Read ``pbf``, write the network (``.npz``) and the street base map; return a summary."""
    rules = rules or load_rules()
    ways, where, restrictions, skipped = read_pbf(pbf, rules)
    ways = [w for w in ways if all(n in where for n in w.nodes)]
    node_ids = sorted({n for w in ways for n in w.nodes})
    index = {n: i for i, n in enumerate(node_ids)}
    lat = np.array([where[n][0] for n in node_ids], dtype=np.float64)
    lon = np.array([where[n][1] for n in node_ids], dtype=np.float64)

    tail: list[int] = []
    head: list[int] = []
    way_of: list[int] = []
    for wi, w in enumerate(ways):
        ids = [index[n] for n in w.nodes]
        for a, b in itertools.pairwise(ids):
            if a == b:
                continue
            if w.oneway >= 0:
                tail.append(a)
                head.append(b)
                way_of.append(wi)
            if w.oneway <= 0:
                tail.append(b)
                head.append(a)
                way_of.append(wi)
    t = np.array(tail, dtype=np.int32)
    h = np.array(head, dtype=np.int32)
    wo = np.array(way_of, dtype=np.int32)
    length = haversine_m(lat[t], lon[t], lat[h], lon[h]).astype(np.float32)

    way_pos = {w.osm_id: i for i, w in enumerate(ways)}
    kept = [r for r in restrictions if r.from_way in way_pos and r.to_way in way_pos and r.via in index]
    profile_names = list(rules.profiles)
    exempt_mask = [
        sum(
            1 << b
            for b, p in enumerate(rules.profiles.values())
            if r.exempt & set(p.exempt_from_restrictions)
        )
        for r in kept
    ]
    arrays: dict[str, Any] = {
        "node_lat": lat,
        "node_lon": lon,
        "node_osm": np.array(node_ids, dtype=np.int64),
        "edge_tail": t,
        "edge_head": h,
        "edge_way": wo,
        "edge_length_m": length,
        "way_osm": np.array([w.osm_id for w in ways], dtype=np.int64),
        "way_class": np.array([w.cls for w in ways], dtype=np.uint8),
        "way_speed_kmh": np.array([w.speed for w in ways], dtype=np.float32),
        "way_oneway": np.array([w.oneway for w in ways], dtype=np.int8),
        "way_mask": np.array([w.mask for w in ways], dtype=np.uint8),
        "way_name": np.array([w.name for w in ways], dtype=str),
        "restr_osm": np.array([r.osm_id for r in kept], dtype=np.int64),
        "restr_kind": np.array([r.kind for r in kept], dtype=np.uint8),
        "restr_from": np.array([way_pos[r.from_way] for r in kept], dtype=np.int32),
        "restr_via": np.array([index[r.via] for r in kept], dtype=np.int32),
        "restr_to": np.array([way_pos[r.to_way] for r in kept], dtype=np.int32),
        "restr_exempt": np.array(exempt_mask, dtype=np.uint8),
        "restr_conditional": np.array([r.conditional for r in kept], dtype=bool),
        "classes": np.array(list(rules.default_kmh), dtype=str),
        "profiles": np.array(profile_names, dtype=str),
    }
    summary = {
        "format": FORMAT,
        "source": pbf.name,
        "nodes": len(node_ids),
        "edges": len(t),
        "ways": len(ways),
        "oneway_ways": sum(1 for w in ways if w.oneway),
        "ways_with_maxspeed_tag": sum(1 for w in ways if w.tagged),
        "restrictions": len(kept),
        "restrictions_skipped": {**skipped, "outside_network": len(restrictions) - len(kept)},
        "bbox": [float(lon.min()), float(lat.min()), float(lon.max()), float(lat.max())],
        "attribution": "© OpenStreetMap contributors, ODbL 1.0",
    }
    arrays["meta"] = np.array(json.dumps(summary))
    out_npz.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out_npz, **arrays)
    if out_geojson is not None:
        out_geojson.write_text(
            json.dumps(base_map(ways, where, rules), separators=(",", ":")) + "\n", "utf-8"
        )
    return summary


def base_map(ways: list[_Way], where: dict[int, tuple[float, float]], rules: RoadRules) -> dict[str, Any]:
    """The streets as a GeoJSON FeatureCollection (coordinates to 6 decimals, about 0.1 m)."""
    classes = list(rules.default_kmh)
    features = []
    for w in ways:
        coords = [[round(where[n][1], 6), round(where[n][0], 6)] for n in w.nodes]
        props: dict[str, Any] = {"osm_id": w.osm_id, "highway": classes[w.cls], "maxspeed": round(w.speed)}
        if w.name:
            props["name"] = w.name
        if w.oneway:
            props["oneway"] = w.oneway
        features.append(
            {
                "type": "Feature",
                "properties": props,
                "geometry": {"type": "LineString", "coordinates": coords},
            }
        )
    return {
        "type": "FeatureCollection",
        "attribution": "© OpenStreetMap contributors (ODbL 1.0), https://www.openstreetmap.org/copyright",
        "features": features,
    }
