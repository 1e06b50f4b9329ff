"""Write ``tests/data/kuksa/model3_synthetic.log``: a few seconds of traffic for KUKSA's Model3CAN.dbc.

Only the messages that KUKSA's VSS 4.2 mapping reads, at their cycle times, with counters
counting and values drifting (``anycar.can.synth``): the frames are synthetic, the DBC and the
mapping are KUKSA's own. The README's custom DBC + mapping example replays it.
"""

from __future__ import annotations

import sys
from pathlib import Path

from anycar.can import Bus, CanNetwork, load_dbc, load_mapping
from anycar.can.codec import frame_key
from anycar.can.sources import write_log
from anycar.can.synth import traffic

KUKSA = Path(__file__).resolve().parents[1] / "tests" / "data" / "kuksa"


def main(frames: int = 600) -> int:
    network = CanNetwork([Bus("can", [load_dbc(KUKSA / "Model3CAN.dbc")])])
    mapping = load_mapping(KUKSA / "vss_4.2" / "vss_dbc.json")
    mapped = {
        ("can", frame_key(ref.message.frame_id, bool(ref.message.is_extended_frame)))
        for rule in mapping.dbc2vss
        for ref in network.find(rule.signal)
    }
    msgs = traffic(network, frames, seed=4, start=1_700_000_000.0, only_mapped=mapped)
    for m in msgs:
        m.channel = "can0"
        m.timestamp = round(m.timestamp, 6)
    out = KUKSA / "model3_synthetic.log"
    write_log(out, msgs)
    print(f"{out}: {len(msgs)} frames of {len(mapped)} messages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
