"""Tokens and scopes: KUKSA scope syntax, RS256/ES256, expired, forged and malformed tokens."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest

from anycar.api.auth import (
    Action,
    Authorizer,
    Forbidden,
    TokenExpired,
    TokenInvalid,
    TokenMissing,
    ensure_keypair,
    generate_keypair,
    mint,
    parse_scope,
)
from anycar.errors import ConfigError
from apis_support import Keys


def test_scope_syntax_follows_kuksa() -> None:
    entries = parse_scope("read:Vehicle.Speed actuate:Vehicle.Cabin.* provide")
    assert [str(e) for e in entries] == ["read:Vehicle.Speed", "actuate:Vehicle.Cabin.*", "provide"]
    with pytest.raises(TokenInvalid, match="action 'write'"):
        parse_scope("write:Vehicle.Speed")
    with pytest.raises(TokenInvalid, match="empty segment"):
        parse_scope("read:Vehicle..Speed")


@pytest.mark.parametrize("algorithm", ["RS256", "ES256"])
def test_scopes_grant_per_path_with_wildcards(tmp_path, algorithm: str) -> None:
    keys = Keys(tmp_path, algorithm)
    auth = Authorizer.from_file(keys.public_path)
    grants = auth.grants("Bearer " + keys.token("read:Vehicle.Speed actuate:Vehicle.Cabin.Door.*.*.IsOpen"))
    assert grants.allows(Action.READ, "Vehicle.Speed")
    assert not grants.allows(Action.READ, "Vehicle.TraveledDistance")
    assert grants.allows(Action.ACTUATE, "Vehicle.Cabin.Door.Row1.DriverSide.IsOpen")
    # actuate includes read of the same signals, not provide
    assert grants.allows(Action.READ, "Vehicle.Cabin.Door.Row2.PassengerSide.IsOpen")
    assert not grants.allows(Action.PROVIDE, "Vehicle.Cabin.Door.Row1.DriverSide.IsOpen")
    with pytest.raises(Forbidden, match=r"no 'actuate' scope for Vehicle\.Speed"):
        grants.check(Action.ACTUATE, "Vehicle.Speed")


def test_branch_scope_covers_everything_below(tmp_path) -> None:
    keys = Keys(tmp_path)
    grants = Authorizer.from_file(keys.public_path).grants(keys.token("provide:Vehicle.Powertrain"))
    assert grants.allows(Action.PROVIDE, "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current")
    assert grants.allows(Action.READ, "Vehicle.Powertrain.Range")
    assert not grants.allows(Action.READ, "Vehicle.Speed")


def test_expired_forged_tampered_and_missing_tokens_are_refused(tmp_path) -> None:
    keys = Keys(tmp_path)
    auth = Authorizer.from_file(keys.public_path)
    with pytest.raises(TokenMissing):
        auth.grants(None)
    with pytest.raises(TokenMissing):
        auth.grants("Bearer   ")
    expired = mint(keys.private, "read", ttl_s=60, now=time.time() - 3600)
    with pytest.raises(TokenExpired):
        auth.grants(expired)
    other, _ = generate_keypair("RS256")
    with pytest.raises(TokenInvalid, match="invalid"):
        auth.grants(mint(other, "read"))
    good = keys.token("read:Vehicle.Speed")
    header, payload, signature = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["scope"] = "read actuate provide"
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(TokenInvalid):
        auth.grants(f"{header}.{forged_payload}.{signature}")
    with pytest.raises(TokenInvalid):
        auth.grants("not a jwt")
    with pytest.raises(TokenInvalid, match="too long"):
        auth.grants("x" * 20_000)


def test_algorithm_confusion_is_refused(tmp_path) -> None:
    """An HS256 token keyed with the public key text must not pass as RS256."""
    keys = Keys(tmp_path)
    auth = Authorizer.from_file(keys.public_path)
    public_text = keys.public_path.read_bytes()
    try:
        forged = jwt.encode({"scope": "read", "exp": time.time() + 60}, public_text, algorithm="HS256")
    except jwt.exceptions.InvalidKeyError:
        return  # pyjwt refuses to sign with a PEM public key as HMAC secret: nothing to test
    with pytest.raises(TokenInvalid):
        auth.grants(forged)


def test_audience_is_checked_when_configured(tmp_path) -> None:
    keys = Keys(tmp_path)
    auth = Authorizer.from_file(keys.public_path, audience="VIN123/anycar")
    assert auth.grants(keys.token("read", audience="VIN123/anycar")).allows(Action.READ, "Vehicle.Speed")
    with pytest.raises(TokenInvalid):
        auth.grants(keys.token("read", audience="OTHER/anycar"))


def test_open_mode_allows_everything_and_bad_keys_are_config_errors(tmp_path) -> None:
    assert Authorizer(None).grants(None).allows(Action.PROVIDE, "Vehicle.Speed")
    bad = tmp_path / "bad.pub"
    bad.write_text("not a key")
    with pytest.raises(ConfigError, match="not a PEM public key"):
        Authorizer.from_file(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        Authorizer.from_file(tmp_path / "missing.pub")


def test_ensure_keypair_creates_once_and_mint_cli(tmp_path, capsys) -> None:
    private, public = ensure_keypair(tmp_path / "keys")
    first = private.read_bytes()
    ensure_keypair(tmp_path / "keys")
    assert private.read_bytes() == first
    from anycar.cli.main import main

    assert (
        main(
            [
                "token",
                "mint",
                "--keys",
                str(tmp_path / "keys"),
                "--scope",
                "read:Vehicle.Speed",
                "--ttl",
                "60",
            ]
        )
        == 0
    )
    token = capsys.readouterr().out.strip()
    grants = Authorizer.from_file(public).grants(token)
    assert grants.allows(Action.READ, "Vehicle.Speed") and not grants.allows(
        Action.READ, "Vehicle.TraveledDistance"
    )


def test_a_sub_second_expiry_is_kept_exactly(tmp_path) -> None:
    """A 1.5 s token ends 1.5 s after it was issued, not at the whole second before."""
    keys = Keys(tmp_path)
    auth = Authorizer.from_file(keys.public_path)
    issued = time.time() - 0.25
    token = mint(keys.private, "read", ttl_s=1.5, now=issued)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["exp"] == issued + 1.5 and claims["iat"] == issued
    grants = auth.grants(token)
    assert grants.expires_at == issued + 1.5
    grants.check_valid(issued + 1.49)  # still valid where int() had already ended it
    with pytest.raises(TokenExpired):
        grants.check_valid(issued + 1.5)
    whole = jwt.decode(mint(keys.private, "read", ttl_s=60, now=1000.0), options={"verify_signature": False})
    assert (whole["iat"], whole["exp"]) == (1000, 1060) and isinstance(whole["exp"], int)
