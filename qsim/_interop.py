"""Circuits from other libraries: `from_qiskit` and `from_pennylane`.

Both map each operation to qsim's gate table by name where the conventions
agree (Qiskit's standard gates are named as in ``qelib1.inc``; PennyLane's
names are translated by `_PENNYLANE`), so the result runs on qsim's native
kernels; anything else is applied as its matrix (``controlled`` when it is a
controlled gate, else ``unitary``). The libraries are imported only inside
these functions.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from ._circuit import Circuit
from .qasm.qelib1 import NAMED

_PENNYLANE = {
    "Identity": "id", "Hadamard": "h", "PauliX": "x", "PauliY": "y", "PauliZ": "z", "S": "s", "T": "t",
    "SX": "sx", "RX": "rx", "RY": "ry", "RZ": "rz", "PhaseShift": "p", "U1": "u1", "U2": "u2", "U3": "u3",
    "CNOT": "cx", "CY": "cy", "CZ": "cz", "CH": "ch", "SWAP": "swap", "ISWAP": "iswap", "CRX": "crx",
    "CRY": "cry", "CRZ": "crz", "ControlledPhaseShift": "cp", "IsingXX": "rxx", "IsingYY": "ryy",
    "IsingZZ": "rzz", "Toffoli": "ccx", "CSWAP": "cswap",
}
_SKIPPED_QISKIT = ("barrier", "delay")


def from_qiskit(quantum_circuit, *, dtype=None) -> Circuit:
    """A `Circuit` with the same state as a Qiskit ``QuantumCircuit``.

    Qiskit's qubit ``i`` is wire ``i`` (as `from_qasm` does; Qiskit prints
    basis states with qubit 0 last, qsim puts wire 0 first). Standard gates
    map to qsim's gates, others (``unitary``, ``mcx``, custom gates) are applied
    as their matrices; the circuit's global phase is kept; ``barrier`` and
    ``delay`` are skipped; ``measure`` (anywhere; Qiskit's classical bit ``j`` is
    classical bit ``j``), ``reset`` and ``if_test`` on a bit or a register (gates in its
    body, no else) become `Circuit.measure`, `Circuit.reset` and `Circuit.cond`.

    Args:
      quantum_circuit: a ``qiskit.QuantumCircuit`` with bound parameters.
      dtype: the circuit's dtype (None: complex64).

    Returns:
      A `Circuit` on ``quantum_circuit.num_qubits`` wires.

    Raises:
      TypeError: not a QuantumCircuit.
      ValueError: unbound parameters, loops, an ``if_test`` with an else branch or an
        expression condition, or an instruction without a unitary matrix.

    Example:
      >>> qc = qiskit.QuantumCircuit(2); qc.h(0); qc.cx(0, 1)
      >>> from_qiskit(qc).probs()   # [0.5, 0, 0, 0.5]
    """
    from qiskit import QuantumCircuit

    qc = quantum_circuit
    if not isinstance(qc, QuantumCircuit):
        raise TypeError(f"from_qiskit: expected a qiskit.QuantumCircuit, got {type(qc).__name__}")
    if qc.parameters:
        raise ValueError(f"from_qiskit: the circuit has unbound parameters {sorted(p.name for p in qc.parameters)}; "
                         "bind them first with qc.assign_parameters(...)")
    circuit = Circuit(qc.num_qubits, dtype=dtype)
    phase = math.remainder(float(qc.global_phase), 2 * math.pi)
    if phase:
        circuit.unitary(np.exp(1j * phase) * np.eye(2), (0,))
    for i, inst in enumerate(qc.data):
        wires = tuple(qc.find_bit(q).index for q in inst.qubits)
        try:
            _qiskit_op(circuit, qc, inst, wires)
        except ValueError as e:
            raise ValueError(f"from_qiskit: instruction {i} '{inst.operation.name}' on qubits {wires}: {e}") from None
    return circuit


def _qiskit_if(circuit, qc, inst, wires):
    """``if_test((bit or register, value))`` with gates only in its body: `Circuit.cond`."""
    from qiskit.circuit import Clbit

    op = inst.operation
    cond = op.condition
    if not isinstance(cond, tuple):
        raise ValueError("only conditions (clbit, value) or (register, value) are supported, not expressions")
    if len(op.blocks) > 1 and op.blocks[1].data:
        raise ValueError("an else branch is not supported")
    target, value = cond
    bits = [qc.find_bit(target).index] if isinstance(target, Clbit) else [qc.find_bit(b).index for b in target]
    if int(value) >= 1 << len(bits):
        return                                  # the register never holds that value
    body = op.blocks[0]
    where = {q: w for q, w in zip(body.qubits, wires)}

    def add(c):
        for binst in body.data:
            _qiskit_op(c, body, binst, tuple(where[q] for q in binst.qubits))
    circuit.cond(bits, int(value), add)


def _qiskit_op(circuit, qc, inst, wires):
    from qiskit.circuit import ControlledGate, Gate
    from qiskit.quantum_info import Operator

    op = inst.operation
    if op.name in _SKIPPED_QISKIT:
        return
    if op.name == "measure":
        circuit.measure(wires[0], qc.find_bit(inst.clbits[0]).index)
        return
    if op.name == "reset":
        circuit.reset(wires[0])
        return
    if op.name == "if_else":
        _qiskit_if(circuit, qc, inst, wires)
        return
    if not isinstance(op, Gate) and op.name in ("while_loop", "for_loop", "switch_case"):
        raise ValueError("loops and switch are not supported (if_test on a bit or a register is)")
    controlled = isinstance(op, ControlledGate)
    if controlled and op.ctrl_state != (1 << op.num_ctrl_qubits) - 1:
        controlled = False      # open controls: use the whole matrix
    gate = NAMED.get(op.name)
    standard = op.base_class.__module__.startswith("qiskit.circuit.library.standard_gates")
    if gate is not None and standard and (controlled or not isinstance(op, ControlledGate)) \
            and gate.n_params == len(op.params) and gate.n_qubits == len(wires):
        gate.apply(circuit, wires, tuple(float(p) for p in op.params))
    elif controlled:
        n = op.num_ctrl_qubits
        circuit.controlled(Operator(op.base_gate).data, wires[:n], wires[n:][::-1])
    else:
        circuit.unitary(Operator(op).data, wires[::-1])     # Qiskit's qubit 0 is the least significant


def from_pennylane(tape, *, wires=None, dtype=None) -> Circuit:
    """A `Circuit` with the same state as a PennyLane tape / ``QuantumScript`` (its measurements ignored).

    Operations with a qsim gate of the same convention (``RX``, ``CNOT``,
    ``IsingZZ``, ``U3``, ...) map to it; others are applied as their matrix
    (``controlled`` for controlled operations) or, without one, decomposed.
    Parameters may be traced: a tape built inside ``jax.jit`` converts too.

    Args:
      tape: a ``pennylane.tape.QuantumScript`` (a ``QuantumTape`` is one).
      wires: the PennyLane wire labels in qsim wire order. Default: ``0..max``
        when every label is a non-negative int (label ``i`` is wire ``i``), else
        ``tape.wires`` in order.
      dtype: the circuit's dtype (None: complex64).

    Returns:
      A `Circuit` on ``len(wires)`` wires.

    Raises:
      TypeError: not a QuantumScript.
      ValueError: a mid-circuit measurement, an operation on a wire not in
        ``wires``, or one with neither a matrix nor a decomposition.

    Example:
      >>> tape = pennylane.tape.QuantumScript([pennylane.Hadamard(0), pennylane.CNOT([0, 1])])
      >>> from_pennylane(tape).probs()   # [0.5, 0, 0, 0.5]
    """
    import pennylane

    if not isinstance(tape, pennylane.tape.QuantumScript):
        raise TypeError(f"from_pennylane: expected a pennylane QuantumScript / tape, got {type(tape).__name__}")
    labels = list(tape.wires)
    if wires is None:
        ints = all(isinstance(w, numbers.Integral) and not isinstance(w, bool) and w >= 0 for w in labels)
        wires = list(range(max(labels) + 1)) if ints and labels else labels
    index = {w: i for i, w in enumerate(wires)}
    missing = [w for w in labels if w not in index]
    if missing or not index:
        raise ValueError(f"from_pennylane: the tape's wires {labels} must all be in wires={list(wires)}")
    circuit = Circuit(len(index), dtype=dtype)
    for op in tape.operations:
        _pennylane_op(circuit, op, index, pennylane)
    return circuit


def _pennylane_op(circuit, op, index, pennylane):
    wires = tuple(index[w] for w in op.wires)
    name = _PENNYLANE.get(op.name)
    if name is not None:
        NAMED[name].apply(circuit, wires, tuple(op.parameters))
    elif isinstance(op, pennylane.measurements.MidMeasureMP):
        raise ValueError(f"from_pennylane: mid-circuit measurement on wire {op.wires[0]} is not supported")
    elif not wires and op.has_matrix:       # GlobalPhase on no wires: the phase on wire 0
        circuit.unitary(op.matrix()[0, 0] * np.eye(2), (0,))
    elif isinstance(op, pennylane.ops.Controlled) and all(op.control_values) and op.base.has_matrix:
        n = len(op.control_wires)
        circuit.controlled(op.base.matrix(), wires[:n], wires[n:])
    elif op.has_matrix:
        circuit.unitary(op.matrix(), wires)
    elif op.has_decomposition:
        for sub in op.decomposition():
            _pennylane_op(circuit, sub, index, pennylane)
    else:
        raise ValueError(f"from_pennylane: operation {op.name} on wires {list(op.wires)} has neither a matrix "
                         "nor a decomposition")
