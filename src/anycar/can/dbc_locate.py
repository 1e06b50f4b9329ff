"""Find the statement of a DBC text that cantools refused without naming a line.

Most of cantools' errors carry a line number; these checks (read from cantools 45's
``dbc_loader.load_string``, ``_load_signals``, ``_load_attributes`` and ``Message``) run after the
whole file is parsed and name none:

- ``unused VAL_ entries in DBC: VAL_ <id> <signal>``: a value table for a signal the message does
  not have, or for a message the file does not define (rivian, tesla_can in current opendbc);
- ``unused SIG_VALTYPE_ entries in DBC: SIG_VALTYPE_ <id> <signal>``: the same for a float type;
- ``Standard|Extended frame id 0x... is more than 11|29 bits in message NAME`` (never reached:
  ``can.dbc`` repairs such ids in the text first);
- ``Expected int or float, got str: ...``: a ``GenSigStartValue`` (or another typed attribute)
  given as text;
- ``KeyError: 'Name'``: a ``BA_`` of an attribute that no ``BA_DEF_`` defines;
- ``Default value for VFrameFormat attribute must be defined ...``: an INT ``VFrameFormat``
  without ``BA_DEF_DEF_``.

The first two say what to look for, so the statements are found in the text directly. For the
others the statement is found by bisection over the statements outside message blocks: the one
whose removal alone makes that same refusal go away (a handful of loads, only for a refused file).
A refusal that none of this explains is left to the caller to report.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

TryLoad = Callable[[list[str]], BaseException | None]

_UNUSED = re.compile(r"unused (VAL_|SIG_VALTYPE_) entries in DBC")
_ENTRY = re.compile(r"\b(VAL_|SIG_VALTYPE_) (\d+) (\S+)")
_BO = re.compile(r"^\s*BO_\s+(\d+)\s+(\w+)\s*:")
_KEYWORD = re.compile(
    r"^\s*(BA_DEF_DEF_REL_|BA_DEF_DEF_|BA_DEF_REL_|BA_DEF_SGTYPE_|BA_DEF_|BA_REL_|BA_SGTYPE_|BA_|CM_|"
    r"VAL_|SIG_VALTYPE_|SG_MUL_VAL_|SIG_GROUP_|BO_TX_BU_|EV_|ENVVAR_DATA_|SGTYPE_VAL_)\s"
)
MAX_BISECT_LOADS = 64


@dataclass(slots=True, frozen=True)
class Drop:
    """A statement to blank out: from (line, col) to (end_line, end_col), 1-based lines."""

    line: int
    col: int
    end_line: int
    end_col: int
    reason: str

    def apply(self, lines: list[str]) -> None:
        """Blank the statement, keeping one line per input line (so later line numbers hold)."""
        first, last = self.line - 1, self.end_line - 1
        if first == last:
            text = lines[first]
            lines[first] = text[: self.col] + " " * (self.end_col - self.col) + text[self.end_col :]
            return
        lines[first] = lines[first][: self.col]
        for i in range(first + 1, last):
            lines[i] = ""
        lines[last] = " " * self.end_col + lines[last][self.end_col :]


def locate_refusal(cause: BaseException, lines: list[str], try_load: TryLoad) -> list[Drop]:
    """The statements to drop so that cantools no longer refuses for ``cause`` (empty: unknown)."""
    text = str(cause)
    if _UNUSED.search(text):
        return _unused_entries(text, lines)
    return _bisect(cause, lines, try_load)


def _unused_entries(text: str, lines: list[str]) -> list[Drop]:
    messages = {m.group(1): m.group(2) for m in map(_BO.match, lines) if m}
    signals = _signals_by_message(lines)
    drops: list[Drop] = []
    for kind, frame_id, signal in _ENTRY.findall(text):
        msg = messages.get(frame_id)
        if msg is None:
            why = f"{kind} for signal {signal} of message id {frame_id}: no message has that id"
        elif signal not in signals.get(frame_id, set()):
            why = f"{kind} for signal {signal}: message {msg} (id {frame_id}) has no such signal"
        else:
            why = f"{kind} for signal {signal} of message {msg} was not used by cantools"
        pattern = re.compile(rf"(?<![A-Za-z0-9_]){kind}\s+{frame_id}\s+{re.escape(signal)}(?=[\s:;])")
        for i, line in enumerate(lines):
            for found in pattern.finditer(line):
                drops.append(_statement(lines, i, found.start(), f"{why}; dropped"))
    return drops


def _signals_by_message(lines: list[str]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    current: set[str] | None = None
    for line in lines:
        m = _BO.match(line)
        if m:
            current = out.setdefault(m.group(1), set())
            continue
        stripped = line.strip()
        if current is not None and stripped.startswith("SG_ "):
            parts = stripped.split()
            if len(parts) > 1:
                current.add(parts[1])
        elif stripped and not line.startswith((" ", "\t")):
            current = None
    return out


def _statement(lines: list[str], i: int, col: int, reason: str) -> Drop:
    """The statement starting at (i, col): up to its ``;`` outside quotes, or the line's end."""
    quoted = False
    for j in range(i, len(lines)):
        text = lines[j]
        k = col if j == i else 0
        while k < len(text):
            ch = text[k]
            if ch == "\\" and quoted:
                k += 2
                continue
            if ch == '"':
                quoted = not quoted
            elif ch == ";" and not quoted:
                return Drop(i + 1, col, j + 1, k + 1, reason)
            k += 1
    return Drop(i + 1, col, i + 1, len(lines[i]), reason)


def _candidates(lines: list[str]) -> list[Drop]:
    """Every statement outside the message blocks (attributes, comments, value tables, ...)."""
    out: list[Drop] = []
    i = 0
    while i < len(lines):
        m = _KEYWORD.match(lines[i])
        if m:
            drop = _statement(lines, i, m.start(1), "")
            out.append(drop)
            i = drop.end_line
            continue
        i += 1
    return out


def _bisect(cause: BaseException, lines: list[str], try_load: TryLoad) -> list[Drop]:
    pool = _candidates(lines)
    # First the statement whose removal lets the file load; failing that (two bad statements),
    # the one whose removal at least ends this refusal.
    found = _bisect_pool(pool, cause, lines, try_load, strict=True) or _bisect_pool(
        pool, cause, lines, try_load, strict=False
    )
    if found is None:
        return []
    words = " ".join(str(cause).split())
    label = f"{type(cause).__name__} {words}" if isinstance(cause, KeyError) else words
    excerpt = lines[found.line - 1][found.col :].strip()[:60]
    return [
        Drop(
            found.line,
            found.col,
            found.end_line,
            found.end_col,
            f"cantools refuses {excerpt!r} ({label}); statement dropped",
        )
    ]


def _bisect_pool(
    pool: list[Drop], cause: BaseException, lines: list[str], try_load: TryLoad, *, strict: bool
) -> Drop | None:
    want = (type(cause), str(cause))
    loads = 0

    def still_refused(removed: list[Drop]) -> bool:
        nonlocal loads
        loads += 1
        trial = list(lines)
        for d in removed:
            d.apply(trial)
        got = try_load(trial)
        if got is None:
            return False
        return strict or (type(got), str(got)) == want

    if not pool or still_refused(pool):
        return None  # not one of these statements (a message block, or several statements)
    while len(pool) > 1 and loads < MAX_BISECT_LOADS:
        half = pool[: len(pool) // 2]
        pool = half if not still_refused(half) else pool[len(pool) // 2 :]
    if len(pool) != 1 or still_refused(pool):
        return None
    return pool[0]
