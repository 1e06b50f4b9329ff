"""Rebuild the road network shipped in anycar/roads/data/ from an OpenStreetMap extract.

Run as `make roads` (or `python tools/build_roads.py PBF [NAME]`). It writes NAME.npz (the
routable network) and NAME.streets.geojson (the street base map) and prints a summary; both are
committed, so nothing reads ../shared or pyosmium at run time.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from anycar.roads.build import compile_network

DATA = Path(__file__).resolve().parents[1] / "src" / "anycar" / "roads" / "data"


def main(pbf: str, name: str = "helsinki_centre") -> int:
    source = Path(pbf)
    if not source.is_file():
        print(f"{pbf}: no such file (an .osm.pbf extract)", file=sys.stderr)
        return 2
    summary = compile_network(source, DATA / f"{name}.npz", DATA / f"{name}.streets.geojson")
    print(json.dumps(summary, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        print("usage: python tools/build_roads.py PBF [NAME]", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(*sys.argv[1:]))
