"""Lenient DBC loading: real DBC files are messy, and one bad line must not lose a whole car.

The files published for real cars (opendbc and the like) declare extended ids as standard ones,
carry ids with stray flag bits, name signals with a leading digit, overlap signals, and keep
value tables nobody uses. cantools refuses most of that in strict mode. ``load_dbc`` repairs
what it can in the text, loads with cantools, drops a line cantools still cannot parse, and
reports every repair as a ``DbcWarning`` naming the file and line.

Some of cantools' checks run after parsing and name no line (``unused VAL_ entries``, ``unused
SIG_VALTYPE_ entries``, an attribute of the wrong type, an undefined attribute): ``can.dbc_locate``
finds the statement in the text, which is dropped with its line number like any other bad line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import cantools
from cantools.database.can import Database, Message

from anycar.can.dbc_locate import locate_refusal
from anycar.errors import ConfigError

_BO = re.compile(r"^(\s*BO_\s+)(\d+)(\s+)(\w+)(\s*:\s*)(\d+)(.*)$")
_SG = re.compile(r"^(\s*SG_\s+)(\S+)(\s+(?:M|m\d+M?)\s*:|\s*:)(.*)$")
_VAL_TABLE = re.compile(r"^\s*VAL_TABLE_\s+(\w+)\s")
_REFERS_ID = re.compile(r"^(\s*(?:VAL_|SG_MUL_VAL_|BO_TX_BU_|SIG_VALTYPE_|SIG_GROUP_)\s+)(\d+)\b")
_REFERS_ID_INNER = re.compile(r"(\b(?:BO_|SG_)\s+)(\d+)\b")
_SYNTAX_LINE = re.compile(r"line (\d+)")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
EXTENDED_FLAG = 0x80000000
MAX_REPAIR_ROUNDS = 200


@dataclass(slots=True, frozen=True)
class DbcWarning:
    source: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line else self.source
        return f"{where}: {self.message}"


@dataclass(slots=True)
class LoadedDbc:
    """A cantools database plus where each message and signal came from."""

    source: str
    db: Database
    warnings: list[DbcWarning] = field(default_factory=list)
    message_lines: dict[str, int] = field(default_factory=dict)
    signal_lines: dict[tuple[str, str], int] = field(default_factory=dict)
    renamed: dict[tuple[str, str], str] = field(default_factory=dict)

    def message_line(self, message: str) -> int | None:
        return self.message_lines.get(message)

    def signal_line(self, message: str, signal: str) -> int | None:
        return self.signal_lines.get((message, signal))


def load_dbc(path: str | Path) -> LoadedDbc:
    """Read a DBC file leniently; raises ``ConfigError`` only if nothing usable is left."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read DBC: {exc.strerror}") from None
    return parse_dbc_text(text, source=str(p))


def parse_dbc_text(text: str, *, source: str = "<dbc>") -> LoadedDbc:
    warnings: list[DbcWarning] = []
    lines = text.splitlines()
    lines, message_lines, signal_lines, renamed = _repair(lines, source, warnings)
    db = _load_with_retries(lines, source, warnings)
    loaded = LoadedDbc(source, db, warnings, message_lines, signal_lines, renamed)
    _check(loaded, lines)
    return loaded


def _repair(
    lines: list[str], source: str, warnings: list[DbcWarning]
) -> tuple[list[str], dict[str, int], dict[tuple[str, str], int], dict[tuple[str, str], str]]:
    """Fix ids and names in the text, keeping one output line per input line."""
    out = list(lines)
    id_map: dict[int, int] = {}
    name_map: dict[int, dict[str, str]] = {}
    message_lines: dict[str, int] = {}
    signal_lines: dict[tuple[str, str], int] = {}
    renamed: dict[tuple[str, str], str] = {}
    seen_ids: dict[int, int] = {}
    current: tuple[int, str] | None = None
    for i, line in enumerate(lines):
        lineno = i + 1
        m = _BO.match(line)
        if m:
            raw = int(m.group(2))
            name = m.group(4)
            fixed = _fix_frame_id(raw, source, lineno, warnings)
            if fixed is None:
                out[i] = ""
                current = None
                continue
            if fixed != raw:
                id_map[raw] = fixed
                out[i] = f"{m.group(1)}{fixed}{m.group(3)}{name}{m.group(5)}{m.group(6)}{m.group(7)}"
            if fixed in seen_ids:
                warnings.append(
                    DbcWarning(
                        source,
                        lineno,
                        f"message {name}: frame id 0x{fixed & 0x1FFFFFFF:X} already used at line "
                        f"{seen_ids[fixed]}; this later definition wins",
                    )
                )
            seen_ids[fixed] = lineno
            message_lines[name] = lineno
            current = (raw, name)
            continue
        s = _SG.match(line)
        if s and current is not None:
            sig = s.group(2)
            if not _NAME.match(sig):
                new = _safe_name(sig)
                name_map.setdefault(current[0], {})[sig] = new
                renamed[(current[1], sig)] = new
                warnings.append(
                    DbcWarning(
                        source,
                        lineno,
                        f"message {current[1]}: signal name {sig!r} is not a DBC identifier; renamed {new!r}",
                    )
                )
                sig = new
                out[i] = f"{s.group(1)}{new}{s.group(3)}{s.group(4)}"
            signal_lines[(current[1], sig)] = lineno
            continue
        if line.strip() and not line.startswith((" ", "\t")):
            current = None
    if id_map or name_map:
        for i, line in enumerate(out):
            if line.lstrip().startswith(("BO_ ", "SG_ ")):
                continue
            out[i] = _rewrite_refs(line, id_map, name_map)
    return out, message_lines, signal_lines, renamed


def _fix_frame_id(raw: int, source: str, lineno: int, warnings: list[DbcWarning]) -> int | None:
    if raw & EXTENDED_FLAG:
        frame = raw & ~EXTENDED_FLAG
        if frame > 0x1FFFFFFF:
            if raw == 0xC0000000:  # Vector's VECTOR__INDEPENDENT_SIG_MSG pseudo-message
                return raw
            warnings.append(
                DbcWarning(source, lineno, f"frame id 0x{frame:X} has flag bits above 29 bits; cleared")
            )
            return (frame & 0x1FFFFFFF) | EXTENDED_FLAG
        return raw
    if raw <= 0x7FF:
        return raw
    if raw > 0x1FFFFFFF:
        warnings.append(
            DbcWarning(
                source,
                lineno,
                f"standard frame id 0x{raw:X} has flag bits above 29 bits; read as extended id "
                f"0x{raw & 0x1FFFFFFF:X}",
            )
        )
        return (raw & 0x1FFFFFFF) | EXTENDED_FLAG
    warnings.append(
        DbcWarning(source, lineno, f"standard frame id 0x{raw:X} is more than 11 bits; read as extended id")
    )
    return raw | EXTENDED_FLAG


def _safe_name(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return cleaned if _NAME.match(cleaned) else f"_{cleaned}"


def _rewrite_refs(line: str, id_map: dict[int, int], name_map: dict[int, dict[str, str]]) -> str:
    def ids(m: re.Match[str]) -> str:
        raw = int(m.group(2))
        return f"{m.group(1)}{id_map.get(raw, raw)}"

    def names(raw_id: int, rest: str) -> str:
        renames = name_map.get(raw_id)
        if not renames:
            return rest
        words = rest.split(" ")
        for k, w in enumerate(words):
            if w in renames:
                words[k] = renames[w]
                break
        return " ".join(words)

    m = _REFERS_ID.match(line)
    if m:
        raw = int(m.group(2))
        rest = names(raw, line[m.end() :])
        return f"{m.group(1)}{id_map.get(raw, raw)}{rest}"
    m2 = _REFERS_ID_INNER.search(line)
    if m2 and line.lstrip().startswith(("CM_", "BA_")):
        raw = int(m2.group(2))
        rest = names(raw, line[m2.end() :])
        return line[: m2.start()] + f"{m2.group(1)}{id_map.get(raw, raw)}" + rest
    return line


def _load_with_retries(lines: list[str], source: str, warnings: list[DbcWarning]) -> Database:
    work = list(lines)
    for _ in range(MAX_REPAIR_ROUNDS):
        try:
            db = cantools.database.load_string("\n".join(work), database_format="dbc", strict=False)
        except cantools.database.UnsupportedDatabaseFormatError as exc:
            m = _SYNTAX_LINE.search(str(exc))
            if not m:
                cause = exc.e_dbc if exc.e_dbc is not None else exc
                found = locate_refusal(cause, work, _try_load)
                if not found:
                    raise ConfigError(f"{source}: cannot load DBC: {_describe(cause)}") from None
                for drop in found:
                    warnings.append(DbcWarning(source, drop.line, drop.reason))
                    drop.apply(work)
                continue
            lineno = int(m.group(1))
            if not 1 <= lineno <= len(work) or not work[lineno - 1].strip():
                raise ConfigError(f"{source}:{lineno}: cannot load DBC: {exc}") from None
            warnings.append(
                DbcWarning(source, lineno, f"unparsable line dropped: {work[lineno - 1].strip()[:80]!r}")
            )
            work[lineno - 1] = ""
            continue
        assert isinstance(db, Database)  # nosec B101 # cantools returns a Database for DBC input; narrows the type for mypy
        return db
    raise ConfigError(f"{source}: cannot load DBC: more than {MAX_REPAIR_ROUNDS} bad lines")


def _try_load(lines: list[str]) -> BaseException | None:
    """What cantools says about this text: ``None`` if it loads, else the reason it refuses."""
    try:
        cantools.database.load_string("\n".join(lines), database_format="dbc", strict=False)
    except cantools.database.UnsupportedDatabaseFormatError as exc:
        return exc.e_dbc if exc.e_dbc is not None else exc
    return None


def _describe(cause: BaseException) -> str:
    text = " ".join(str(cause).split())
    return f"{type(cause).__name__}: {text}" if isinstance(cause, KeyError) else text


def _check(loaded: LoadedDbc, lines: list[str]) -> None:
    """Warnings for what cantools accepted in lenient mode but a reader should know."""
    src = loaded.source
    for msg in loaded.db.messages:
        for sig in msg.signals:
            end = _signal_end_bit(sig)
            if end is not None and end > msg.length * 8:
                loaded.warnings.append(
                    DbcWarning(
                        src,
                        loaded.signal_line(msg.name, sig.name),
                        f"message {msg.name}: signal {sig.name} runs past the frame's {msg.length} bytes",
                    )
                )
        for a, b in _overlaps(msg):
            loaded.warnings.append(
                DbcWarning(
                    src,
                    loaded.signal_line(msg.name, b),
                    f"message {msg.name}: signals {a} and {b} overlap",
                )
            )
    tables = {m.group(1): i + 1 for i, line in enumerate(lines) if (m := _VAL_TABLE.match(line))}
    for name, lineno in tables.items():
        mentions = sum(len(re.findall(rf"\b{re.escape(name)}\b", line)) for line in lines)
        if mentions <= 1:
            loaded.warnings.append(DbcWarning(src, lineno, f"value table {name} is never used"))


def _signal_end_bit(sig: cantools.database.can.Signal) -> int | None:
    if sig.byte_order == "little_endian":
        return int(sig.start + sig.length)
    msb = (sig.start // 8) * 8 + (7 - sig.start % 8)
    return int(msb + sig.length)


def signal_bits(sig: cantools.database.can.Signal) -> set[int]:
    """Bit positions (0 = first bit on the wire, MSB-first per byte) a signal occupies."""
    if sig.byte_order == "little_endian":
        return {(b // 8) * 8 + (7 - b % 8) for b in range(sig.start, sig.start + sig.length)}
    msb = (sig.start // 8) * 8 + (7 - sig.start % 8)
    return set(range(msb, msb + sig.length))


def _overlaps(msg: Message) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    sigs = list(msg.signals)
    bits = [signal_bits(s) for s in sigs]
    for i in range(len(sigs)):
        for j in range(i + 1, len(sigs)):
            a, b = sigs[i], sigs[j]
            if (
                a.multiplexer_ids
                and b.multiplexer_ids
                and not set(a.multiplexer_ids) & set(b.multiplexer_ids)
            ):
                continue
            if bits[i] & bits[j]:
                found.append((a.name, b.name))
    return found
