"""How commands print: rich tables for people, JSON for programs."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text


class ToolConsole(Console):
    """rich for a terminal; for a pipe or a file plain lines: tables become tab-separated rows
    (title, header, one line per row) and nothing is wrapped or cut to 80 columns with "…"."""

    def print(self, *objects: Any, **kwargs: Any) -> None:
        if not self.is_terminal:
            if objects and all(isinstance(o, Table) for o in objects):
                for table in objects:  # written as is: rich would turn the tabs into spaces
                    self.file.write(plain_table(table) + "\n")
                self.file.flush()
                return
            kwargs.setdefault("soft_wrap", True)
        super().print(*objects, **kwargs)


def _cell(value: Any) -> str:
    text = value.plain if isinstance(value, Text) else str(value)
    return text.replace("\n", ", ").replace("\t", " ")


def plain_table(table: Table) -> str:
    lines = []
    if table.title:
        lines.append(_cell(table.title))
    columns = table.columns
    lines.append("\t".join(_cell(c.header) for c in columns))
    cells = [list(c.cells) for c in columns]
    for row in zip(*cells, strict=False):
        lines.append("\t".join(_cell(v) for v in row))
    return "\n".join(lines)


console = ToolConsole()
errors = ToolConsole(stderr=True)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def fail(message: str, code: int = 2) -> int:
    errors.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return code


def progress() -> Progress:
    """A progress bar on stderr, so that ``--json`` output on stdout stays clean."""
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("[progress.percentage]{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=errors,
        transient=True,
    )
