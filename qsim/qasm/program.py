"""What the parser produces: a flat program of gate applications and statement records.

A parsed program (`QasmProgram`) is a list of operations in program order:

- a gate application is a plain tuple ``(name, wires, params)`` on a
  `qelib1.TABLE` name (user ``gate`` definitions expanded, register broadcasts
  unrolled, parameters evaluated to floats): the fast, common case;
- every other operation is a `Statement`: ``measure``, ``reset``, or a gate
  under ``if (creg == value)``, each with its operands and condition, handed
  to the Circuit as is by `load` (which decides what is supported).

User ``gate`` definitions (`UserGate`) keep their pre-parsed body; `expand`
substitutes a call's parameters and qubits into it (flattening nested calls
once per gate), so no text is ever parsed twice.
"""

from __future__ import annotations

import bisect
import math
from typing import NamedTuple

from .expressions import compose, evaluator, math_error
from .lexer import line_of


class Statement(NamedTuple):
    """A measure, reset or conditioned gate, as written (one per broadcast element).

    ``kind`` is ``"measure"`` (operands ``(wire, (creg, index))``), ``"reset"``
    (operands ``(wire,)``) or ``"gate"`` (operands: the gate's applications
    ``((name, wires, params), ...)`` after expansion); ``condition`` is
    ``(creg, value)`` for ``if (creg == value)``, else None.
    """

    kind: str
    operands: tuple
    condition: tuple | None
    line: int


class QasmProgram(NamedTuple):
    """A parsed program, ready to replay on a Circuit (see the module docstring)."""

    n_qubits: int
    qregs: dict              # name -> (first wire, size), in declaration order
    cregs: dict              # name -> size, in declaration order
    ops: list                # (name, wires, params) tuples and Statement records
    text: str                # the program text (comments blanked), for line numbers
    starts: list             # index in ops of the first op of each top-level gate statement ...
    positions: list          # ... and where that statement starts in text

    def line(self, index: int) -> int:
        """The line of the statement that produced ``ops[index]``."""
        op = self.ops[index]
        if isinstance(op, Statement):
            return op.line
        return line_of(self.text, self.positions[bisect.bisect_right(self.starts, index) - 1])

    def qubit_name(self, wire: int) -> str:
        """``"q[3]"``: the register element of ``wire``."""
        return qubit_name(self.qregs, wire)

    @property
    def measurements(self) -> list:
        """``(wire, (creg, index))`` of every unconditioned measure statement, in order."""
        return [s.operands for s in self.ops
                if isinstance(s, Statement) and s.kind == "measure" and s.condition is None]


def qubit_name(qregs: dict, wire: int) -> str:
    """``"q[3]"``: the element of ``qregs`` (name -> (first wire, size)) that is ``wire``."""
    for name, (first, size) in qregs.items():
        if first <= wire < first + size:
            return f"{name}[{wire - first}]"
    raise ValueError(f"wire {wire} is not in any register of this program")


class UserGate(NamedTuple):
    """A ``gate`` (or ``opaque``) definition.

    ``body`` entries are ``(callee, params, qubits)``: the callee a `qelib1.Builtin`
    or an earlier `UserGate`, ``params`` an `expressions.evaluator` of this gate's
    parameters, ``qubits`` indices into this gate's qubit arguments. None: opaque.
    """

    name: str
    n_params: int
    n_qubits: int
    body: tuple | None


class Expander:
    """Expands user gates into builtin applications, caching each gate's flat body and each call."""

    def __init__(self):
        self._flat = {}      # gate name -> ((builtin name, qubit indices, evaluator), ...)
        self._calls = {}     # (gate name, params) -> ((builtin name, qubit indices, params), ...)

    def expand(self, gate: UserGate, params: tuple, wires: tuple) -> list:
        """``gate(params) wires`` as builtin applications ``(name, wires, params)``.

        Raises:
          ExpansionError: a parameter expression failed or is not finite, or the
            gate (or one it calls) is opaque; the caller adds the line of the application.
        """
        key = (gate.name, params)
        flat = self._calls.get(key)
        if flat is None:
            flat = self._calls[key] = self._evaluate(gate, params)
        return [(name, tuple([wires[i] for i in idx]), values) for name, idx, values in flat]

    def _evaluate(self, gate, params):
        try:
            flat = tuple((name, idx, values if type(values) is tuple else values(params))
                         for name, idx, values in self.flatten(gate))
        except (ZeroDivisionError, ValueError, OverflowError) as e:
            raise ExpansionError(f"{math_error(e)} in a parameter expression of gate '{gate.name}' "
                                 f"(parameters {', '.join(f'{p:g}' for p in params) or 'none'})") from None
        for name, _, values in flat:
            for v in values:
                if not math.isfinite(v):
                    raise ExpansionError(f"a parameter of '{name}' in gate '{gate.name}' evaluates to {v}, "
                                         "which is not finite")
        return flat

    def flatten(self, gate: UserGate) -> tuple:
        """``gate``'s body with every user-gate call substituted, recursively (computed once per gate)."""
        flat = self._flat.get(gate.name)
        if flat is not None:
            return flat
        if gate.body is None:
            raise ExpansionError(f"gate '{gate.name}' is declared opaque (no definition), so it cannot be "
                                 "simulated")
        out = []
        for callee, values, qubits in gate.body:
            if type(callee) is not UserGate:
                out.append((callee.name, qubits, values))
                continue
            for name, idx, inner in self.flatten(callee):
                out.append((name, tuple(qubits[i] for i in idx), compose(inner, values)))
        flat = self._flat[gate.name] = tuple(out)
        return flat


class ExpansionError(Exception):
    """A user gate that cannot be expanded with the given parameters (the message says why)."""


def body_entry(callee, exprs: list, qubits: tuple) -> tuple:
    """One pre-parsed body statement ``(callee, evaluator, qubit indices)``."""
    return callee, evaluator(exprs), qubits
