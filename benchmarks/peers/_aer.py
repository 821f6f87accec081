"""Qiskit Aer's statevector simulator, complex64 (``precision="single"``) and complex128.

Qiskit's qubit ``k`` is bit ``k`` of a basis index (qsim's wire ``w`` is bit
``n - 1 - w``), so the same state array is qsim's wire ``w`` on Qiskit qubit
``n - 1 - w``; a matrix's qubit list starts with its least significant qubit. A run is one ``AerSimulator.run`` of a circuit that sets the
state, applies the ops and saves the state, so it carries a fixed overhead:
one gate is timed as (run of `gate_batch` copies - run of none) / `gate_batch`,
with Aer's gate fusion off (it would merge the copies). Threads:
``max_parallel_threads``.
"""

from __future__ import annotations

import numpy as np
from qiskit import QuantumCircuit, qasm2, transpile
from qiskit_aer import AerSimulator
from qiskit_aer.library import SetStatevector

from ..timing import now
from ..workloads import bit_reverse
from ._base import Peer, Runner

_PRECISION = {"complex64": "single", "complex128": "double"}


def add_op(qc: QuantumCircuit, op, n: int) -> None:
    """Append one workload op to a Qiskit circuit acting on qsim's state array (wire w = qubit n-1-w)."""
    q = [n - 1 - w for w in op.wires]
    if op.name == "h":
        qc.h(q[0])
    elif op.name in ("rx", "ry", "rz"):
        getattr(qc, op.name)(float(op.params[0]), q[0])
    elif op.name == "u3":
        qc.u(*(float(p) for p in op.params), q[0])
    elif op.name == "cnot":
        qc.cx(q[0], q[1])
    elif op.name == "unitary":
        qc.unitary(np.asarray(op.params[0], complex), q[::-1])
    else:
        raise ValueError(f"aer adapter: no mapping for gate {op.name!r}")


class AerRunner(Runner):
    """One ``AerSimulator.run`` per ``run()``; ``reverse``: the circuit's qubit k is qsim's wire k."""

    def __init__(self, sim, qc, n, reverse=False):
        self.sim, self.qc, self.n, self.reverse = sim, qc, n, reverse
        self.last = None

    def run(self):
        self.last = self.sim.run(self.qc, shots=1).result()

    def result(self):
        state = np.asarray(self.last.get_statevector())
        return bit_reverse(state, self.n) if self.reverse else state


class AerPeer(Peer):
    name = "aer"
    dist = "qiskit-aer"
    gate_batch = 10

    def describe(self):
        return f"qiskit-aer {self.version()} (AerSimulator statevector, max_parallel_threads={self.threads})"

    def simulator(self, dtype: str, fuse: bool | None = None) -> AerSimulator:
        """A statevector ``AerSimulator`` for ``dtype`` (``fuse=False``: gate fusion off)."""
        opts = {"fusion_enable": False} if fuse is False else {}
        return AerSimulator(method="statevector", precision=_PRECISION[dtype],
                            max_parallel_threads=self.threads, **opts)

    def prepare(self, ops, n, dtype, init, *, fuse=None):
        qc = QuantumCircuit(n)
        init = np.asarray(init)
        if not (init[0] == 1 and np.count_nonzero(init) == 1):   # Aer starts in |0...0> anyway
            qc.append(SetStatevector(init.astype(complex)), qc.qubits)
        for op in ops:
            add_op(qc, op, n)
        qc.save_statevector()
        return AerRunner(self.simulator(dtype, fuse), qc, n)

    def qasm(self, text: str, dtype: str):
        """A runner for an OpenQASM 2 program (``qasm2.loads`` with Qiskit's legacy gates such as
        ``sx``/``swap``, + transpile for Aer, measures removed).

        Returns ``(runner, prep_s)``; q[k] of the program is qsim's wire k.
        """
        t0 = now()
        qc = qasm2.loads(text, custom_instructions=qasm2.LEGACY_CUSTOM_INSTRUCTIONS)
        qc.remove_final_measurements()
        sim = self.simulator(dtype)
        qc = transpile(qc, sim, optimization_level=0)
        qc.save_statevector()
        return AerRunner(sim, qc, qc.num_qubits, reverse=True), now() - t0


ADAPTER = AerPeer
