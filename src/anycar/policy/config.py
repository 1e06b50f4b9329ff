"""Policy defaults from ``data/policy.yaml``; brand profiles override parts of them."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import yaml


@cache
def _defaults_text() -> str:
    return resources.files("anycar.policy").joinpath("data/policy.yaml").read_text("utf-8")


def defaults() -> dict[str, Any]:
    """A fresh copy of the shipped policy defaults."""
    data: dict[str, Any] = yaml.safe_load(_defaults_text())
    return data
