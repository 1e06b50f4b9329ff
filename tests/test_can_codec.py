"""The compiled signal readers give what cantools decodes, on every message of the shipped DBCs."""

from __future__ import annotations

import math
import random

import pytest

from anycar.brands import list_profiles
from anycar.can.codec import value_reader


def _messages() -> list[tuple[str, object]]:
    out = []
    for profile in list_profiles():
        for bus in profile.buses:
            for name in bus.dbc:
                for msg in profile.dbc(name).db.messages:
                    out.append((f"{profile.id}:{msg.name}", msg))
    return out


MESSAGES = _messages()


def test_there_are_many_messages_to_check() -> None:
    assert len(MESSAGES) > 500


@pytest.mark.parametrize("seed", [1, 2])
def test_readers_agree_with_cantools(seed: int) -> None:
    rnd = random.Random(seed)
    checked = 0
    for label, msg in MESSAGES:
        n = msg.length  # type: ignore[attr-defined]
        readers = {s.name: value_reader(s, n) for s in msg.signals}  # type: ignore[attr-defined]
        for _ in range(5):
            data = bytes(rnd.getrandbits(8) for _ in range(n))
            try:
                ref = msg.decode(data, decode_choices=False, scaling=True)  # type: ignore[attr-defined]
            except Exception:
                continue
            le, be = int.from_bytes(data, "little"), int.from_bytes(data, "big")
            for name, expected in ref.items():
                got = readers[name](le, be)
                if isinstance(expected, float) and math.isnan(expected):
                    assert math.isnan(got)
                    continue
                assert got == pytest.approx(expected, rel=1e-12, abs=1e-9), (label, name, data.hex())
                checked += 1
    assert checked > 10_000


def test_exact_division_gives_the_decimal_the_dbc_means() -> None:
    import random

    from anycar.can.codec import exact_division

    assert exact_division(0.1, 0) == (10, 0)
    assert exact_division(0.5, -40) == (2, -80)
    assert exact_division(1e-07, 0) == (10_000_000, 0)
    assert exact_division(0.0428316886, 0) == (0, 0)
    assert exact_division(0.3, 0) == (0, 0)
    rnd = random.Random(1)
    for scale, offset in [(0.1, 0), (0.01, -40), (0.5, -40), (1e-07, 0), (0.25, 0), (0.125, -1000)]:
        div, shift = exact_division(scale, offset)
        for _ in range(2000):
            raw = rnd.randint(-(2**31), 2**31)
            digits = max(0, -int(f"{scale:e}".split("e")[1])) + 1
            assert (raw + shift) / div == round(raw * scale + offset, digits + 2)
