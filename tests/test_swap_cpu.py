"""`anycar bench swap-cpu` as the README runs it: the CSMS's CPU per OCPP message over an
in-memory connection, the ``ocpp`` library as shipped against ``anycar.swap.ocpp21``'s fast path,
validation on in both; whole swap flows complete in both."""

from __future__ import annotations

import json

import pytest

from anycar.cli.main import main


def test_bench_swap_cpu_as_in_the_readme(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "swap-cpu", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    library, fast = doc["runs"]
    assert (library["mode"], fast["mode"]) == ("library", "fast")
    for run in (library, fast):
        assert run["messages"] == 100 * 3 * 17  # a Heartbeat and 8 + 8 slot messages per station and round
        assert set(run["by_kind_us"]) == {
            "Heartbeat",
            "StatusNotification",
            "MeterValues",
            "TransactionEvent",
        }
        assert run["swap_flows"] == 30 and run["swap_flow_cpu_ms_mean"] > 0
    # the same frames, back to back in one process: the fast path costs well under the library's
    assert fast["cpu_us_per_message"] < 0.6 * library["cpu_us_per_message"]
    assert fast["by_kind_us"]["TransactionEvent"] < 0.5 * library["by_kind_us"]["TransactionEvent"]


def test_bench_swap_cpu_refuses_bad_numbers(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "swap-cpu", "--stations", "0"]) == 2
    assert "--stations" in capsys.readouterr().err
