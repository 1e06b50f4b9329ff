"""Access control shared by every API: JWT access tokens with KUKSA-style scopes.

A token is a JWT (RS256 or ES256) signed by a key whose public half the hub is configured
with. Its ``scope`` claim is a space-separated list, as the KUKSA databroker reads it:

- ``read`` / ``actuate`` / ``provide``: that action on every signal;
- ``read:Vehicle.Speed``, ``actuate:Vehicle.Cabin.*``, ``provide:Vehicle.**.IsOpen``: on the
  signals the path or pattern covers (a branch path covers everything below it);
- ``actuate`` and ``provide`` include ``read`` of the same signals.

With no key configured the hub runs open (every request may do everything) and listens on
loopback only; that is decided by the composition root, not here.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from anycar.errors import AnycarError, ConfigError, InvalidPattern
from anycar.model import paths

ALGORITHMS = ("RS256", "ES256")
MAX_TOKEN_LENGTH = 16_384


class Action(StrEnum):
    READ = "read"
    ACTUATE = "actuate"
    PROVIDE = "provide"


class TokenError(AnycarError):
    """A request's token cannot be used; ``reason`` is the VISS reason word."""

    code = 401
    reason = "token_invalid"


class TokenMissing(TokenError):
    reason = "token_missing"


class TokenExpired(TokenError):
    reason = "token_expired"


class TokenInvalid(TokenError):
    reason = "token_invalid"


class Forbidden(AnycarError):
    """The token is valid but its scope does not cover what was asked."""

    code = 403
    reason = "user_forbidden"


@dataclass(frozen=True, slots=True)
class ScopeEntry:
    action: Action
    pattern: str | None  # None: every signal

    def covers(self, path: str) -> bool:
        return self.pattern is None or paths.matches(self.pattern, path)

    def __str__(self) -> str:
        return self.action if self.pattern is None else f"{self.action}:{self.pattern}"


def parse_scope(scope: str) -> tuple[ScopeEntry, ...]:
    """Parse a ``scope`` claim; unknown actions and malformed paths are errors, not ignored."""
    if not isinstance(scope, str):
        raise TokenInvalid(f"the 'scope' claim must be a string, got {type(scope).__name__}")
    entries: list[ScopeEntry] = []
    for item in scope.split():
        action_text, _, pattern = item.partition(":")
        try:
            action = Action(action_text)
        except ValueError:
            raise TokenInvalid(
                f"scope entry {item!r}: action {action_text!r} is not one of read, actuate, provide"
            ) from None
        if pattern:
            try:
                paths.split(pattern)
            except InvalidPattern as exc:
                raise TokenInvalid(f"scope entry {item!r}: {exc}") from None
        entries.append(ScopeEntry(action, pattern or None))
    return tuple(entries)


# A second opinion on a token's request (the hub's policy: an app's own grant), asked after the
# token's scopes allow it: ``(subject, action, path) -> reason to refuse, or None``.
SecondOpinion = Callable[[str, Action, str], str | None]


@dataclass
class Grants:
    """What one token allows. Scope answers are cached per (action, path): they are asked per
    signal. The second opinion is not cached, because the policy's grants can change any time.
    """

    subject: str = ""
    entries: tuple[ScopeEntry, ...] = ()
    open: bool = False
    expires_at: float | None = None
    second_opinion: SecondOpinion | None = field(default=None, repr=False)
    _cache: dict[tuple[Action, str], bool] = field(default_factory=dict, repr=False)

    def allows(self, action: Action, path: str) -> bool:
        if not self._scope_allows(action, path):
            return False
        return self.second_opinion is None or self.second_opinion(self.subject, action, path) is None

    def _scope_allows(self, action: Action, path: str) -> bool:
        if self.open:
            return True
        key = (action, path)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        ok = any(
            (e.action is action or (action is Action.READ and e.action in (Action.ACTUATE, Action.PROVIDE)))
            and e.covers(path)
            for e in self.entries
        )
        if len(self._cache) > 20_000:
            self._cache.clear()
        self._cache[key] = ok
        return ok

    def check(self, action: Action, path: str) -> None:
        """Raise ``Forbidden`` unless the token allows ``action`` on ``path``."""
        if self.expires_at is not None and time.time() >= self.expires_at:
            raise TokenExpired("access token has expired")
        if not self._scope_allows(action, path):
            raise Forbidden(
                f"token of {self.subject or 'this client'} has no '{action}' scope for {path}", path=path
            )
        if self.second_opinion is not None:
            reason = self.second_opinion(self.subject, action, path)
            if reason is not None:
                raise Forbidden(reason, path=path)

    @property
    def scope(self) -> str:
        return "*" if self.open else " ".join(str(e) for e in self.entries)


OPEN = Grants(subject="anonymous (no token key configured)", open=True)


class Authorizer:
    """Turns the token a request carries into ``Grants``.

    ``public_key`` None means open mode: every request gets ``OPEN`` and tokens are ignored.
    """

    def __init__(
        self,
        public_key: str | bytes | None = None,
        *,
        audience: str | None = None,
        issuer: str | None = None,
        leeway_s: float = 5.0,
    ) -> None:
        self.audience = audience
        self.issuer = issuer
        self.leeway_s = leeway_s
        self._key: Any = None
        if public_key is not None:
            try:
                self._key = serialization.load_pem_public_key(
                    public_key.encode() if isinstance(public_key, str) else public_key
                )
            except (ValueError, TypeError) as exc:
                raise ConfigError(f"token public key is not a PEM public key: {exc}") from None
            if not isinstance(self._key, (rsa.RSAPublicKey, ec.EllipticCurvePublicKey)):
                raise ConfigError("token public key must be RSA (RS256) or EC P-256 (ES256)")
        self._seen: dict[str, Grants] = {}
        self.second_opinion: SecondOpinion | None = None  # set by the hub when a policy runs

    @classmethod
    def from_file(cls, path: str | Path | None, **kwargs: Any) -> Authorizer:
        if path is None:
            return cls(None, **kwargs)
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read token public key {path}: {exc.strerror}") from None
        return cls(data, **kwargs)

    @property
    def enabled(self) -> bool:
        return self._key is not None

    def grants(self, token: str | None) -> Grants:
        """Grants for a raw token (``Bearer`` prefix allowed); raises ``TokenError``."""
        if self._key is None:
            return OPEN
        if token is None or not str(token).strip():
            raise TokenMissing("this hub requires an access token (Authorization: Bearer <JWT>)")
        if not isinstance(token, str):
            raise TokenInvalid(f"access token must be a string, got {type(token).__name__}")
        token = token.strip()
        if token[:6].lower() == "bearer" and (len(token) == 6 or token[6].isspace()):
            token = token[6:].strip()
            if not token:
                raise TokenMissing("the Authorization header says Bearer but holds no token")
        if len(token) > MAX_TOKEN_LENGTH:
            raise TokenInvalid(f"access token of {len(token)} characters is too long")
        cached = self._seen.get(token)
        if cached is not None:
            if cached.expires_at is not None and time.time() >= cached.expires_at + self.leeway_s:
                raise TokenExpired("access token has expired")
            return cached
        grants = self._verify(token)
        if len(self._seen) > 1024:
            self._seen.clear()
        self._seen[token] = grants
        return grants

    def _verify(self, token: str) -> Grants:
        options = {"require": ["exp"], "verify_aud": self.audience is not None}
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=list(ALGORITHMS),
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_s,
                options=options,  # type: ignore[arg-type]
            )
        except jwt.ExpiredSignatureError:
            raise TokenExpired("access token has expired") from None
        except jwt.InvalidTokenError as exc:
            raise TokenInvalid(f"access token is invalid: {exc}") from None
        scope = claims.get("scope", "")
        exp = claims.get("exp")
        return Grants(
            subject=str(claims.get("sub", "")),
            entries=parse_scope(scope),
            expires_at=float(exp) if isinstance(exp, (int, float)) else None,
            second_opinion=self.second_opinion,
        )


# -- development keys and tokens ---------------------------------------------------------------
def generate_keypair(algorithm: str = "RS256") -> tuple[bytes, bytes]:
    """A new (private PEM, public PEM) pair for ``algorithm``."""
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    if algorithm == "RS256":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    elif algorithm == "ES256":
        key = ec.generate_private_key(ec.SECP256R1())
    else:
        raise ConfigError(f"algorithm {algorithm!r} is not one of {', '.join(ALGORITHMS)}")
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


def algorithm_of(private_pem: bytes) -> str:
    key = serialization.load_pem_private_key(private_pem, password=None)
    if isinstance(key, rsa.RSAPrivateKey):
        return "RS256"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return "ES256"
    raise ConfigError("private key must be RSA or EC P-256")


def mint(
    private_pem: bytes,
    scope: str,
    *,
    subject: str = "anycar-dev",
    ttl_s: float = 3600,
    audience: str | None = None,
    issuer: str | None = None,
    now: float | None = None,
) -> str:
    """Sign a token with the KUKSA claim set (``scope``, ``sub``, ``exp``, ``iat``, ``jti``)."""
    parse_scope(scope)
    issued = time.time() if now is None else now
    claims: dict[str, Any] = {
        "sub": subject,
        "scope": scope,
        "iat": int(issued),
        "exp": int(issued + ttl_s),
        "jti": str(uuid.uuid4()),
    }
    if audience is not None:
        claims["aud"] = audience
    if issuer is not None:
        claims["iss"] = issuer
    key = serialization.load_pem_private_key(private_pem, password=None)
    return jwt.encode(claims, key, algorithm=algorithm_of(private_pem), headers={"typ": "at+jwt"})  # type: ignore[arg-type]


def ensure_keypair(directory: str | Path, algorithm: str = "RS256") -> tuple[Path, Path]:
    """``directory/jwt.key`` and ``jwt.key.pub``, created when missing (development only)."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    private, public = folder / "jwt.key", folder / "jwt.key.pub"
    if not private.exists():
        priv, pub = generate_keypair(algorithm)
        private.write_bytes(priv)
        private.chmod(0o600)
        public.write_bytes(pub)
    elif not public.exists():
        key = serialization.load_pem_private_key(private.read_bytes(), password=None)
        public.write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
    return private, public
