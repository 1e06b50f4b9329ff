"""Build the fleet console's base map from an OpenStreetMap extract, with pyosmium.

    .venv/bin/python tools/build_basemap.py ../shared/osm/helsinki_centre.osm.pbf

Reads roads (by highway class), rail, water, parks and buildings as
``src/anycar/fleet/console/data/basemap_layers.yaml`` says, simplifies them (shapely, ~1 m),
rounds coordinates to 6 decimals, drops tiny areas, and writes one compact GeoJSON file,
``src/anycar/fleet/console/data/basemap.geojson``, with the ODbL attribution next to it
(``basemap.LICENSE.md``). Each feature has ``layer`` (road, rail, water, park, building) and,
for roads, ``class`` and ``name``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import osmium
import yaml
from shapely.geometry import mapping, shape

PACKAGE = Path(__file__).resolve().parent.parent / "src/anycar/fleet/console/data"
LICENCE = """# Base map data

`basemap.geojson` is derived from OpenStreetMap data: © OpenStreetMap contributors, available
under the Open Database License (ODbL) 1.0, https://www.openstreetmap.org/copyright.
Source: `{source}` (the extract in the shared data folder), made by `tools/build_basemap.py`.
The console shows "© OpenStreetMap contributors, ODbL" on the map.
"""


def _area_class(tags: Any, areas: dict[str, dict[str, list[str]]]) -> str | None:
    for layer, keys in areas.items():
        for key, values in keys.items():
            value = tags.get(key)
            if value is not None and ("*" in values or value in values):
                return layer
    return None


def _road_class(value: str | None, roads: dict[str, list[str]]) -> str | None:
    if value is None:
        return None
    return next((cls for cls, values in roads.items() if value in values), None)


def _area_m2(geom: Any) -> float:
    lat = math.radians(geom.centroid.y)
    return float(geom.area) * (111_320.0**2) * math.cos(lat)


def _rounded(obj: Any, decimals: int) -> Any:
    if isinstance(obj, float):
        return round(obj, decimals)
    if isinstance(obj, list | tuple):
        return [_rounded(x, decimals) for x in obj]
    return obj


def build(source: Path, layers: dict[str, Any]) -> dict[str, Any]:
    roads, rail, areas = layers["roads"], set(layers["rail"]), layers["areas"]
    decimals, min_area = int(layers["decimals"]), float(layers["min_area_m2"])
    tolerance = float(layers["simplify_m"]) / 111_320.0
    factory = osmium.geom.GeoJSONFactory()
    features: list[dict[str, Any]] = []
    counts: dict[str, int] = {}

    def add(geojson: str, props: dict[str, Any], area: bool) -> None:
        geom = shape(json.loads(geojson)).simplify(tolerance, preserve_topology=True)
        if geom.is_empty or (area and _area_m2(geom) < min_area):
            return
        g = mapping(geom)
        features.append(
            {
                "type": "Feature",
                "properties": props,
                "geometry": {"type": g["type"], "coordinates": _rounded(g["coordinates"], decimals)},
            }
        )
        counts[props["layer"]] = counts.get(props["layer"], 0) + 1

    for obj in osmium.FileProcessor(str(source)).with_locations().with_areas():
        if obj.is_way():
            cls = _road_class(obj.tags.get("highway"), roads)
            if cls is not None and obj.tags.get("area") != "yes":
                props = {"layer": "road", "class": cls}
                if obj.tags.get("name"):
                    props["name"] = obj.tags.get("name")
                try:
                    add(factory.create_linestring(obj), props, area=False)
                except (osmium.InvalidLocationError, RuntimeError):
                    continue  # a way cut by the extract's edge
            elif obj.tags.get("railway") in rail:
                try:
                    add(factory.create_linestring(obj), {"layer": "rail"}, area=False)
                except (osmium.InvalidLocationError, RuntimeError):
                    continue
        elif obj.is_area():
            layer = _area_class(obj.tags, areas)
            if layer is not None:
                try:
                    add(factory.create_multipolygon(obj), {"layer": layer}, area=True)
                except (osmium.InvalidLocationError, RuntimeError):
                    continue
    order = {"water": 0, "park": 1, "building": 2, "rail": 3, "road": 4}
    features.sort(key=lambda f: order[f["properties"]["layer"]])
    xs = [c for f in features for c in _flat(f["geometry"]["coordinates"])]
    bounds = [min(x for x, _ in xs), min(y for _, y in xs), max(x for x, _ in xs), max(y for _, y in xs)]
    return {
        "type": "FeatureCollection",
        "attribution": "© OpenStreetMap contributors, ODbL",
        "source": source.name,
        "bbox": _rounded(bounds, decimals),
        "counts": counts,
        "features": features,
    }


def _flat(coords: Any) -> list[tuple[float, float]]:
    if coords and isinstance(coords[0], float | int):
        return [(coords[0], coords[1])]
    return [p for c in coords for p in _flat(c)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="an .osm.pbf extract")
    parser.add_argument("--out", type=Path, default=PACKAGE / "basemap.geojson")
    args = parser.parse_args(argv)
    if not args.source.is_file():
        print(f"build_basemap: {args.source}: no such file", file=sys.stderr)
        return 2
    layers = yaml.safe_load((PACKAGE / "basemap_layers.yaml").read_text("utf-8"))
    collection = build(args.source, layers)
    args.out.write_text(json.dumps(collection, separators=(",", ":"), ensure_ascii=False), "utf-8")
    (args.out.parent / "basemap.LICENSE.md").write_text(LICENCE.format(source=args.source.name), "utf-8")
    size = args.out.stat().st_size
    print(f"{args.out}: {len(collection['features'])} features {collection['counts']}, {size / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
