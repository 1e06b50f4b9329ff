"""The accessory ecosystem: signed manifests, trust registry, commissioning, mount points and
power budgets, the WebSocket protocol and its SDK, and virtual accessories.

The hub wires ``AccessoryManager(broker, db_path, mounts, trust, policy=...)``.
"""

from anycar.accessories.errors import (
    AccessoryNotFound,
    AttestationError,
    FitRefused,
    ManifestError,
    PairingError,
    ProtocolError,
)
from anycar.accessories.manager import AccessoryManager, Limits
from anycar.accessories.manifest import Manifest, load_manifest, parse_manifest
from anycar.accessories.mounts import MountPlan, load_mounts, load_profile_mounts
from anycar.accessories.trust import TrustRegistry

__all__ = [
    "AccessoryManager",
    "AccessoryNotFound",
    "AttestationError",
    "FitRefused",
    "Limits",
    "Manifest",
    "ManifestError",
    "MountPlan",
    "PairingError",
    "ProtocolError",
    "TrustRegistry",
    "load_manifest",
    "load_mounts",
    "load_profile_mounts",
    "parse_manifest",
]
