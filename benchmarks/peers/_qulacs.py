"""Qulacs (complex128 only): gates applied with ``QuantumCircuit.update_quantum_state`` in place.

Qulacs's qubit ``k`` is bit ``k`` of a basis index (qsim's wire ``w`` is bit
``n - 1 - w``), so on the same state array qsim's wire ``w`` is Qulacs qubit
``n - 1 - w``, and a dense matrix's target list starts with its least
significant qubit. ``RotX/RotY/RotZ`` are the ``exp(-i t P/2)`` rotations
(Qulacs's ``RX/RY/RZ`` have the opposite sign). Threads: ``OMP_NUM_THREADS``.
"""

from __future__ import annotations

import numpy as np
import qulacs
from qulacs import gate as qg

from ..timing import now
from ..workloads import bit_reverse, zero_state
from ._base import Peer, Runner

# Qiskit gate name -> Qulacs gate factory (qubit indices in Qiskit's order, which is Qulacs's)
_NAMED = {
    "h": qg.H, "x": qg.X, "y": qg.Y, "z": qg.Z, "s": qg.S, "sdg": qg.Sdag, "t": qg.T, "tdg": qg.Tdag,
    "sx": qg.sqrtX, "id": qg.Identity, "rx": qg.RotX, "ry": qg.RotY, "rz": qg.RotZ, "p": qg.U1,
    "u1": qg.U1, "u2": qg.U2, "u3": qg.U3, "u": qg.U3, "cx": qg.CNOT, "cz": qg.CZ, "swap": qg.SWAP,
    "ccx": qg.TOFFOLI, "cswap": qg.FREDKIN,
}
_DENSE_MAX_QUBITS = 3   # larger composite gates are expanded into their definitions


def _gate(op, n):
    q = [n - 1 - w for w in op.wires]
    if op.name == "h":
        return qg.H(q[0])
    if op.name in ("rx", "ry", "rz"):
        return {"rx": qg.RotX, "ry": qg.RotY, "rz": qg.RotZ}[op.name](q[0], op.params[0])
    if op.name == "u3":
        return qg.U3(q[0], *op.params)
    if op.name == "cnot":
        return qg.CNOT(q[0], q[1])
    if op.name == "unitary":
        return qg.DenseMatrix(q[::-1], np.asarray(op.params[0], complex))
    raise ValueError(f"qulacs adapter: no mapping for gate {op.name!r}")


class QulacsRunner(Runner):
    """A Qulacs circuit and a state loaded from ``init``.

    ``phase`` multiplies the result (a converted circuit's global phase); ``reverse``:
    the circuit's qubit k is qsim's wire k (a converted QASM program).
    """

    def __init__(self, circuit, n, init, phase=1.0, reverse=False):
        self.n, self.circuit, self.phase, self.reverse = n, circuit, phase, reverse
        self.state = qulacs.QuantumState(n)
        self.state.load(np.asarray(init, complex))

    def run(self):
        self.circuit.update_quantum_state(self.state)

    def result(self):
        state = self.state.get_vector() * self.phase
        return bit_reverse(state, self.n) if self.reverse else state


class QulacsPeer(Peer):
    name = "qulacs"
    dist = "qulacs"
    dtypes = ("complex128",)

    def describe(self):
        return f"qulacs {self.version()} (complex128, QuantumCircuit.update_quantum_state)"

    def circuit(self, ops, n):
        """A ``qulacs.QuantumCircuit`` of ``ops``."""
        circ = qulacs.QuantumCircuit(n)
        for op in ops:
            circ.add_gate(_gate(op, n))
        return circ

    def prepare(self, ops, n, dtype, init, *, fuse=None):
        if dtype not in self.dtypes:
            raise ValueError(f"qulacs runs complex128 only, not {dtype}")
        return QulacsRunner(self.circuit(ops, n), n, init)

    def qasm(self, text: str, dtype: str):
        """A runner for an OpenQASM 2 program, converted from ``qiskit.qasm2.loads``.

        Named gates map to Qulacs gates, other gates of at most 3 qubits to dense
        matrices, larger ones to their definitions. Returns ``(runner, prep_s)``.
        """
        from qiskit import qasm2

        t0 = now()
        qc = qasm2.loads(text, custom_instructions=qasm2.LEGACY_CUSTOM_INSTRUCTIONS)
        qc.remove_final_measurements()
        circ = qulacs.QuantumCircuit(qc.num_qubits)
        phase = _convert(circ, qc, list(range(qc.num_qubits)))
        runner = QulacsRunner(circ, qc.num_qubits, zero_state(qc.num_qubits, complex),
                              phase=np.exp(1j * phase), reverse=True)
        return runner, now() - t0


def _convert(circ, qc, qubits) -> float:
    """Add ``qc``'s gates to ``circ`` on ``qubits``; return the global phase to apply."""
    from qiskit.quantum_info import Operator

    phase = float(qc.global_phase)
    for inst in qc.data:
        op, where = inst.operation, [qubits[qc.find_bit(q).index] for q in inst.qubits]
        if op.name == "barrier":
            continue
        if op.name in _NAMED:
            circ.add_gate(_NAMED[op.name](*where, *[float(p) for p in op.params]))
        elif op.num_qubits <= _DENSE_MAX_QUBITS or op.definition is None:
            circ.add_gate(qg.DenseMatrix(where, Operator(op).data))
        else:
            phase += _convert(circ, op.definition, where)
    return phase


ADAPTER = QulacsPeer
