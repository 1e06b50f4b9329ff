"""Brand profiles: each car's DBC files and mapping onto VSS, and the helpers built on them."""

from anycar.brands.profile import BrandProfile, BusSpec, data_root, list_profiles, load_profile, profile_ids
from anycar.brands.vehicle import ProfileEncoder, adapter_for, encode_vss, frame_encoder

__all__ = [
    "BrandProfile",
    "BusSpec",
    "ProfileEncoder",
    "adapter_for",
    "data_root",
    "encode_vss",
    "frame_encoder",
    "list_profiles",
    "load_profile",
    "profile_ids",
]
