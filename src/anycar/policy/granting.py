"""Changing a grant: who may, and how much they may give.

- Only a party with Administer (a token with the ``admin`` scope) changes grants.
- It gives no privilege above its own, and no signal it does not hold itself: the reads and
  actuates asked for are the sets of signals they match in the live catalog, and every one
  of them must be allowed to the granter (``anycar.rights``), never compared as pattern text.
- Nobody widens their own grant; narrowing it is allowed (and needs no privilege).
- An accessory's grant stays an accessory's grant: at most Manage, its own signals kept, and no
  actuator in a safety-critical branch (the broker refuses those writes anyway).
"""

from __future__ import annotations

from dataclasses import dataclass

from anycar.errors import ConfigError, UnknownPath
from anycar.model.catalog import Catalog
from anycar.model.signal import Signal
from anycar.policy.access import AccessControl
from anycar.policy.errors import PermissionDenied
from anycar.policy.privileges import Grant
from anycar.rights import Action, Privilege, Rights, bounded_patterns, first_outside, signals_of


@dataclass(frozen=True, slots=True)
class GrantRequest:
    """What ``PUT /api/v1/grants/{subject}`` asks for."""

    subject: str
    privilege: Privilege
    reads: tuple[str, ...] = ()
    actuates: tuple[str, ...] = ()


def decide(
    granter: Rights,
    granter_privilege: Privilege | None,
    request: GrantRequest,
    current: Grant | None,
    catalog: Catalog,
    access: AccessControl,
) -> Grant:
    """The grant to store for ``request``, or ``PermissionDenied`` / ``ConfigError`` saying why not."""
    who = granter.subject or "this client"
    kind = current.kind if current is not None else "app"
    itself = bool(granter.subject) and granter.subject == request.subject
    if not itself:  # who may comes before what is asked: a stranger learns nothing from a 404
        if granter_privilege is None or granter_privilege < Privilege.ADMINISTER:
            held = granter_privilege.label if granter_privilege is not None else "no privilege"
            raise PermissionDenied(
                f"{who} holds {held}; changing the grant of {request.subject} needs Administer "
                "(a token with the 'admin' scope)"
            )
        if request.privilege > granter_privilege:
            raise PermissionDenied(f"{who} cannot give {request.privilege.label}, above its own")
    wanted = {
        Action.READ: _signals(granter, Action.READ, request.reads, catalog),
        Action.ACTUATE: _signals(granter, Action.ACTUATE, request.actuates, catalog),
    }
    if request.actuates and request.privilege < Privilege.OPERATE:
        raise ConfigError(f"privilege {request.privilege.label} cannot actuate; give Operate or more")
    if itself:  # giving up rights needs no privilege; gaining them is never one's own decision
        _only_narrower(request, current, wanted)
    for action, signals in wanted.items():
        outside = first_outside(granter, action, signals)
        if outside is not None:
            raise PermissionDenied(
                f"{who} cannot give '{action}' on {outside.path}: it does not hold that itself",
                path=outside.path,
            )
    if kind == "accessory":
        if request.privilege > Privilege.MANAGE:
            raise PermissionDenied(f"{request.subject} is an accessory: it can be granted at most Manage")
        for pattern in request.actuates:
            hit = access.pattern_hits_safety(pattern, catalog)
            if hit is not None:
                raise PermissionDenied(
                    f"{request.subject} is an accessory and {pattern} reaches safety-critical {hit}",
                    path=pattern,
                )
    return Grant(
        request.subject,
        kind,
        request.privilege,
        tuple(bounded_patterns(granter, Action.READ, list(request.reads), catalog)),
        tuple(bounded_patterns(granter, Action.ACTUATE, list(request.actuates), catalog)),
        owns=current.owns if current is not None else (),
    )


def _signals(granter: Rights, action: Action, patterns: tuple[str, ...], catalog: Catalog) -> list[Signal]:
    """The signals asked for; a pattern matching nothing is a 404 only for a granter holding
    ``action`` on everything (anyone else would learn from it what the vehicle has)."""
    try:
        return signals_of(catalog, patterns)
    except UnknownPath as exc:
        if granter.unlimited(action):
            raise
        raise PermissionDenied(
            f"{granter.subject or 'this client'} cannot give '{action}' on {exc.path}", path=exc.path
        ) from None


def _only_narrower(request: GrantRequest, current: Grant | None, wanted: dict[Action, list[Signal]]) -> None:
    """A subject changing its own grant may only give itself less than it has."""
    if current is None:
        raise PermissionDenied(f"{request.subject} has no grant and cannot give itself one")
    if request.privilege > current.privilege:
        raise PermissionDenied(f"{request.subject} cannot raise its own privilege")
    for action, signals in wanted.items():
        outside = first_outside(current, action, signals)
        if outside is not None:
            raise PermissionDenied(
                f"{request.subject} cannot widen its own grant to '{action}' on {outside.path}",
                path=outside.path,
            )
