"""The signal model: the VSS tree, its datatypes, wildcard patterns and overlays."""

from anycar.model.catalog import VSS_VERSION, Catalog
from anycar.model.overlay import Overlay, load_overlay, parse_overlay, parse_overlay_text
from anycar.model.signal import Branch, NodeType, Signal

__all__ = [
    "VSS_VERSION",
    "Branch",
    "Catalog",
    "NodeType",
    "Overlay",
    "Signal",
    "load_overlay",
    "parse_overlay",
    "parse_overlay_text",
]
