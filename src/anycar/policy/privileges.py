"""Privileges and grants, after Matter's access control: View < Operate < Manage < Administer.

- View: read the signals the grant names (and, for an accessory, publish its own signals).
- Operate: also set the actuators the grant names.
- Manage: also change accessory settings (priority, mount, name) and commission accessories.
- Administer: also change the trust registry and other subjects' grants.
A grant is given at commissioning (accessories) or when an app is registered, and persists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from anycar.model import paths
from anycar.rights import Action, Privilege


@dataclass(frozen=True, slots=True)
class Grant:
    """What one subject (an accessory instance or an app) may do."""

    subject: str
    kind: str  # "accessory" or "app"
    privilege: Privilege
    reads: tuple[str, ...] = ()
    actuates: tuple[str, ...] = ()
    owns: tuple[str, ...] = field(default=())  # an accessory's own signal paths

    def allows(self, action: Action | str, path: str) -> bool:
        """What the grant names for ``path`` (a leaf): actuating includes reading; privilege and
        safety rules are the access control's, not this."""
        if path in self.owns or any(paths.matches(p, path) for p in self.actuates):
            return True
        return action == Action.READ and any(paths.matches(p, path) for p in self.reads)

    def unlimited(self, action: Action | str) -> bool:
        return False  # a grant always names its paths

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "kind": self.kind,
            "privilege": self.privilege.label,
            "reads": list(self.reads),
            "actuates": list(self.actuates),
            "owns": list(self.owns),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Grant:
        return cls(
            subject=str(data["subject"]),
            kind=str(data["kind"]),
            privilege=Privilege.parse(data["privilege"]),
            reads=tuple(data.get("reads", ())),
            actuates=tuple(data.get("actuates", ())),
            owns=tuple(data.get("owns", ())),
        )


__all__ = ["Grant", "Privilege"]
