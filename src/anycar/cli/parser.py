"""The argument parser of the `anycar` command: argparse, with a suggestion for a mistyped
command or choice (``brnd`` -> ``did you mean 'brand'?``) and checked log levels."""

from __future__ import annotations

import argparse
import difflib
import logging
import re
from typing import NoReturn

_CHOICE = re.compile(r"invalid choice: '([^']*)' \(choose from (.*)\)")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def nearest(word: str, options: list[str]) -> list[str]:
    """The options closest to ``word`` (a typo, a prefix, a different case), best first."""
    lowered = {o.lower(): o for o in options}
    if word.lower() in lowered:
        return [lowered[word.lower()]]
    close = difflib.get_close_matches(word.lower(), list(lowered), n=3, cutoff=0.5)
    starts = [o for o in lowered if o.startswith(word.lower()) and o not in close]
    return [lowered[o] for o in [*close, *starts][:3]]


class ToolParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        m = _CHOICE.search(message)
        if m is not None:
            options = re.findall(r"'([^']*)'", m.group(2))
            hits = nearest(m.group(1), options)
            if hits:
                message += "; did you mean " + " or ".join(f"'{h}'" for h in hits) + "?"
        super().error(message)


def log_level(text: str) -> str:
    """``--log-level``: a Python level name in any case, or a clear argparse error."""
    name = text.strip().upper()
    if name not in LOG_LEVELS or not isinstance(logging.getLevelName(name), int):
        raise argparse.ArgumentTypeError(f"{text!r} is not a log level; use one of {', '.join(LOG_LEVELS)}")
    return name
