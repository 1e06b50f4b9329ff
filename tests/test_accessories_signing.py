"""Attestation: Ed25519 over canonical JSON; unsigned, forged, altered, unknown, revoked and
wrong-vendor signatures are refused with the reason; the trust registry persists."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anycar.accessories import signing, virtual
from anycar.accessories.canonical import CanonicalError, canonical_json
from anycar.accessories.errors import AttestationError
from anycar.accessories.trust import TrustRegistry


@pytest.fixture
def key() -> signing.Ed25519PrivateKey:
    return signing.generate_key()


def trusted(key: signing.Ed25519PrivateKey, vendor: int = virtual.VIRTUAL_VENDOR_ID) -> TrustRegistry:
    reg = TrustRegistry()
    reg.add(vendor, signing.public_b64(key), "test")
    return reg


def test_signed_manifest_attests(key: signing.Ed25519PrivateKey) -> None:
    signed = signing.sign_manifest(virtual.manifest_data("clip_fan"), key)
    entry = trusted(key).attest(signed)
    assert entry.key_id == signed["signature"]["key_id"] == signing.key_id(key)


def test_unsigned_manifest_is_refused(key: signing.Ed25519PrivateKey) -> None:
    with pytest.raises(AttestationError, match="not signed"):
        trusted(key).attest(virtual.manifest_data("clip_fan"))


def test_altered_manifest_is_refused(key: signing.Ed25519PrivateKey) -> None:
    signed = signing.sign_manifest(virtual.manifest_data("clip_fan"), key)
    signed["power"]["peak_w"] = 2  # claim less power than signed for
    with pytest.raises(AttestationError, match="forged or altered"):
        trusted(key).attest(signed)


def test_forged_signature_by_another_key_is_refused(key: signing.Ed25519PrivateKey) -> None:
    forger = signing.generate_key()
    forged = signing.sign_manifest(virtual.manifest_data("clip_fan"), forger)
    forged["signature"]["key_id"] = signing.key_id(key)  # pretend to be the trusted key
    with pytest.raises(AttestationError, match="does not match"):
        trusted(key).attest(forged)


def test_unknown_key_is_refused(key: signing.Ed25519PrivateKey) -> None:
    other = signing.sign_manifest(virtual.manifest_data("clip_fan"), signing.generate_key())
    with pytest.raises(AttestationError, match="not in the trust registry"):
        trusted(key).attest(other)


def test_key_of_another_vendor_is_refused(key: signing.Ed25519PrivateKey) -> None:
    data = virtual.manifest_data("clip_fan")
    data["vendor_id"] = 4660
    with pytest.raises(AttestationError, match="belongs to vendor 65521"):
        trusted(key).attest(signing.sign_manifest(data, key))


def test_revoked_key_is_refused_and_stays_revoked(key: signing.Ed25519PrivateKey, tmp_path: Path) -> None:
    db = tmp_path / "hub.sqlite3"
    reg = TrustRegistry(db)
    entry = reg.add(virtual.VIRTUAL_VENDOR_ID, signing.public_b64(key))
    signed = signing.sign_manifest(virtual.manifest_data("clip_fan"), key)
    reg.attest(signed)
    heard = []
    reg.on_revoke(heard.append)
    reg.revoke(entry.key_id, "key leaked")
    assert heard and heard[0].revoke_reason == "key leaked"
    with pytest.raises(AttestationError, match="revoked"):
        reg.attest(signed)
    with pytest.raises(AttestationError, match="stays revoked"):
        reg.add(virtual.VIRTUAL_VENDOR_ID, signing.public_b64(key))
    reg.close()
    again = TrustRegistry(db)  # persisted across a restart
    with pytest.raises(AttestationError, match="key leaked"):
        again.attest(signed)
    again.close()


def test_malformed_signatures(key: signing.Ed25519PrivateKey) -> None:
    reg = trusted(key)
    signed = signing.sign_manifest(virtual.manifest_data("clip_fan"), key)
    bad = copy.deepcopy(signed)
    bad["signature"]["value"] = "not base64!"
    with pytest.raises(AttestationError, match="base64"):
        reg.attest(bad)
    bad["signature"]["value"] = "AAAA"
    with pytest.raises(AttestationError, match="64 bytes"):
        reg.attest(bad)
    with pytest.raises(AttestationError, match="32 bytes"):
        reg.add(1, "AAAA")
    with pytest.raises(AttestationError, match="1 to 65535"):
        reg.add(0, signing.public_b64(key))


def test_signature_survives_yaml_and_json_round_trips(key: signing.Ed25519PrivateKey) -> None:
    import yaml

    signed = signing.sign_manifest(virtual.manifest_data("cup_cooler"), key)
    reg = trusted(key)
    reg.attest(json.loads(json.dumps(signed, indent=3)))
    reg.attest(yaml.safe_load(yaml.safe_dump(signed)))


def test_canonical_json_is_rfc8785() -> None:
    assert canonical_json({"b": 1, "a": [1.0, 0.5, 1e-7, 1e21, -0.0], "é": "\u2028"}) == (
        '{"a":[1,0.5,1e-7,1e+21,0],"b":1,"é":"\u2028"}'.encode()
    )
    # keys sort by UTF-16 code units: U+20AC before U+1F600 (a surrogate pair D83D...)
    assert canonical_json({"\U0001f600": 1, "\u20ac": 2}).decode() == '{"\u20ac":2,"\U0001f600":1}'
    with pytest.raises(CanonicalError):
        canonical_json({"x": math.nan})
    with pytest.raises(CanonicalError):
        canonical_json({1: 2})


@settings(max_examples=200, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_canonical_numbers_round_trip(x: float) -> None:
    assert float(canonical_json(x)) == x
