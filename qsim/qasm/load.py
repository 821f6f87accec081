"""`from_qasm`: a parsed program replayed on a `Circuit`.

Gate applications go through `qelib1.TABLE`. Measure, reset and conditioned
statements arrive as `Statement` records and are handed to `_STATEMENTS`, one
handler per kind: ``measure`` (anywhere) becomes `Circuit.measure`, ``reset``
`Circuit.reset` and ``if (creg == k) gate ...;`` `Circuit.cond` on the register's
classical bits (a conditioned ``measure`` or ``reset`` is a clear error).
"""

from __future__ import annotations

from .._circuit import Circuit
from .lexer import QasmError
from .parser import parse, paused_gc
from .program import QasmProgram, Statement
from .qelib1 import TABLE


def from_qasm(text: str, *, dtype=None) -> Circuit:
    """Build a `Circuit` from an OpenQASM 2.0 program.

    Reads OpenQASM 2.0 as Qiskit's ``qiskit.qasm2.loads`` does: ``qelib1.inc``
    (built in, with Qiskit's matrices), ``U`` and ``CX``, user ``gate``
    definitions (which may call earlier ones), ``opaque`` declarations, several
    ``qreg``s (concatenated in declaration order: wire 0 is the first qubit of
    the first register), register broadcasting, parameter expressions (``pi``,
    ``+ - * / ^``, ``sin cos tan exp ln sqrt``), ``//`` comments. ``barrier`` is
    ignored; ``measure`` (anywhere), ``reset`` and ``if (creg == k) gate ...;`` become
    `Circuit.measure`, `Circuit.reset` and `Circuit.cond` (classical registers
    concatenated in declaration order: classical bit 0 is the first bit of the first
    ``creg``); ``circuit.measurements`` is ``{wire: (creg name, index)}``.

    Args:
      text: the program text.
      dtype: the circuit's dtype (``None``: complex64).

    Returns:
      A `Circuit` on as many wires as the program declares qubits.

    Raises:
      QasmError: a syntax error, an undeclared name, an index out of range, an
        unknown gate, a wrong number of parameters or qubits, a repeated qubit,
        a redeclaration, or an unsupported feature (a conditioned ``measure`` or
        ``reset``, applying an opaque gate); the message starts with ``line N:``.
      StateTooLargeError: the program declares more qubits than fit in memory;
        the message starts with the line of the ``qreg`` that crossed the limit.

    Example:
      >>> c = from_qasm('OPENQASM 2.0; include "qelib1.inc"; qreg q[2]; h q[0]; cx q[0], q[1];')
      >>> c.probs()   # [0.5, 0, 0, 0.5]
    """
    program = parse(text, dtype=dtype)      # checks memory at each qreg, naming its line
    circuit = Circuit(program.n_qubits, dtype=dtype)
    with paused_gc():
        _Replay(program, circuit).run()
    return circuit


class _Replay:
    """Applies a program's operations, in order, to a circuit.

    Classical registers are concatenated in declaration order: bit ``i`` of creg ``r`` is the
    circuit's classical bit ``offset(r) + i`` (the first bit of the first creg is bit 0), and
    ``if (r == k)`` compares ``k`` with the register's bits (its bit 0 least significant).
    ``circuit.measurements`` keeps ``{wire: (creg name, index)}`` of the last measurement of
    each wire, and ``circuit._cregs`` the registers (name -> size), for export.
    """

    def __init__(self, program: QasmProgram, circuit: Circuit):
        self.program, self.circuit = program, circuit
        self.offset, total = {}, 0
        for name, size in program.cregs.items():
            self.offset[name], total = total, total + size
        circuit._cregs = dict(program.cregs)      # read by `_export` to name the registers

    def run(self):
        circuit = self.circuit
        for i, op in enumerate(self.program.ops):
            if type(op) is Statement:
                _STATEMENTS[op.kind if op.condition is None else "if"](self, op)
                continue
            name, wires, params = op
            try:
                TABLE[name].apply(circuit, wires, params)
            except ValueError as e:
                raise QasmError(f"line {self.program.line(i)}: {e}") from None

    def measure(self, statement):
        wire, (creg, index) = statement.operands
        self.circuit.measure(wire, self.offset[creg] + index)
        self.circuit.measurements[wire] = (creg, index)

    def reset(self, statement):
        self.circuit.reset(statement.operands[0])

    def conditioned(self, statement):
        if statement.kind != "gate":
            raise QasmError(f"line {statement.line}: a conditioned {statement.kind} ('if (...) "
                            f"{statement.kind}') is not supported; only gates can be classically controlled")
        creg, value = statement.condition
        size = self.program.cregs[creg]
        if value >= 1 << size:
            return                     # the register never holds that value (as Qiskit reads it)
        bits = list(range(self.offset[creg], self.offset[creg] + size))

        def body(c):
            for name, wires, params in statement.operands:
                TABLE[name].apply(c, wires, params)
        try:
            self.circuit.cond(bits, value, body)
        except ValueError as e:
            raise QasmError(f"line {statement.line}: {e}") from None


# One handler per statement kind; "if" takes every conditioned statement.
_STATEMENTS = {"measure": _Replay.measure, "reset": _Replay.reset, "if": _Replay.conditioned}
