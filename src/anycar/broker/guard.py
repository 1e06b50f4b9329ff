"""The broker's write guard: branches no accessory may write, whatever any grant says.

Every write reaches a signal through the broker (an accessory's actuation request, a VISS or
gRPC set, a provider claiming a signal), so this is the one place the rule is enforced; the
policy only tells the guard which branches are safety-critical and who counts as an accessory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from anycar.errors import NotProvider

ACCESSORY_PREFIX = "accessory:"


class SafetyCritical(NotProvider):
    """A write to a safety-critical signal by someone the guard protects it from (403)."""


def _under(path: str, branch: str) -> bool:
    return path == branch or path.startswith(branch + ".")


def is_accessory_name(name: str | None) -> bool:
    """Accessory sessions act, and accessory providers are registered, as ``accessory:<instance>``."""
    return name is not None and name.startswith(ACCESSORY_PREFIX)


class WriteGuard:
    """Refuses accessory writes (actuation and claims) to the protected branches."""

    def __init__(self) -> None:
        self.branches: tuple[str, ...] = ()
        self.is_accessory: Callable[[str | None], bool] = is_accessory_name
        self.on_refusal: Callable[[str, str, str], None] | None = None  # (who, path, why)

    def protect(
        self,
        branches: Iterable[str],
        *,
        is_accessory: Callable[[str | None], bool] | None = None,
        on_refusal: Callable[[str, str, str], None] | None = None,
    ) -> None:
        self.branches = tuple(branches)
        if is_accessory is not None:
            self.is_accessory = is_accessory
        self.on_refusal = on_refusal

    def branch_of(self, path: str) -> str | None:
        return next((b for b in self.branches if _under(path, b)), None)

    def check(self, who: str | None, path: str, what: str) -> None:
        """Raise ``SafetyCritical`` if ``who`` is an accessory and ``path`` is protected."""
        if not self.branches or not self.is_accessory(who):
            return
        branch = self.branch_of(path)
        if branch is None:
            return
        why = (
            f"{who} may not {what} {path}: {branch} is safety-critical and no accessory may write it, "
            "whatever its grant"
        )
        if self.on_refusal is not None:
            self.on_refusal(str(who), path, why)
        raise SafetyCritical(why, path=path)
