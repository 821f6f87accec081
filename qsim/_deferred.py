"""Deferred measurement: a dynamic program as a unitary program on more wires.

By the deferred-measurement principle, measuring a wire and later using the bit
as a classical control gives the same outcome statistics as controlling on the
wire itself and measuring at the end. `plan` rewrites a dynamic program
(`MeasureOp`, `ResetOp`, `CondOp` among unitary records) into a program of gates
only, on the ``n`` system wires followed by fresh wires in ``|0>``:

- ``MeasureOp(w, c)``: if nothing acts non-diagonally on ``w`` afterwards (later gates
  only use it as a control or act diagonally on it), the wire itself holds bit ``c``
  (no gate, no wire); otherwise ``CNOT(w, a)`` copies it onto a fresh wire ``a``,
  which then holds the bit;
- ``ResetOp(w)``: the logical wire ``w`` moves onto a fresh ``|0>`` wire and its old
  wire is never touched again (traced out); a wire still in its initial ``|0>`` (or
  reset and untouched since) needs nothing;
- ``CondOp(bits, value, body)``: the body's gates controlled on the wires that hold
  the bits (``X`` before and after on the bits that must be 0); a bit never measured
  is 0, so a condition that needs a 1 there never holds and is dropped.

The joint distribution of the classical bits and the final wires is then the
marginal of the final state on the wires that hold them, and the outcome-averaged
state of the system is that state with the ancillas traced out and the wires that
hold a bit without a copy dephased (`Plan.dephased`: their X/Y expectations are 0).
The plan is static (it depends on the records only) and cached; `params` maps the
circuit's parameters onto it.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from ._gates import GATES, GateDef
from ._ir import CondOp, GateOp, MeasureOp, RepeatOp, ResetOp

_X = GATES["x"]
_CNOT = GATES["cnot"]
_DIAGONAL_MAX = 4     # a controlled diagonal on more wires is applied as a dense controlled block


class Plan(NamedTuple):
    """A deferred program (static) and where its records take their parameters from."""

    program: tuple           # gate and repeat records on ``n_wires`` wires
    sources: tuple           # per record: None (no parameters), (i,) params[i], (i, j) params[i][j]
    n_wires: int             # system wires first, then the fresh wires in order of use
    system: tuple            # the wire that holds each logical wire at the end
    clbit_wires: tuple       # the wire that holds each classical bit at the end (-1: never written, 0)
    dephased: frozenset      # logical wires whose final wire holds a measured bit without a copy


class _ControlledDiagonal:
    """``params -> diag(1, ..., 1, d(params))``: a diagonal gate under ``n_controls`` controls."""

    def __init__(self, fn, n_controls, size):
        self.fn, self.n_controls, self.size = fn, n_controls, size

    def __call__(self, *params):
        xp = jnp if params else np
        d = xp.asarray(self.fn(*params))
        ones = xp.ones((((1 << self.n_controls) - 1) * self.size,), d.dtype)
        return xp.concatenate([ones, d])

    def __eq__(self, other):
        return isinstance(other, _ControlledDiagonal) and (self.fn, self.n_controls, self.size) == \
            (other.fn, other.n_controls, other.size)

    def __hash__(self):
        return hash((self.fn, self.n_controls, self.size))


class _AsDense:
    """``params -> diag(d(params))``: a diagonal gate's matrix, for a dense controlled block."""

    def __init__(self, fn):
        self.fn = fn

    def __call__(self, *params):
        xp = jnp if params else np
        return xp.diag(xp.asarray(self.fn(*params)))

    def __eq__(self, other):
        return isinstance(other, _AsDense) and self.fn == other.fn

    def __hash__(self):
        return hash(("dense", self.fn))


def controlled_gate(gate: GateDef, k: int) -> GateDef:
    """``gate`` under ``k`` more leading controls (all 1).

    A parameter's shift rule becomes the four-term rule: a controlled rotation's generator
    has eigenvalue gaps {1/2, 1}, and the four-term rule is exact for both (a generator with
    gap 1 only, as a controlled phase, is a special case).
    """
    shift = "four" if gate.shift else None
    name = f"c{k}:{gate.name}"
    if gate.structure == "diagonal":
        m = gate.n_wires
        if k + m <= _DIAGONAL_MAX:
            return GateDef(name, k + m, gate.n_params, "diagonal", 0,
                           _ControlledDiagonal(gate.matrix, k, 1 << m), None, shift)
        return GateDef(name, k + m, gate.n_params, "dense", k, _AsDense(gate.matrix), None, shift)
    return GateDef(name, k + gate.n_wires, gate.n_params, gate.structure, k + gate.n_controls,
                   gate.matrix, gate.perm, shift)


def _acted(op):
    """Wires an op acts on non-diagonally (a later measurement of them needs a copy first)."""
    if isinstance(op, GateOp):
        return set() if op.gate.structure == "diagonal" else set(op.targets)
    if isinstance(op, RepeatOp):
        return set().union(*(_acted(b) for b in op.body))
    if isinstance(op, CondOp):           # conservative: any wire of the body
        return set(op.wires)
    return set()


def _remap(op, where):
    """``op`` on the wires ``where`` maps its logical wires to."""
    if isinstance(op, GateOp):
        return GateOp(op.gate, tuple(where[w] for w in op.wires))
    return RepeatOp(tuple(_remap(b, where) for b in op.body), op.params_fn, op.n_layers)


def _wires_of(op):
    if isinstance(op, (MeasureOp, ResetOp)):
        return (op.wire,)
    if isinstance(op, RepeatOp):
        return tuple(sorted({w for b in op.body for w in b.wires}))
    return tuple(op.wires)


def _moves(program, n, clean_start):
    """Forward pass: the wires each record touches once resets have moved logical wires onto
    fresh ones (numbered from ``n`` on), and the number of wires used."""
    phys, clean, out, n_wires = list(range(n)), [clean_start] * n, [], n
    for op in program:
        ws = _wires_of(op)
        if isinstance(op, ResetOp):
            if not clean[op.wire]:
                phys[op.wire], n_wires = n_wires, n_wires + 1
            clean[op.wire] = True
        else:
            for w in ws:
                clean[w] = False
        out.append({w: phys[w] for w in ws})
    return out, tuple(phys), n_wires


def _copies(program, where):
    """Backward pass: the measurements whose wire is acted on non-diagonally afterwards."""
    copy, acted_later = set(), set()
    for i in range(len(program) - 1, -1, -1):
        op = program[i]
        if isinstance(op, MeasureOp):
            if where[i][op.wire] in acted_later:
                copy.add(i)
        else:
            acted_later |= {where[i][w] for w in _acted(op)}
    return copy


class _Builder:
    """The emitting pass of `plan` (see the module docstring)."""

    def __init__(self, n_wires):
        self.n_wires = n_wires
        self.holder = {}                      # classical bit -> wire holding it
        self.no_copy = set()                  # wires holding a bit without a copy
        self.program, self.sources = [], []

    def emit(self, op, source=None):
        self.program.append(op)
        self.sources.append(source)

    def measure(self, op, p, copy):
        if copy:
            a, self.n_wires = self.n_wires, self.n_wires + 1
            self.emit(GateOp(_CNOT, (p, a)))
            self.holder[op.clbit] = a
        else:
            self.holder[op.clbit] = p
            self.no_copy.add(p)

    def cond(self, op, i, where):
        wanted = {}
        for j, c in enumerate(op.clbits):
            bit = (op.value >> j) & 1
            w = self.holder.get(c)
            if w is None:
                if bit:
                    return                    # a never-written bit is 0: the condition never holds
                continue
            if wanted.setdefault(w, bit) != bit:
                return                        # one wire holds two bits that must differ
        controls = tuple(wanted)
        zeros = [w for w in controls if not wanted[w]]
        for w in zeros:
            self.emit(GateOp(_X, (w,)))
        for j, b in enumerate(op.body):
            gate = controlled_gate(b.gate, len(controls)) if controls else b.gate
            self.emit(GateOp(gate, controls + tuple(where[w] for w in b.wires)), (i, j))
        for w in zeros:
            self.emit(GateOp(_X, (w,)))


@functools.lru_cache(maxsize=256)
def plan(program, n_qubits, n_clbits, clean_start=True) -> Plan:
    """The deferred `Plan` of a dynamic ``program`` on ``n_qubits`` wires (static, cached).

    ``clean_start``: the circuit starts in ``|0...0>`` (a reset before any gate on a wire
    is then a no-op).
    """
    where, system, n_wires = _moves(program, n_qubits, clean_start)
    copy = _copies(program, where)
    b = _Builder(n_wires)
    for i, op in enumerate(program):
        if isinstance(op, MeasureOp):
            b.measure(op, where[i][op.wire], i in copy)
        elif isinstance(op, CondOp):
            b.cond(op, i, where[i])
        elif not isinstance(op, ResetOp):
            b.emit(_remap(op, where[i]), (i,))
    clbit_wires = tuple(b.holder.get(c, -1) for c in range(n_clbits))
    dephased = frozenset(w for w in range(n_qubits) if system[w] in b.no_copy)
    return Plan(tuple(b.program), tuple(b.sources), b.n_wires, system, clbit_wires, dephased)


def params(p: Plan, circuit_params):
    """The deferred program's parameters, from the circuit's."""
    out = []
    for s in p.sources:
        if s is None:
            out.append(())
        elif len(s) == 1:
            out.append(circuit_params[s[0]])
        else:
            out.append(circuit_params[s[0]][s[1]])
    return tuple(out)


def initial_state(p: Plan, init, n_qubits, dtype):
    """The deferred program's initial state: ``init`` (or ``|0...0>``) on the system, ``|0>`` on the rest."""
    if init is None:
        return None
    extra = p.n_wires - n_qubits
    if not extra:
        return init
    e0 = jnp.zeros((1 << extra,), dtype).at[0].set(1)
    return jnp.kron(init.astype(dtype), e0)
