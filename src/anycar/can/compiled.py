"""Per-frame decoders compiled to straight-line Python, one function per frame id.

``FrameDecoder.process`` walks its rules in a loop and reads each rule's layout from attributes;
that loop is most of the adapter's time. Here the same steps are written out once per frame, with
the bit positions as constants, so each rule costs a handful of operations. The generated source
contains only integers taken from the DBC model (shifts, masks, sign bits, digit counts), each
checked to be an ``int`` before it is written; everything else (scales, ranges, paths, transforms,
converters) is passed in as objects, never as text. Frames with multiplexing, sign bits or IEEE
float signals keep the generic loop. Tests run both and require identical output, frame by frame.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from anycar.can.transform import NoMappingEntry, TransformFailed

Process = Callable[[bytes, float, list[tuple[str, Any]], Any], None]


def _int(value: Any) -> str:
    if type(value) is not int:
        raise TypeError(f"not an integer: {value!r}")
    return str(value)


def compile_frame(dec: Any) -> Process | None:
    """A specialised ``process`` for this frame decoder, or ``None`` to keep the generic one."""
    entries = dec.entries
    if not entries or dec.selectors:
        return None
    if any(e.mux or e.negate is not None or e.kind == 3 for e in entries):
        return None
    ns: dict[str, Any] = {
        "DEC": dec,
        "LENGTHS": dec.lengths,
        "NoMappingEntry": NoMappingEntry,
        "TransformFailed": TransformFailed,
        "int_from_bytes": int.from_bytes,
        "K": [None],
        "LB": [None] * len(entries),
        "BV": [None] * len(entries),
        # the gate of a signal only this frame carries lives here (faster than its attributes)
        "LT": [float("-inf")] * len(entries),
        "LV": [None] * len(entries),
        "HV": [False] * len(entries),
    }
    lines: list[str] = []

    def emit(depth: int, text: str) -> None:
        lines.append("    " * depth + text)

    emit(0, "def process(data, ts, out, bad):")
    emit(1, "n = len(data)")
    emit(1, f"if n != {_int(dec.length)}:")
    emit(2, "if n not in LENGTHS:")
    emit(3, "bad.wrong_length += 1")
    emit(3, "return")
    emit(2, f"data = data[:{_int(dec.length)}]")
    if dec.keep_last:
        emit(1, "DEC.last_data = data")
    emit(1, 'le = int_from_bytes(data, "little")')
    if any(e.big for e in entries):
        emit(1, 'be = int_from_bytes(data, "big")')
    emit(1, f"key = le & {_int(dec.mask)}")
    if dec.quiet:
        emit(1, "if key == K[0]:")
        emit(2, "return")
    emit(1, "clean = True")
    emit(1, "append = out.append")
    for i, e in enumerate(entries):
        _entry(emit, ns, i, e)
    emit(1, "K[0] = key if clean else None")
    code = compile("\n".join(lines) + "\n", f"<anycar frame decoder {dec.message.name}>", "exec")
    exec(code, ns)  # the source holds only integers checked above; see the module docstring  # nosec B102 # the generated source holds only integers checked above (module docstring)
    process: Process = ns["process"]
    return process


def _gate(n: str, gate: Any) -> tuple[str, str, str]:
    """Where the gate's time, last value and has-value flag are read and written."""
    if gate.shared:
        return f"G{n}.last_time", f"G{n}.last_vss", f"G{n}.has_value"
    return f"LT[{n}]", f"LV[{n}]", f"HV[{n}]"


def _entry(emit: Callable[[int, str], None], ns: dict[str, Any], i: int, e: Any) -> None:
    n = _int(i)
    g = e.gate
    lt, _lv, _hv = _gate(n, g)
    ns[f"P{n}"] = e.path
    ns[f"S{n}"] = e.scale
    ns[f"O{n}"] = e.offset
    ns[f"T{n}"] = e.transform
    ns[f"C{n}"] = e.coerce
    ns[f"IV{n}"] = e.interval
    ns[f"G{n}"] = g
    d = 1
    if e.interval > 0:
        emit(d, f"if not 0.0 <= ts - {lt} < IV{n}:")
        d += 1
    src = "be" if e.big else "le"
    emit(d, f"bits = {src} & {_int(e.rmask)}")
    emit(d, f"if bits == LB[{n}]:")
    if g.timed:
        emit(d + 1, f"{lt} = ts")
    if g.shared:
        emit(d + 1, f"vss = BV[{n}]")
        _publish(emit, d + 1, n, e)
    elif not e.on_change:
        emit(d + 1, f"append((P{n}, BV[{n}]))")
    else:
        # the gate is this entry's own: the same bits gave the value it last sent (or one equal
        # to it), so an on-change rule has nothing to send
        emit(d + 1, "pass")
    emit(d, "else:")
    d += 1
    emit(d, f"phys = bits >> {_int(e.shift)}" if e.shift else "phys = bits")
    if e.sign:
        emit(d, f"if phys & {_int(e.sign)}:")
        emit(d + 1, f"phys -= {_int(e.full)}")
    if e.kind == 4:
        emit(d, f"phys = (phys + {_int(e.shift_in)}) / {_int(e.divisor)}")
    elif e.kind == 2:
        emit(d, f"phys = round(phys * S{n} + O{n}, {_int(e.digits)})")
    elif e.kind == 1:
        emit(d, f"phys = phys * S{n} + O{n}")
    if e.range is not None:
        ns[f"LO{n}"], ns[f"HI{n}"] = e.range
        emit(d, f"if not LO{n} <= phys <= HI{n}:")
        emit(d + 1, "bad.out_of_range += 1")
        emit(d + 1, f"LB[{n}] = None")
        emit(d + 1, "clean = False")
        emit(d, "else:")
        d += 1
    if g.timed:
        emit(d, f"{lt} = ts")
    emit(d, "try:")
    if e.transform is not None:
        emit(d + 1, f"vss = C{n}(T{n}(phys))")
    elif e.coerce is not None:
        emit(d + 1, f"vss = C{n}(phys)")
    else:
        emit(d + 1, "vss = phys")
    emit(d, "except NoMappingEntry:")
    emit(d + 1, "bad.unmapped_value += 1")
    emit(d + 1, f"LB[{n}] = None")
    emit(d + 1, "clean = False")
    emit(d, "except TransformFailed:")
    emit(d + 1, "bad.transform_failed += 1")
    emit(d + 1, f"LB[{n}] = None")
    emit(d + 1, "clean = False")
    emit(d, "else:")
    d += 1
    emit(d, f"LB[{n}] = bits")
    emit(d, f"BV[{n}] = vss")
    _publish(emit, d, n, e)


def _publish(emit: Callable[[int, str], None], d: int, n: str, e: Any) -> None:
    """The on-change check against the signal's gate, then the update."""
    _lt, lv, hv = _gate(n, e.gate)
    if e.on_change:
        emit(d, f"if not ({hv} and vss == {lv} and type(vss) is type({lv})):")
        d += 1
    if e.gate.tracks:
        emit(d, f"{lv} = vss")
        emit(d, f"{hv} = True")
    emit(d, f"append((P{n}, vss))")
