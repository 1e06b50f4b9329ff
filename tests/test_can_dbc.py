"""Lenient DBC loading over the real opendbc files and deliberately broken text."""

from __future__ import annotations

from pathlib import Path

import pytest

from anycar.can.dbc import load_dbc, parse_dbc_text
from anycar.errors import ConfigError

OPENDBC = sorted((Path(__file__).resolve().parents[1] / "src" / "anycar" / "brands" / "data").glob("*/*.dbc"))
SHARED = Path(__file__).resolve().parents[2] / "shared" / "dbc" / "opendbc"

HEADER = 'VERSION ""\n\nNS_ :\n\nBS_:\n\nBU_: ECU\n\n'


def test_every_shipped_dbc_loads() -> None:
    assert len(OPENDBC) >= 14
    for path in OPENDBC:
        loaded = load_dbc(path)
        assert loaded.db.messages, path


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared/ not beside the repo")
def test_every_opendbc_file_in_shared_loads_with_located_warnings() -> None:
    for path in sorted(SHARED.glob("*.dbc")):
        loaded = load_dbc(path)
        assert loaded.db.messages
        for w in loaded.warnings:
            assert str(w).startswith(f"{path}:{w.line}:"), w


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared/ not beside the repo")
def test_known_quirks_are_repaired_and_reported() -> None:
    psa = load_dbc(SHARED / "psa_aee2010_r3.dbc")
    assert any("'0_COUNTER'" in w.message and w.line == 165 for w in psa.warnings)
    msg = psa.db.get_message_by_name("STEERING_ALT")
    assert "_0_COUNTER" in [s.name for s in msg.signals]
    toyota = load_dbc(SHARED / "toyota_2017_ref_pt.dbc")
    assert any(w.line == 387 and "extended" in w.message for w in toyota.warnings)
    assert toyota.db.get_message_by_name("BDB1F01_14").is_extended_frame
    vw = load_dbc(SHARED / "vw_mqb.dbc")
    assert any("overlap" in w.message for w in vw.warnings)


def test_standard_id_too_large_becomes_extended_and_references_follow() -> None:
    text = HEADER + (
        'BO_ 4660 BIG: 8 ECU\n SG_ A : 0|8@1+ (1,0) [0|255] "" ECU\n\n'
        'CM_ SG_ 4660 A "a comment";\nVAL_ 4660 A 1 "ONE" 0 "ZERO" ;\n'
    )
    loaded = parse_dbc_text(text, source="t.dbc")
    msg = loaded.db.get_message_by_name("BIG")
    assert msg.is_extended_frame and msg.frame_id == 4660
    assert msg.get_signal_by_name("A").choices[1] == "ONE"
    assert [w.line for w in loaded.warnings] == [9]


def test_unparsable_line_is_dropped_with_its_line_number() -> None:
    text = HEADER + (
        'BO_ 100 M: 8 ECU\n SG_ A : 0|8@1+ (1,0) [0|255] "" ECU\n SG_ B : 8|8@1+ (1,0 [0|255] "" ECU\n'
    )
    loaded = parse_dbc_text(text, source="bad.dbc")
    assert [s.name for s in loaded.db.get_message_by_name("M").signals] == ["A"]
    assert any(w.line == 11 and "dropped" in w.message for w in loaded.warnings)


def test_unused_value_table_is_reported() -> None:
    text = HEADER.replace("BU_: ECU", 'BU_: ECU\nVAL_TABLE_ Unused 1 "A" 0 "B" ;') + (
        'BO_ 100 M: 8 ECU\n SG_ A : 0|8@1+ (1,0) [0|255] "" ECU\n'
    )
    loaded = parse_dbc_text(text, source="v.dbc")
    assert any("value table Unused is never used" in w.message for w in loaded.warnings)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read DBC"):
        load_dbc(tmp_path / "nope.dbc")
