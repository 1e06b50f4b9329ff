"""`anycar bench NAME`: every benchmark takes `--json`, added once for all by `register` (so a
benchmark added later gets it too, and none has it twice, which argparse would refuse)."""

from __future__ import annotations

import argparse

from anycar.cli.main import build_parser


def _benchmarks() -> dict[str, argparse.ArgumentParser]:
    top = build_parser()
    (commands,) = [a for a in top._actions if isinstance(a, argparse._SubParsersAction)]
    bench = commands.choices["bench"]
    (names,) = [a for a in bench._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(names.choices)


def test_every_benchmark_takes_json_once_and_last() -> None:
    benchmarks = _benchmarks()
    assert {"broker", "api", "fleet", "fleet-report", "roads", "dispatch", "swap-cpu"} <= set(benchmarks)
    for name, parser in benchmarks.items():
        flags = [s for a in parser._actions for s in a.option_strings if s.startswith("--")]
        assert flags.count("--json") == 1 and flags[-1] == "--json", (name, flags)
        assert parser.get_default("func") is not None, name


def test_json_parses_on_a_benchmark_with_its_own_options() -> None:
    args = build_parser().parse_args(["bench", "fleet", "--parts", "stages", "--json"])
    assert args.json is True and args.parts == "stages"
    assert build_parser().parse_args(["bench", "patterns"]).json is False
