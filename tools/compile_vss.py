"""Compile the VSS spec with vss-tools into the JSON catalog shipped in the package.

Run as `make vss` (or `python tools/compile_vss.py PATH_TO_VSS`). The output is committed so
that the hub never needs vss-tools or the spec sources at run time.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "src" / "anycar" / "model" / "data"


def main(vss_dir: str) -> int:
    spec = Path(vss_dir) / "spec"
    out = DATA / "vss-6.0.json"
    cmd = [
        str(Path(sys.executable).with_name("vspec")),
        "export",
        "json",
        "-s",
        str(spec / "VehicleSignalSpecification.vspec"),
        "-u",
        str(spec / "units.yaml"),
        "-q",
        str(spec / "quantities.yaml"),
        "-o",
        str(out),
    ]
    subprocess.run(cmd, check=True)
    for name in ("units.yaml", "quantities.yaml"):
        shutil.copy(spec / name, DATA / name)
    shutil.copy(Path(vss_dir) / "LICENSE", DATA / "LICENSE-VSS")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "../shared/vss"))
