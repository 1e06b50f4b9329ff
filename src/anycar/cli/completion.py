"""`anycar completion bash|zsh|tcsh`: a shell completion script for every command and option,
generated from the parser itself (shtab), so it never falls behind the commands."""

from __future__ import annotations

import argparse
from typing import Any

SHELLS = ("bash", "zsh", "tcsh")


def register(sub: Any) -> None:
    p = sub.add_parser(
        "completion",
        help='print a shell completion script (bash: eval "$(anycar completion bash)")',
    )
    p.add_argument("shell", choices=SHELLS, help="the shell to complete in")
    p.set_defaults(func=print_completion)


def print_completion(args: argparse.Namespace) -> int:
    import shtab

    from anycar.cli.main import build_parser

    print(shtab.complete(build_parser(), shell=args.shell))  # nosec B604 # names the shell to complete in; nothing is run
    return 0
