"""A Circuit as OpenQASM 2 text (`to_qasm`) and as a diagram (`draw`).

Both read only the circuit's recorded program (``circuit.program``: static
records and their parameters), ``circuit.n_qubits`` and
``circuit.measurements``. `gates` walks the records in order as ``(GateOp,
params)`` pairs: a `FusedOp` gives its members, a `RepeatOp` its body once per
layer (when its parameters are concrete). Gate names and decompositions come
from `qsim.qasm` (`qelib1.EXPORT_NAMES`, `qelib1.label`, `decompose`).
"""

from __future__ import annotations

import math
import re
from typing import NamedTuple

import jax
import numpy as np

from ._gates import GATES
from ._ir import CondOp, FusedOp, GateOp, MeasureOp, RepeatOp, ResetOp
from ._validate import is_concrete
from .qasm import decompose, qelib1

_ID = re.compile("[a-z][A-Za-z0-9_]*", re.A)


def gates(circuit, *, where="to_qasm", concrete=True):
    """Yield ``(GateOp, params)`` for every gate of ``circuit`` in order, params as numpy arrays.

    With ``concrete=False`` a traced parameter is yielded as None (for drawings);
    otherwise it is a ``ValueError``. Classically controlled gates are yielded as
    ``(Cond, [(GateOp, params), ...])`` and measurements and resets as their records
    (`MeasureOp`, `ResetOp`, with ``()``).
    """
    records, params = circuit.program
    yield from _walk(records, params, where, concrete)


class Cond(NamedTuple):
    """A classical condition of the gates that follow it in a `gates` item."""

    clbits: tuple
    value: int


def _walk(records, params, where, concrete):
    for op, p in zip(records, params):
        if isinstance(op, GateOp):
            yield op, tuple(_value(x, op, where, concrete) for x in p)
        elif isinstance(op, FusedOp):
            yield from _walk(op.members, p, where, concrete)
        elif isinstance(op, RepeatOp):
            yield from _layers(op, p, where, concrete)
        elif isinstance(op, (MeasureOp, ResetOp)):
            yield op, ()
        elif isinstance(op, CondOp):
            yield Cond(op.clbits, op.value), list(_walk(op.body, p, where, concrete))
        else:
            raise TypeError(f"{where}: cannot read a circuit record of type {type(op).__name__}")


def _layers(op, params, where, concrete):
    stacked, consts = params
    known = all(is_concrete(x) for x in jax.tree.leaves((stacked, consts)))
    for layer in range(op.n_layers):
        if known:
            body = op.params_fn(jax.tree.map(lambda x: x[layer], stacked), *consts)
        elif concrete:
            raise ValueError(f"{where}: the parameters of a repeat() are traced; call {where} on a circuit "
                             "built from concrete values (outside jax.jit / grad / vmap)")
        else:
            body = [(None,) * record.gate.n_params for record in op.body]
        yield from _walk(op.body, body, where, concrete)


def _value(x, op, where, concrete):
    if x is None or not is_concrete(x):
        if concrete:
            raise ValueError(f"{where}: a parameter of gate '{op.gate.name}' on wires {op.wires} is traced; call "
                             f"{where} on a circuit built from concrete values (outside jax.jit / grad / vmap)")
        return None
    return np.asarray(x)


# -- OpenQASM 2 -------------------------------------------------------------------------
def to_qasm(circuit) -> str:
    """The circuit as an OpenQASM 2.0 program on ``qelib1.inc`` gates.

    Wire ``i`` is ``q[i]`` (so `qsim.from_qasm` reads it back onto the same
    wires, and Qiskit's reader puts it on its qubit ``i``). Table gates keep
    their names (``cnot`` is ``cx``, ``phase`` is ``p``; ``ryy`` and ``iswap`` get
    Qiskit's ``gate`` definitions); user unitaries are decomposed exactly: one
    qubit as ``u3``, one control and one target as ``cu``, two qubits by a
    cosine-sine decomposition into ``u3``, ``cu``, ``ry`` and ``cx``, ``X`` under up
    to four controls as ``cx``/``ccx``/``c3x``/``c4x``. Their global phase is
    kept (as ``p(2a)`` and ``rz(-2a)`` on ``q[0]``, commented), so the state
    is the same. Measurements become ``creg``s and ``measure`` statements.

    Args:
      circuit: a `Circuit` with concrete parameters.

    Returns:
      The program text (str).

    Raises:
      ValueError: a user unitary on three or more qubits (other than those
        above), a traced or non-finite parameter, or a classical bit that is
        neither an int nor a ``(creg name, index)`` pair.

    Example:
      >>> print(to_qasm(Circuit(2).h(0).cnot(0, 1)))
      OPENQASM 2.0;
      include "qelib1.inc";
      qreg q[2];
      h q[0];
      cx q[0], q[1];
    """
    dynamic = circuit.is_dynamic if hasattr(circuit, "is_dynamic") else False
    registers = _Registers(circuit) if dynamic else None
    body, phase, defined = [], 0.0, {}
    for index, (op, params) in enumerate(gates(circuit, where="to_qasm")):
        if isinstance(op, MeasureOp):
            body.append(f"measure q[{op.wire}] -> {registers.bit(op.clbit)};")
        elif isinstance(op, ResetOp):
            body.append(f"reset q[{op.wire}];")
        elif isinstance(op, Cond):      # a phase under a condition is global in each branch: dropped
            gate_lines = [line for g, p in params for line in _gate_lines(g, p, index, defined)[0]]
            body.extend(prefix + line for prefix in registers.conditions(op.clbits, op.value)
                        for line in gate_lines)
        else:
            lines, alpha = _gate_lines(op, params, index, defined)
            body.extend(lines)
            phase += alpha
    lines = ["OPENQASM 2.0;", 'include "qelib1.inc";']
    lines += [d for d in defined.values() if d is not None]
    lines.append(f"qreg q[{circuit.n_qubits}];")
    lines += (registers.declarations() if dynamic else _cregs(circuit.measurements)) + body
    phase = math.remainder(phase, 2 * math.pi)
    if abs(phase) > 1e-12:
        lines += [f"// global phase e^(i*{phase!r}) = p(2a) rz(-2a) with a = {phase!r}",
                  _statement("p", (0,), (2 * phase,)), _statement("rz", (0,), (-2 * phase,))]
    if not dynamic:
        lines += [f"measure q[{w}] -> {_clbit(c)};" for w, c in sorted(circuit.measurements.items())]
    return "\n".join(lines) + "\n"


def _gate_lines(op, params, index, defined):
    """The statements of one gate and the global phase its decomposition leaves."""
    name = op.gate.name
    if GATES.get(name) == op.gate and name in qelib1.EXPORT_NAMES:
        qasm_name = qelib1.EXPORT_NAMES[name]
        defined.setdefault(qasm_name, qelib1.DEFINITIONS.get(qasm_name))
        return [_statement(qasm_name, op.wires, params)], 0.0
    seq, alpha = _decomposed(op, params, index)
    return [_statement(n, tuple(op.wires[i] for i in local), p) for n, local, p in seq], alpha


class _Registers:
    """Classical registers of a dynamic circuit: its own (``circuit._cregs``, from QASM) or, built
    here, ``c`` (or ``c0, c1, ...``: each run of bits some condition spans is a register of its
    own), concatenated in classical bit order so that `from_qasm` reads the bits back as the same
    indices. A condition on part of a register is written as one ``if`` per value of the register
    that agrees with it (at most `_MAX_IFS`)."""

    def __init__(self, circuit):
        n = circuit.n_clbits
        given = getattr(circuit, "_cregs", None)
        if given:
            sizes = list(given.items())
        else:
            spans = sorted((min(op.clbits), max(op.clbits) + 1) for op in circuit.program[0]
                           if isinstance(op, CondOp))
            cuts, end = {0, n}, 0
            for a, b in spans:
                if a >= end:
                    cuts.add(a)
                end = max(end, b)
                cuts.add(end)
            cuts = {c for c in cuts if not any(a < c < b for a, b in spans)}
            cuts = sorted(cuts)
            names = ["c"] if len(cuts) == 2 else [f"c{i}" for i in range(len(cuts) - 1)]
            sizes = [(name, b - a) for name, a, b in zip(names, cuts, cuts[1:])]
        self.regs, start = [], 0
        for name, size in sizes:
            self.regs.append((name, start, size))
            start += size

    def declarations(self):
        return [f"creg {name}[{size}];" for name, _, size in self.regs if size]

    def bit(self, clbit):
        for name, start, size in self.regs:
            if start <= clbit < start + size:
                return f"{name}[{clbit - start}]"
        raise ValueError(f"to_qasm: classical bit {clbit} is outside the circuit's registers")

    def conditions(self, bits, value):
        """``["if(c==5) ", ...]``: the register values for which the bits hold ``value``."""
        for name, start, size in self.regs:
            if all(start <= b < start + size for b in bits):
                fixed = {b - start: (value >> j) & 1 for j, b in enumerate(bits)}
                free = [i for i in range(size) if i not in fixed]
                if len(free) > _MAX_IFS.bit_length() - 1:
                    break
                base = sum(v << i for i, v in fixed.items())
                return [f"if({name}=={base + sum(((m >> j) & 1) << i for j, i in enumerate(free))}) "
                        for m in range(1 << len(free))]
        raise ValueError(f"to_qasm: the condition on classical bits {list(bits)} has no OpenQASM 2 form: 'if' "
                         f"compares a whole register, and these bits are not in one register of at most "
                         f"{_MAX_IFS.bit_length() - 1} more bits")


_MAX_IFS = 256


def _decomposed(op, params, index):
    """A user (or table) gate's ``(gates on local wires, global phase)``; ValueError if there is none."""
    g = op.gate
    m = params[0] if len(params) == 1 and params[0].ndim else None
    result = None
    if m is not None and g.structure == "diagonal" and m.ndim == 1 and len(m) <= 4:
        result = decompose.diagonal(m.astype(complex))
    elif m is not None and g.structure == "dense" and m.ndim == 2:
        result = decompose.controlled(m.astype(complex), g.n_controls)
    if result is None:
        raise ValueError(f"to_qasm: gate #{index} '{g.name}' on wires {op.wires} has no OpenQASM 2 form: "
                         "user unitaries are exported on one or two qubits (any), X under up to four "
                         "controls, SX under three or SWAP under one; split larger ones into smaller gates")
    return result


def _statement(name, wires, params):
    for p in params:
        if not math.isfinite(p):
            raise ValueError(f"to_qasm: gate '{name}' on wires {wires} has a parameter {float(p)}, which "
                             "OpenQASM cannot write")
    args = ", ".join(f"q[{w}]" for w in wires)
    if not params:
        return f"{name} {args};"
    return f"{name}({', '.join(_number(p) for p in params)}) {args};"


def _number(x):
    """The shortest text that reads back as ``x`` in its own precision (``0.3`` for float32 0.3)."""
    x = np.asarray(x)
    return str((x if x.dtype.kind == "f" else x.astype(np.float64))[()])


def _clbit(c):
    """``"c[3]"`` for int 3, ``"m[1]"`` for ("m", 1)."""
    if isinstance(c, (int, np.integer)) and not isinstance(c, bool) and c >= 0:
        return f"c[{int(c)}]"
    if (isinstance(c, tuple) and len(c) == 2 and isinstance(c[0], str) and isinstance(c[1], (int, np.integer))
            and _ID.fullmatch(c[0]) and c[1] >= 0):
        return f"{c[0]}[{int(c[1])}]"
    raise ValueError(f"to_qasm: a classical bit must be an int >= 0 or a (creg name, index) pair, got {c!r}")


def _cregs(measurements):
    sizes = {}
    for c in measurements.values():
        name, index = _clbit(c)[:-1].split("[")
        sizes[name] = max(sizes.get(name, 0), int(index) + 1)
    return [f"creg {name}[{size}];" for name, size in sizes.items()]


# -- drawings ---------------------------------------------------------------------------
class _Item(NamedTuple):
    """One gate in a drawing: its column, the wires with a control dot, the wires with its label."""

    layer: int
    controls: tuple
    targets: tuple
    label: str


def draw(circuit, output: str = "text", *, decimals: int | None = 2, max_length: int | None = 100):
    """A diagram of the circuit, like PennyLane's ``qml.draw``: one line per wire.

    Gates are packed left into columns (a gate on several wires takes the whole
    span between them); labels are the qelib1 names in capitals with parameters
    rounded to ``decimals`` (``RX(0.30)``, ``S†``, ``U`` for a user unitary), a
    control is ``●``, the wires of a multi-wire gate are joined by ``╭ ├ ╰ │``,
    and a terminal measurement ends its wire with ``┤↗├`` and its classical bit::

        0: ──H─╭●─┤↗├ c[0]
        1: ────╰X─┤

    Args:
      circuit: a `Circuit` (traced parameters are drawn without values).
      output: ``"text"`` (a str) or ``"mpl"`` (a matplotlib Figure; needs matplotlib).
      decimals: digits after the point for parameters; None hides them.
      max_length: text lines longer than this are wrapped into blocks (None: never).

    Returns:
      ``str`` for ``"text"``, ``matplotlib.figure.Figure`` for ``"mpl"``.

    Raises:
      ValueError: an unknown ``output``, or a negative ``decimals`` / ``max_length``.
    """
    if output not in ("text", "mpl"):
        raise ValueError(f"draw: output must be 'text' or 'mpl', got {output!r}")
    for name, value in (("decimals", decimals), ("max_length", max_length)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise ValueError(f"draw: {name} must be a non-negative int or None, got {value!r}")
    items = _layout(circuit, decimals)
    if output == "mpl":
        return _figure(circuit, items)
    return _text(circuit, items, max_length)


def _layout(circuit, decimals):
    """Every gate as an `_Item`, in columns: each gate right of everything before it on its span.

    A mid-circuit measurement is ``↗c[k]`` (its classical bit), a reset ``|0⟩``, a classically
    controlled gate its label followed by the condition, as ``X[c[0]=1]``.
    """
    free = [0] * circuit.n_qubits
    written, read = {}, {}              # classical bit -> first column free after its last write / read
    items = []

    def place(wires, n_controls, label, after=0):
        span = range(min(wires), max(wires) + 1)
        layer = max(max(free[w] for w in span), after)
        for w in span:
            free[w] = layer + 1
        items.append(_Item(layer, wires[:n_controls], wires[n_controls:], label))
        return layer + 1

    for op, params in gates(circuit, where="draw", concrete=False):
        if isinstance(op, MeasureOp):
            c = op.clbit
            written[c] = place((op.wire,), 0, f"↗c[{c}]", max(written.get(c, 0), read.get(c, 0)))
        elif isinstance(op, ResetOp):
            place((op.wire,), 0, "|0⟩")
        elif isinstance(op, Cond):
            cond = f"[c[{','.join(map(str, op.clbits))}]={op.value}]"
            after = max((written.get(c, 0) for c in op.clbits), default=0)
            for g, p in params:
                n_controls, label = _label(g, p, decimals)
                end = place(g.wires, n_controls, label + cond, after)
                for c in op.clbits:
                    read[c] = max(read.get(c, 0), end)
        else:
            n_controls, label = _label(op, params, decimals)
            place(op.wires, n_controls, label)
    return items


def _terminal(circuit):
    """``{wire: classical bit}`` drawn at the wire's end (a dynamic circuit draws them in place)."""
    return {} if getattr(circuit, "is_dynamic", False) else circuit.measurements


def _label(op, params, decimals):
    g = op.gate
    if GATES.get(g.name) != g:
        return (g.n_controls if g.structure == "dense" else 0), "U"
    n_controls, label = qelib1.label(qelib1.EXPORT_NAMES.get(g.name, g.name))
    if params and decimals is not None and all(p is not None for p in params):
        label += "(" + ",".join(f"{float(p):.{decimals}f}" for p in params) + ")"
    return n_controls, label


def _glyphs(item):
    """``{wire: text}`` of one item in its column (bracketed when it spans several wires)."""
    wires = sorted(item.controls + item.targets)
    out = {}
    for w in range(wires[0], wires[-1] + 1):
        if w not in wires:
            out[w] = "│"
            continue
        text = "●" if w in item.controls else item.label
        if len(wires) > 1:
            text = ("╭" if w == wires[0] else "╰" if w == wires[-1] else "├") + text
        out[w] = text
    return out


def _text(circuit, items, max_length):
    n = circuit.n_qubits
    columns = [{} for _ in range(max((it.layer for it in items), default=-1) + 1)]
    for it in items:
        columns[it.layer].update(_glyphs(it))
    cells = []      # per column: one padded cell per wire
    for col in columns:
        width = max(len(t) for t in col.values())
        cells.append([col.get(w, "").ljust(width, "─") if w in col else "─" * width for w in range(n)])
    measured = _terminal(circuit)
    ends = [f"┤↗├ {_bit_label(measured[w])}" if w in measured else "┤" for w in range(n)]
    labels = [f"{w:>{len(str(n - 1))}}: " for w in range(n)]
    blocks = _blocks([len(c[0]) + 1 for c in cells], len(labels[0]) + 4 + max(map(len, ends)), max_length)
    out = []
    for b, (start, stop) in enumerate(blocks):
        first, last = b == 0, b == len(blocks) - 1
        lines = []
        for w in range(n):
            body = "".join(c[w] + "─" for c in cells[start:stop])
            lines.append(labels[w] + ("──" if first else "··· ") + body
                         + (ends[w] if last else " ···"))
        out.append("\n".join(lines))
    return "\n\n".join(out)


def _blocks(widths, overhead, max_length):
    """Split columns of these widths into runs whose lines fit in ``max_length`` (at least one column each)."""
    if max_length is None or overhead + sum(widths) <= max_length:
        return [(0, len(widths))]
    blocks, start, used = [], 0, overhead
    for i, w in enumerate(widths):
        if i > start and used + w > max_length:
            blocks.append((start, i))
            start, used = i, overhead
        used += w
    blocks.append((start, len(widths)))
    return blocks


def _bit_label(c):
    if isinstance(c, tuple) and len(c) == 2:
        return f"{c[0]}[{c[1]}]"
    return f"c[{c}]" if isinstance(c, (int, np.integer)) else str(c)


def _figure(circuit, items):
    """The drawing as a matplotlib Figure (matplotlib is imported only here)."""
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyBboxPatch

    n, n_layers = circuit.n_qubits, max((it.layer for it in items), default=-1) + 1
    measured = _terminal(circuit)
    width = n_layers + (1.5 if measured else 0.5)
    fig = Figure(figsize=(1.2 + 0.9 * width, 0.3 + 0.6 * n))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(-1.2, width)
    ax.set_ylim(n - 0.5, -0.5)
    ax.axis("off")
    for w in range(n):
        ax.plot([-0.6, width - 0.3], [w, w], color="black", lw=1, zorder=0)
        ax.text(-0.7, w, f"{w}", ha="right", va="center")
    for it in items:
        wires = sorted(it.controls + it.targets)
        if len(wires) > 1:
            ax.plot([it.layer, it.layer], [wires[0], wires[-1]], color="black", lw=1, zorder=1)
        for w in it.controls:
            ax.plot(it.layer, w, "o", color="black", ms=7, zorder=3)
        for w in it.targets:
            ax.add_patch(FancyBboxPatch((it.layer - 0.35, w - 0.22), 0.7, 0.44, boxstyle="round,pad=0.02",
                                        facecolor="white", edgecolor="black", zorder=2))
            ax.text(it.layer, w, it.label, ha="center", va="center", fontsize=8, zorder=4)
    for w, c in measured.items():
        x = n_layers + 0.2
        ax.add_patch(FancyBboxPatch((x - 0.3, w - 0.22), 0.6, 0.44, boxstyle="round,pad=0.02",
                                    facecolor="white", edgecolor="black", zorder=2))
        ax.text(x, w, "↗", ha="center", va="center", zorder=4)
        ax.text(x + 0.4, w, _bit_label(c), ha="left", va="center", fontsize=8)
    return fig
