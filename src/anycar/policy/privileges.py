"""Privileges and grants, after Matter's access control: View < Operate < Manage < Administer.

- View: read the signals the grant names (and, for an accessory, publish its own signals).
- Operate: also set the actuators the grant names.
- Manage: also change accessory settings (priority, mount, name) and commission accessories.
- Administer: also change the trust registry and other subjects' grants.
A grant is given at commissioning (accessories) or when an app is registered, and persists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from anycar.errors import ConfigError


class Privilege(IntEnum):
    VIEW = 1
    OPERATE = 2
    MANAGE = 3
    ADMINISTER = 4

    @classmethod
    def parse(cls, text: str | int | Privilege) -> Privilege:
        if isinstance(text, Privilege):
            return text
        if isinstance(text, int) and not isinstance(text, bool):
            try:
                return cls(text)
            except ValueError:
                pass
        elif isinstance(text, str) and text.upper() in cls.__members__:
            return cls[text.upper()]
        raise ConfigError(f"privilege {text!r} is not one of View, Operate, Manage, Administer")

    @property
    def label(self) -> str:
        return self.name.capitalize()


@dataclass(frozen=True, slots=True)
class Grant:
    """What one subject (an accessory instance or an app) may do."""

    subject: str
    kind: str  # "accessory" or "app"
    privilege: Privilege
    reads: tuple[str, ...] = ()
    actuates: tuple[str, ...] = ()
    owns: tuple[str, ...] = field(default=())  # an accessory's own signal paths

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
