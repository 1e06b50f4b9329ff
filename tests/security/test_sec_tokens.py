"""Issue 9, finding 9: token parsing. ``exp`` (and ``nbf``, ``iat``) must be JSON numbers, the
token cache ends a token exactly at its ``exp``, ``read:`` with no path is not "read all"."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sec_access_support import raw_token

from anycar.api.auth import Action, Authorizer, TokenError, TokenExpired, TokenInvalid, parse_scope
from apis_support import Keys


def _authorizer(keys: Keys) -> Authorizer:
    return Authorizer(keys.public_path.read_bytes(), leeway_s=5.0)


@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
def test_a_numeric_date_given_as_a_string_is_refused(tmp_path: Path, claim: str) -> None:
    keys = Keys(tmp_path)
    auth = _authorizer(keys)
    value = str(int(time.time()) + (3600 if claim == "exp" else -60))
    with pytest.raises(TokenInvalid, match=claim):
        auth.grants(raw_token(keys, "read", **{claim: value}))


def test_a_string_exp_cannot_make_a_token_outlive_its_end(tmp_path: Path) -> None:
    keys = Keys(tmp_path)
    auth = _authorizer(keys)
    ended = str(int(time.time()) + 1)
    with pytest.raises(TokenError):  # refused at once, so nothing is cached to outlive it
        auth.grants(raw_token(keys, "read", exp=ended))
    time.sleep(1.1)
    with pytest.raises(TokenError):
        auth.grants(raw_token(keys, "read", exp=ended))


def test_the_token_cache_honours_exp_exactly_and_nbf(tmp_path: Path) -> None:
    keys = Keys(tmp_path)
    auth = _authorizer(keys)
    exp = int(time.time()) + 2
    token = raw_token(keys, "read", exp=exp)
    grants = auth.grants(token)
    assert grants.allows(Action.READ, "Vehicle.Speed") and auth.grants(token) is grants  # cached
    while time.time() < exp:
        time.sleep(0.05)
    with pytest.raises(TokenExpired):  # the 5 s leeway forgives clock skew, not a token's end
        auth.grants(token)
    with pytest.raises(TokenExpired):
        grants.check(Action.READ, "Vehicle.Speed")
    later = raw_token(keys, "read", nbf=int(time.time()) + 60)  # not valid yet: never cached
    for _ in range(2):
        with pytest.raises(TokenInvalid):
            auth.grants(later)


def test_read_with_an_empty_path_is_not_read_everything(tmp_path: Path) -> None:
    for scope in ("read:", "actuate:", "provide:", "read:Vehicle.Speed read:"):
        with pytest.raises(TokenInvalid, match="empty path"):
            parse_scope(scope)
    keys = Keys(tmp_path)
    with pytest.raises(TokenInvalid):
        _authorizer(keys).grants(raw_token(keys, "read:"))


def test_other_claims_of_the_wrong_type_are_refused(tmp_path: Path) -> None:
    keys = Keys(tmp_path)
    auth = _authorizer(keys)
    for claims in ({"exp": int(time.time()) + 60.5 > 0}, {"exp": 1e400}, {"sub": 7}):
        with pytest.raises(TokenError):
            auth.grants(raw_token(keys, "read", **claims))
    with pytest.raises(TokenInvalid, match="scope"):
        auth.grants(raw_token(keys, ["read"]))
    with pytest.raises(TokenInvalid, match="takes no path"):
        parse_scope("admin:Vehicle.Speed")
