"""`from_qasm`: a parsed program replayed on a `Circuit`.

Gate applications go through `qelib1.TABLE`. Measure, reset and conditioned
statements arrive as `Statement` records and are handed to `_STATEMENTS`, one
handler per kind: today a ``measure`` is recorded as a terminal measurement
(a later gate on the measured qubit is a clear error naming both lines) and
``reset`` / ``if`` are clear errors; supporting them is a change to these
handlers only.
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
    ignored; terminal ``measure`` statements are recorded in
    ``circuit.measurements`` as ``{wire: (creg name, index)}``.

    Args:
      text: the program text.
      dtype: the circuit's dtype (``None``: complex64).

    Returns:
      A `Circuit` on as many wires as the program declares qubits.

    Raises:
      QasmError: a syntax error, an undeclared name, an index out of range, an
        unknown gate, a wrong number of parameters or qubits, a repeated qubit,
        a redeclaration, or an unsupported feature (mid-circuit measurement,
        ``reset``, ``if``, applying an opaque gate); the message starts with ``line N:``.
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
    """Applies a program's operations, in order, to a circuit."""

    def __init__(self, program: QasmProgram, circuit: Circuit):
        self.program, self.circuit = program, circuit
        self.measured = {}           # wire -> line of its (terminal) measurement

    def run(self):
        circuit, measured = self.circuit, self.measured
        for i, op in enumerate(self.program.ops):
            if type(op) is Statement:
                _STATEMENTS[op.kind if op.condition is None else "if"](self, op)
                continue
            name, wires, params = op
            if measured and not measured.keys().isdisjoint(wires):
                self._mid_circuit(i, wires)
            try:
                TABLE[name].apply(circuit, wires, params)
            except ValueError as e:
                raise QasmError(f"line {self.program.line(i)}: {e}") from None

    def _mid_circuit(self, index, wires):
        wire = next(w for w in wires if w in self.measured)
        raise QasmError(f"line {self.program.line(index)}: mid-circuit measurement (a gate on qubit "
                        f"{self.program.qubit_name(wire)} after it was measured on line {self.measured[wire]}) "
                        "is not supported; measure only at the end")

    def measure(self, statement):
        wire, clbit = statement.operands
        if wire in self.measured:
            raise QasmError(f"line {statement.line}: qubit {self.program.qubit_name(wire)} is measured a second "
                            f"time (first on line {self.measured[wire]}); only one terminal measurement per "
                            "qubit is supported")
        self.measured[wire] = statement.line
        self.circuit.measure(wire, clbit)

    def unsupported(self, statement):
        feature = "reset" if statement.condition is None else "classical control ('if' statement)"
        raise QasmError(f"line {statement.line}: {feature} is not supported (qsim runs unitary circuits with "
                        "terminal measurements only)")


# One handler per statement kind; "if" takes every conditioned statement.
_STATEMENTS = {"measure": _Replay.measure, "reset": _Replay.unsupported, "if": _Replay.unsupported}
