"""Owner-only actions (trusting a vendor key, pairing an accessory): who may do them.

One helper, so that the rule lives in one place. With no token key configured the hub serves
everyone on loopback only, so the person at the car is the owner. With a token key, the caller's
token must carry the ``admin`` scope: the owner's right to change what the car trusts and what
is fitted. Scopes are compared as a set of words, never as pattern text.
"""

from __future__ import annotations

from starlette.requests import Request

from anycar.api.auth import Forbidden, Grants, Role
from anycar.api.rest import caller_grants
from anycar.rights import Privilege

OWNER_SCOPE = Role.ADMIN


def require_owner(request: Request, what: str) -> Grants:
    """The caller's grants if the caller is the owner; ``Forbidden`` (403) or a token error (401)."""
    grants = caller_grants(request)
    if grants.privilege is not Privilege.ADMINISTER:  # the highest of the token's set of scopes
        raise Forbidden(
            f"{what} is for the car's owner: the token of {grants.subject or 'this client'} "
            f"lacks the '{OWNER_SCOPE.value}' scope"
        )
    return grants
