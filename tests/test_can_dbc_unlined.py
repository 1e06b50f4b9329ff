"""cantools checks that name no line: the offending statement is found, dropped with file:line, the rest loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from anycar.can.dbc import load_dbc, parse_dbc_text
from anycar.errors import ConfigError

DATA = Path(__file__).resolve().parent / "data" / "opendbc"
# the shared snapshots sit beside the checkout (../shared for /work/main, ../../shared for a worktree)
SHARED = next(
    (p / "shared" for p in Path(__file__).resolve().parents if (p / "shared" / "dbc").is_dir()),
    Path("/nonexistent"),
)
HEADER = (
    'VERSION ""\n\nNS_ :\n\nBS_:\n\nBU_: ECU\n\nBO_ 100 M: 8 ECU\n SG_ A : 0|8@1+ (1,0) [0|255] "" ECU\n\n'
)
FIRST = HEADER.count("\n") + 1  # the line after the header


def _line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


@pytest.mark.parametrize(
    ("name", "entry", "message", "kept"),
    [
        ("rivian_primary_actuator_excerpt.dbc", "VAL_ 352 ACM_VehicleHoldRequired", "ACM_longitudinalRequest",
         ("ACM_PrndRequest", 4, "ACM_PRNDREQ_DRIVE")),
        ("tesla_can_excerpt.dbc", "VAL_ 568 UI_mapSpeedLimit", "DI_torque2", ("DI_gear", 2, "DI_GEAR_R")),
    ],
)  # fmt: skip
def test_unused_value_table_of_real_opendbc_files_is_dropped_with_its_line(
    name: str, entry: str, message: str, kept: tuple[str, int, str]
) -> None:
    path = DATA / name
    loaded = load_dbc(path)
    line = _line_of(path, entry)
    assert [str(w) for w in loaded.warnings if w.line == line] == [
        f"{path}:{line}: VAL_ for signal {entry.split()[2]}: message "
        f"{loaded.db.get_message_by_frame_id(int(entry.split()[1])).name} (id {entry.split()[1]}) "
        "has no such signal; dropped"
    ]
    signal, value, label = kept
    msg = loaded.db.get_message_by_name(message)
    assert msg.get_signal_by_name(signal).choices[value] == label  # the other value tables are kept
    assert len(loaded.db.messages) == 2


def test_value_table_for_a_message_that_does_not_exist() -> None:
    loaded = parse_dbc_text(HEADER + 'VAL_ 200 A 1 "x" ;\nVAL_ 100 A 1 "one" ;\n', source="t.dbc")
    assert [str(w) for w in loaded.warnings] == [
        f"t.dbc:{FIRST}: VAL_ for signal A of message id 200: no message has that id; dropped"
    ]
    assert loaded.db.get_message_by_name("M").get_signal_by_name("A").choices[1] == "one"


def test_unused_float_type_is_dropped_with_its_line() -> None:
    loaded = parse_dbc_text(HEADER + "SIG_VALTYPE_ 100 B : 1;\n", source="t.dbc")
    assert [str(w) for w in loaded.warnings] == [
        f"t.dbc:{FIRST}: SIG_VALTYPE_ for signal B: message M (id 100) has no such signal; dropped"
    ]


def test_only_the_bad_statement_of_a_line_is_dropped() -> None:
    text = HEADER + 'VAL_ 100 B 2 "b" ;VAL_ 100 A 1 "one" ;\n'
    loaded = parse_dbc_text(text, source="t.dbc")
    assert [w.line for w in loaded.warnings] == [FIRST]
    assert loaded.db.get_message_by_name("M").get_signal_by_name("A").choices[1] == "one"


@pytest.mark.parametrize(
    ("extra", "bad_line", "words"),
    [
        # a typed attribute given as text: cantools says "Expected int or float, got str"
        ('BA_DEF_ SG_ "GenSigStartValue" STRING ;\nBA_ "GenSigStartValue" SG_ 100 A "abc";\n', 2,
         "Expected int or float"),
        # an attribute no BA_DEF_ defines: cantools raises a bare KeyError
        ('BA_ "Foo" BO_ 100 5;\n', 1, "KeyError 'Foo'"),
        # an INT VFrameFormat without a default
        ('BA_DEF_ BO_ "VFrameFormat" INT 0 3;\n', 1, "VFrameFormat"),
        # a multi-line comment before the bad statement keeps the line count right
        ('CM_ SG_ 100 A "two\nlines";\nBA_ "Foo" BO_ 100 5;\n', 3, "KeyError 'Foo'"),
    ],
)  # fmt: skip
def test_other_lineless_refusals_are_located_by_bisection(extra: str, bad_line: int, words: str) -> None:
    loaded = parse_dbc_text(HEADER + extra, source="t.dbc")
    assert [w.line for w in loaded.warnings] == [FIRST + bad_line - 1], loaded.warnings
    assert words in loaded.warnings[0].message and "statement dropped" in loaded.warnings[0].message
    assert loaded.db.get_message_by_name("M").get_signal_by_name("A")


def test_every_dbc_of_the_shared_snapshots_loads_or_names_file_and_line() -> None:
    files = sorted([*(SHARED / "dbc" / "opendbc").glob("*.dbc"), *(SHARED / "kuksa").glob("*.dbc")])
    files += sorted(DATA.glob("*.dbc"))
    if not SHARED.is_dir():
        pytest.skip("shared/ not beside the repo")
    assert len(files) >= 13
    for path in files:
        try:
            loaded = load_dbc(path)
        except ConfigError as exc:  # pragma: no cover - none of today's files is refused
            assert str(exc).startswith(f"{path}:"), exc
            continue
        assert loaded.db.messages, path
        for w in loaded.warnings:
            assert w.line is not None and str(w).startswith(f"{path}:{w.line}: "), w
