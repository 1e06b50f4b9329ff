"""Every `anycar` line of the README goes through the real command line's parser, so a renamed or
removed command or option fails here even where the line itself takes minutes to run (the
sections' own README tests run theirs; this one covers the rest, and all of them cheaply).

- a line of a ``sh`` block is parsed whole by ``anycar.cli.main.build_parser()`` (the parser the
  shell's ``anycar`` builds, not a copy of its options) and must reach a command;
- a command named inline in the prose (`anycar fleet user add`) must name existing commands and
  options (its arguments are left out in the prose, so it is not parsed whole);
- the benchmark lines that finish in seconds as written are run for real, through the installed
  ``anycar``: each must print its JSON figures under its own name. The others (``api``,
  ``uplink``, ``swap``: a minute and more each) are parsed only.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from anycar.cli.main import build_parser

README = Path(__file__).resolve().parents[1] / "README.md"
TEXT = README.read_text("utf-8")
ANYCAR = str(Path(sys.executable).with_name("anycar"))
# benchmarks that run in seconds exactly as the README writes them (measured on a loaded box)
RUN_FOR_REAL = ("broker", "can", "accessories", "sim", "automations")


def _argv(line: str) -> list[str]:
    """The words of a README line without its comment and its shell redirection."""
    words = shlex.split(line, comments=True)
    return words[: words.index(">")] if ">" in words else words


def block_lines() -> list[str]:
    return [
        line
        for block in re.findall(r"```sh\n(.*?)```", TEXT, re.S)
        for line in block.splitlines()
        if line.startswith("anycar ")
    ]


def inline_commands() -> list[str]:
    return sorted(set(re.findall(r"`(anycar [^`]+)`", TEXT)))


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse keeps its subcommands only here
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def test_the_readme_has_the_lines_this_test_knows() -> None:
    lines = block_lines()
    assert len(lines) >= 80, len(lines)
    benches = [_argv(line)[2] for line in lines if line.startswith("anycar bench ")]
    assert set(RUN_FOR_REAL) <= set(benches), benches
    assert {"api", "uplink", "swap"} <= set(benches)


@pytest.mark.parametrize("line", block_lines())
def test_readme_line_parses_with_the_real_parser(line: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = _argv(line)
    try:
        args = build_parser().parse_args(argv[1:])
    except (SystemExit, argparse.ArgumentError) as exc:
        pytest.fail(f"README line {line!r} no longer parses ({exc}): {capsys.readouterr().err.strip()}")
    assert callable(getattr(args, "func", None)), f"{line!r} reaches no command"
    if argv[1] == "bench":
        assert args.bench_command == argv[2]


@pytest.mark.parametrize("command", inline_commands())
def test_readme_inline_command_names_real_commands_and_options(command: str) -> None:
    parser: argparse.ArgumentParser = build_parser()
    words = _argv(command)[1:]
    path = ["anycar"]
    for word in words:
        if word.startswith("-"):
            known = {o for a in parser._actions for o in a.option_strings}
            assert word.split("=")[0] in known, f"`{command}`: {' '.join(path)} has no option {word}"
            continue
        sub = _subparsers(parser)
        if not sub:
            break  # a positional argument of the command
        assert word in sub, f"`{command}`: {' '.join(path)} has no command {word!r}"
        parser, path = sub[word], [*path, word]
    assert len(path) > 1


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", RUN_FOR_REAL)
def test_readme_benchmark_line_runs_as_written(name: str, tmp_path: Path) -> None:
    (line,) = [line for line in block_lines() if _argv(line)[:3] == ["anycar", "bench", name]]
    done = subprocess.run(
        [ANYCAR, *_argv(line)[1:]], cwd=tmp_path, capture_output=True, text=True, timeout=240, check=False
    )
    assert done.returncode == 0, (line, done.stderr[-2000:])
    figures = json.loads(done.stdout)
    assert figures["benchmark"] == name
    rates = [v for k, v in figures.items() if k.endswith("_per_s") and isinstance(v, int | float)]
    assert rates and all(r > 0 for r in rates), figures
