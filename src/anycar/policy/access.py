"""Who may write what: an accessory writes only its own signals and the actuators its grant
names, and never a safety-critical branch; apps need Administer for those.
"""

from __future__ import annotations

from collections.abc import Iterable

from anycar.model import paths
from anycar.model.catalog import Catalog
from anycar.policy import config
from anycar.policy.errors import PermissionDenied
from anycar.policy.privileges import Grant, Privilege
from anycar.rights import Action

ACCESSORIES_BRANCH = "Vehicle.Accessories"


def _under(path: str, branch: str) -> bool:
    return path == branch or path.startswith(branch + ".")


class AccessControl:
    """The rules, with the safety-critical and accessory-friendly branches from policy data."""

    def __init__(
        self,
        safety_critical: Iterable[str] | None = None,
        accessory_standard_branches: Iterable[str] | None = None,
    ) -> None:
        data = config.defaults()
        self.safety_critical = tuple(
            safety_critical if safety_critical is not None else data["safety_critical"]
        )
        self.standard_branches = tuple(
            accessory_standard_branches
            if accessory_standard_branches is not None
            else data["accessory_standard_branches"]
        )

    # -- classification ---------------------------------------------------------------------
    def safety_branch(self, path: str) -> str | None:
        """The safety-critical branch ``path`` falls in, or ``None``."""
        return next((b for b in self.safety_critical if _under(path, b)), None)

    def pattern_hits_safety(self, pattern: str, catalog: Catalog | None = None) -> str | None:
        """The first safety-critical path a pattern reaches, or ``None``: decided on the set of
        signals it matches in ``catalog``, never on its text. Without a catalog a plain path
        is judged by the branches it contains, and a wildcard pattern is assumed to reach one."""
        if catalog is not None:
            for sig in catalog.match(pattern):
                if (branch := self.safety_branch(sig.path)) is not None:
                    return sig.path if branch == sig.path else f"{sig.path} (in {branch})"
            return self.safety_branch(pattern) if not paths.has_wildcard(pattern) else None
        if paths.has_wildcard(pattern):
            return self.safety_critical[0] if self.safety_critical else None
        hit = self.safety_branch(pattern)
        return hit or next((b for b in self.safety_critical if _under(b, pattern)), None)

    # -- checks -----------------------------------------------------------------------------
    def check_provide(self, instance: str, path: str) -> None:
        """An accessory instance may provide ``path`` (its own branch or a cabin standard path)."""
        if (branch := self.safety_branch(path)) is not None:
            raise PermissionDenied(
                f"{path} is in the safety-critical branch {branch}; no accessory may write it",
                path=path,
            )
        if _under(path, f"{ACCESSORIES_BRANCH}.{instance}"):
            return
        if any(_under(path, b) for b in self.standard_branches):
            return
        raise PermissionDenied(
            f"{path} is outside Vehicle.Accessories.{instance} and the standard branches accessories "
            f"may provide ({', '.join(self.standard_branches)})",
            path=path,
        )

    def check_actuate(self, grant: Grant, path: str) -> None:
        branch = self.safety_branch(path)
        if branch is not None:
            if grant.kind == "accessory":
                raise PermissionDenied(
                    f"{grant.subject} may not set {path}: {branch} is safety-critical and no accessory "
                    "may write it, whatever its grant",
                    path=path,
                )
            if grant.privilege < Privilege.ADMINISTER:
                raise PermissionDenied(
                    f"{grant.subject} needs Administer to set safety-critical {path}", path=path
                )
        if grant.privilege < Privilege.OPERATE:
            raise PermissionDenied(
                f"{grant.subject} has {grant.privilege.label}; setting {path} needs Operate", path=path
            )
        if grant.allows(Action.ACTUATE, path):
            return
        raise PermissionDenied(f"{grant.subject}'s grant does not name actuator {path}", path=path)

    def check_read(self, grant: Grant, path: str) -> None:
        if grant.allows(Action.READ, path):
            return
        raise PermissionDenied(f"{grant.subject}'s grant does not name {path} for reading", path=path)

    def filter_actuates(
        self, patterns: Iterable[str], catalog: Catalog | None = None
    ) -> tuple[list[str], dict[str, str]]:
        """Split requested actuator patterns for an accessory into granted and refused (with why)."""
        granted: list[str] = []
        refused: dict[str, str] = {}
        for pattern in patterns:
            hit = self.pattern_hits_safety(pattern, catalog)
            if hit is not None:
                refused[pattern] = f"reaches safety-critical {hit}"
            else:
                granted.append(pattern)
        return granted, refused
