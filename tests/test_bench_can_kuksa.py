"""`anycar bench can` reports the ratio to a KUKSA-like baseline next to the bare cantools one."""

from __future__ import annotations

import json

import pytest

from anycar.cli.main import main


def test_bench_can_reports_the_kuksa_like_baseline(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["bench", "can", "--brand", "tesla_model3", "--frames", "3000", "--repeat", "1", "--json"]) == 0
    )
    result = json.loads(capsys.readouterr().out)
    kuksa = result["kuksa_like"]
    assert kuksa["frames_per_s"] > 0 and kuksa["ratio"] > 0
    assert result["ratio"] > 0  # today's ratio to the bare decode stays beside it
    # it does the same work: about as many VSS updates as the adapter (see docs/performance.md)
    assert 0.5 * result["vss_updates"] <= kuksa["vss_updates"] <= 1.5 * result["vss_updates"]
