"""CAN adapter: DBC files and KUKSA-style mappings turn frames into VSS values and back.

- ``load_dbc``: lenient DBC loading, with warnings naming file and line;
- ``load_mapping`` / ``parse_mapping_text``: the KUKSA CAN provider's overlay format;
- ``CanAdapter``: a broker provider decoding frames (``feed``/``feed_many``) and encoding requests;
- ``VssEncoder``: VSS values to frames with ``vss2dbc`` rules;
- ``read_log`` / ``write_log`` / ``replay`` / ``BusSource`` / ``open_bus``: python-can logs and buses.
"""

from anycar.can.adapter import CanAdapter
from anycar.can.dbc import DbcWarning, LoadedDbc, load_dbc, parse_dbc_text
from anycar.can.decoder import BadInput
from anycar.can.encoder import VssEncoder
from anycar.can.mapping import Mapping, MappingRule, load_mapping, load_mappings, parse_mapping_text
from anycar.can.network import Bus, CanNetwork
from anycar.can.sources import BusSource, bus_sender, open_bus, read_log, replay, write_log

__all__ = [
    "BadInput",
    "Bus",
    "BusSource",
    "CanAdapter",
    "CanNetwork",
    "DbcWarning",
    "LoadedDbc",
    "Mapping",
    "MappingRule",
    "VssEncoder",
    "bus_sender",
    "load_dbc",
    "load_mapping",
    "load_mappings",
    "open_bus",
    "parse_dbc_text",
    "parse_mapping_text",
    "read_log",
    "replay",
    "write_log",
]
