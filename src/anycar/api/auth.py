"""Access control shared by every API: JWT access tokens with KUKSA-style scopes.

A token is a JWT (RS256 or ES256) signed by a key whose public half the hub is configured
with. Its ``scope`` claim is a space-separated list, as the KUKSA databroker reads it:

- ``read`` / ``actuate`` / ``provide``: that action on every signal;
- ``read:Vehicle.Speed``, ``actuate:Vehicle.Cabin.*``, ``provide:Vehicle.**.IsOpen``: on the
  signals the path or pattern covers (a branch path covers everything below it);
- ``actuate`` and ``provide`` include ``read`` of the same signals;
- ``manage`` and ``admin`` (no path): the owner's Manage and Administer privileges. ``admin`` is
  what changing a grant needs (``PUT /api/v1/grants/{subject}``); neither adds signal rights.

A scope is a set of signals, never text: ``check`` on a branch or a pattern asks about every
signal it matches in the live catalog, and a caller learns whether a path exists only if its
rights could cover it (see ``signal`` / ``resolve`` / ``visible``).

With no key configured the hub runs open (every request may do everything) and listens on
loopback only; that is decided by the composition root, not here.
"""

from __future__ import annotations

import math
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

from anycar.errors import AnycarError, ConfigError, InvalidPattern, UnknownPath
from anycar.model import paths
from anycar.model.catalog import Catalog
from anycar.model.signal import Signal
from anycar.rights import Action, Privilege, first_outside

ALGORITHMS = ("RS256", "ES256")
MAX_TOKEN_LENGTH = 16_384


class Role(StrEnum):
    """Scopes that carry a privilege instead of signal rights; they take no path."""

    MANAGE = "manage"
    ADMIN = "admin"


ROLE_PRIVILEGE = {Role.MANAGE: Privilege.MANAGE, Role.ADMIN: Privilege.ADMINISTER}
_ROLE_WORDS = frozenset(r.value for r in Role)


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
    action: Action | Role
    pattern: str | None  # None: every signal

    def covers(self, path: str) -> bool:
        return self.pattern is None or paths.matches(self.pattern, path)

    def __str__(self) -> str:
        return self.action if self.pattern is None else f"{self.action}:{self.pattern}"


def parse_scope(scope: str) -> tuple[ScopeEntry, ...]:
    """Parse a ``scope`` claim; unknown actions, empty and malformed paths are errors, not ignored.

    ``read:`` with nothing after the colon is refused rather than read as "every signal": only
    the bare word ``read`` means that.
    """
    if not isinstance(scope, str):
        raise TokenInvalid(f"the 'scope' claim must be a string, got {type(scope).__name__}")
    entries: list[ScopeEntry] = []
    for item in scope.split():
        action_text, colon, pattern = item.partition(":")
        action: Action | Role
        try:
            action = Role(action_text) if action_text in _ROLE_WORDS else Action(action_text)
        except ValueError:
            raise TokenInvalid(
                f"scope entry {item!r}: action {action_text!r} is not one of "
                "read, actuate, provide, manage, admin"
            ) from None
        if isinstance(action, Role) and colon:
            raise TokenInvalid(f"scope entry {item!r}: {action} takes no path")
        if colon and not pattern:
            raise TokenInvalid(
                f"scope entry {item!r} has an empty path; write {action_text!r} alone for every signal"
            )
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
# Whether a subject has a grant of its own that narrows its token (then it is never unlimited).
Narrowed = Callable[[str], bool]


@dataclass
class Grants:
    """What one token allows. Scope answers are cached per (action, path): they are asked per
    signal. The second opinion is not cached, because the policy's grants can change any time.

    ``expires_at`` (the ``exp`` claim, exactly) and ``not_before`` (``nbf`` less the leeway) are
    the instants the token stops and starts being valid; the token cache, every check and
    running subscriptions use the same instants.
    """

    subject: str = ""
    entries: tuple[ScopeEntry, ...] = ()
    open: bool = False
    expires_at: float | None = None
    not_before: float | None = None
    second_opinion: SecondOpinion | None = field(default=None, repr=False)
    narrowed: Narrowed | None = field(default=None, repr=False)
    catalog: Catalog | None = field(default=None, repr=False)
    _cache: dict[tuple[Action, str], bool] = field(default_factory=dict, repr=False)

    # -- one signal ---------------------------------------------------------------------------
    def allows(self, action: Action, path: str) -> bool:
        """May this token do ``action`` on the signal at ``path``? A pattern is never "allowed"
        as text: ask ``covers`` (a set question) for patterns and branches."""
        if paths.has_wildcard(path) or (self.catalog is not None and self.catalog.is_branch(path)):
            return self.covers(action, path)
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
        ok = any(_entry_gives(e, action) and e.covers(path) for e in self.entries)
        if len(self._cache) > 20_000:
            self._cache.clear()
        self._cache[key] = ok
        return ok

    def unlimited(self, action: Action) -> bool:
        """``action`` on every signal, those fitted later included (open mode, or a bare scope and
        no grant of its own narrowing it)."""
        if self.open:
            return True
        if not any(_entry_gives(e, action) and e.pattern is None for e in self.entries):
            return False
        if self.second_opinion is None:
            return True
        return self.narrowed is not None and not self.narrowed(self.subject)

    @property
    def privilege(self) -> Privilege | None:
        """The highest privilege the token carries: admin > manage > actuate > read/provide."""
        if self.open:
            return Privilege.ADMINISTER
        best: Privilege | None = None
        for e in self.entries:
            level = (
                ROLE_PRIVILEGE[e.action]
                if isinstance(e.action, Role)
                else (Privilege.OPERATE if e.action is Action.ACTUATE else Privilege.VIEW)
            )
            best = level if best is None or level > best else best
        return best

    def check_valid(self, now: float | None = None) -> None:
        """Raise unless the token is valid at ``now``: before its ``exp``, not before its ``nbf``."""
        at = time.time() if now is None else now
        if self.expires_at is not None and at >= self.expires_at:
            raise TokenExpired("access token has expired")
        if self.not_before is not None and at < self.not_before:
            raise TokenInvalid("access token is not valid yet (nbf)")

    def check(self, action: Action, path: str) -> None:
        """Raise ``Forbidden`` unless the token allows ``action`` on ``path``: one signal, or every
        signal a branch or pattern matches in the catalog."""
        self.check_valid()
        if paths.has_wildcard(path) or (self.catalog is not None and self.catalog.is_branch(path)):
            self._check_set(action, path)
            return
        if not self._scope_allows(action, path):
            raise Forbidden(
                f"token of {self.subject or 'this client'} has no '{action}' scope for {path}", path=path
            )
        if self.second_opinion is not None:
            reason = self.second_opinion(self.subject, action, path)
            if reason is not None:
                raise Forbidden(reason, path=path)

    # -- sets of signals ----------------------------------------------------------------------
    def covers(self, action: Action, pattern: str) -> bool:
        """Every signal ``pattern`` matches in the live catalog is allowed (False if it matches
        none, or if there is no catalog to ask)."""
        if self.catalog is None:
            return self.open
        found = self.catalog.match(pattern)
        return bool(found) and first_outside(self, action, found) is None

    def _check_set(self, action: Action, pattern: str) -> None:
        found = self.catalog.match(pattern) if self.catalog is not None else []
        if not found:
            raise Forbidden(f"{self.subject or 'this client'} may not {action} {pattern}", path=pattern)
        outside = first_outside(self, action, found)
        if outside is not None:
            self.check(action, outside.path)  # raises with the reason for that signal

    def signal(self, catalog: Catalog, path: str, action: Action) -> Signal:
        """The signal at ``path`` if the token may ``action`` it. An unknown path is a 404 only
        for a caller whose rights could cover it; anyone else gets the 403 an existing path
        would give, so a caller learns nothing about signals outside its rights."""
        self.check_valid()
        sig = catalog.find(path) if isinstance(path, str) else None
        if sig is None:
            raise self._unknown(catalog, path if isinstance(path, str) else repr(path), action)
        self.check(action, sig.path)
        return sig

    def resolve(self, catalog: Catalog, pattern: str, action: Action) -> list[Signal]:
        """Every signal ``pattern`` matches, each allowed for ``action``, or an error (403 first)."""
        self.check_valid()
        found = catalog.match(pattern)
        if not found:
            raise self._unknown(catalog, pattern, action)
        outside = first_outside(self, action, found)
        if outside is not None:
            self.check(action, outside.path)
        return found

    def resolve_all(
        self, catalog: Catalog, patterns: list[str], action: Action, budget: paths.Budget | None = None
    ) -> list[Signal]:
        """``resolve`` over every pattern of one request, each signal once, within its ``budget``."""
        return catalog.resolve_all(patterns, budget, lambda pattern: self.resolve(catalog, pattern, action))

    def visible(self, catalog: Catalog, pattern: str, action: Action) -> list[Signal]:
        """The signals ``pattern`` matches that the token may ``action``; 403 if none is."""
        self.check_valid()
        found = catalog.match(pattern)
        if not found:
            raise self._unknown(catalog, pattern, action)
        allowed = found if self.unlimited(action) else [s for s in found if self.allows(action, s.path)]
        if not allowed:
            self.check(action, found[0].path)
        return allowed

    def _unknown(self, catalog: Catalog, path: str, action: Action) -> AnycarError:
        if self.unlimited(action):
            return UnknownPath(path, _did_you_mean(catalog.suggest(path)))
        if paths.has_wildcard(path) or not self.allows(action, path):
            return Forbidden(f"{self.subject or 'this client'} may not {action} {path}", path=path)
        near = catalog.suggest(path, allowed=lambda p: self._scope_allows(action, p))
        return UnknownPath(path, _did_you_mean([p for p in near if self.allows(action, p)]))

    @property
    def scope(self) -> str:
        return "*" if self.open else " ".join(str(e) for e in self.entries)


def _entry_gives(entry: ScopeEntry, action: Action) -> bool:
    return entry.action is action or (
        action is Action.READ and entry.action in (Action.ACTUATE, Action.PROVIDE)
    )


def _did_you_mean(close: list[str]) -> str:
    return f"did you mean {', '.join(close)}?" if close else ""


OPEN = Grants(subject="anonymous (no token key configured)", open=True)


class Authorizer:
    """Turns the token a request carries into ``Grants``.

    ``public_key`` None means open mode: every request gets ``OPEN`` and tokens are ignored.
    ``catalog`` (the hub's live catalog) lets grants answer for branches and patterns as sets.
    """

    def __init__(
        self,
        public_key: str | bytes | None = None,
        *,
        audience: str | None = None,
        issuer: str | None = None,
        leeway_s: float = 5.0,
        catalog: Catalog | None = None,
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
        self._second_opinion: SecondOpinion | None = None
        self._narrowed: Narrowed | None = None
        self._catalog = catalog
        self._open = Grants(subject=OPEN.subject, open=True, catalog=catalog)

    @classmethod
    def from_file(cls, path: str | Path | None, **kwargs: Any) -> Authorizer:
        if path is None:
            return cls(None, **kwargs)
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read token public key {path}: {exc.strerror}") from None
        return cls(data, **kwargs)

    # What the hub's policy adds (set when a policy runs); cached grants are dropped on change.
    @property
    def second_opinion(self) -> SecondOpinion | None:
        return self._second_opinion

    @second_opinion.setter
    def second_opinion(self, opinion: SecondOpinion | None) -> None:
        self._second_opinion = opinion
        self._seen.clear()

    @property
    def narrowed(self) -> Narrowed | None:
        return self._narrowed

    @narrowed.setter
    def narrowed(self, narrowed: Narrowed | None) -> None:
        self._narrowed = narrowed
        self._seen.clear()

    @property
    def catalog(self) -> Catalog | None:
        return self._catalog

    @catalog.setter
    def catalog(self, catalog: Catalog | None) -> None:
        self._catalog = catalog
        self._open = Grants(subject=OPEN.subject, open=True, catalog=catalog)
        self._seen.clear()

    @property
    def enabled(self) -> bool:
        return self._key is not None

    def grants(self, token: str | None) -> Grants:
        """Grants for a raw token (``Bearer`` prefix allowed); raises ``TokenError``."""
        if self._key is None:
            return self._open
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
            try:
                cached.check_valid()
            except TokenError:
                del self._seen[token]
                raise
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
        exp = _numeric_date(claims, "exp")
        nbf = _numeric_date(claims, "nbf")
        _numeric_date(claims, "iat")
        subject = claims.get("sub", "")
        if not isinstance(subject, str):
            raise TokenInvalid(f"the 'sub' claim must be a string, got {type(subject).__name__}")
        grants = Grants(
            subject=subject,
            entries=parse_scope(claims.get("scope", "")),
            expires_at=exp,  # exactly: the leeway only forgives an issuer's clock running ahead
            not_before=None if nbf is None else nbf - self.leeway_s,
            second_opinion=self._second_opinion,
            narrowed=self._narrowed,
            catalog=self._catalog,
        )
        grants.check_valid()
        return grants


def _numeric_date(claims: dict[str, Any], name: str) -> float | None:
    """RFC 7519 NumericDate: a JSON number. A string (``"exp": "9999999999"``) is refused, not
    converted: PyJWT converts it, and the hub would then not know when the token ends."""
    if name not in claims:
        return None
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TokenInvalid(f"the {name!r} claim must be a number of seconds, got {value!r:.40}")
    return float(value)


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
    """Sign a token with the KUKSA claim set (``scope``, ``sub``, ``exp``, ``iat``, ``jti``).

    ``exp`` is ``now + ttl_s`` exactly: RFC 7519's NumericDate may carry a fraction, and the hub
    ends a token at its ``exp`` to the microsecond, so a 1.5 s token lives 1.5 s (whole seconds
    stay integers, as most issuers write them)."""
    parse_scope(scope)
    issued = time.time() if now is None else now
    claims: dict[str, Any] = {
        "sub": subject,
        "scope": scope,
        "iat": _numeric(issued),
        "exp": _numeric(issued + ttl_s),
        "jti": str(uuid.uuid4()),
    }
    if audience is not None:
        claims["aud"] = audience
    if issuer is not None:
        claims["iss"] = issuer
    key = serialization.load_pem_private_key(private_pem, password=None)
    return jwt.encode(claims, key, algorithm=algorithm_of(private_pem), headers={"typ": "at+jwt"})  # type: ignore[arg-type]


def _numeric(seconds: float) -> int | float:
    """A NumericDate: an integer when whole, else the float itself (no rounding either way)."""
    return int(seconds) if float(seconds).is_integer() else float(seconds)


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
