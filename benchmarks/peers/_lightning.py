"""PennyLane lightning.qubit: its C++ state-vector kernels, gate by gate, complex64 and complex128.

Circuits run through the kernels' Python bindings (``StateVectorC64/C128``),
the calls a lightning device makes, without a QNode's per-call overhead;
gradients run a QNode with ``diff_method="adjoint"`` (the way users get them).
Lightning's wire order is qsim's (wire 0 = MSB). Threads: ``OMP_NUM_THREADS``.
"""

from __future__ import annotations

import numpy as np
import pennylane
from pennylane_lightning import lightning_qubit_ops as lops

from ..workloads import pennylane_hea, u3_matrix
from ._base import Peer, Runner

_STATE = {"complex64": lops.StateVectorC64, "complex128": lops.StateVectorC128}
_ROT = {"rx": "RX", "ry": "RY", "rz": "RZ"}


def _call(sv, op, dtype):
    """``(bound kernel, args)`` applying ``op`` to ``sv``."""
    w = list(op.wires)
    if op.name == "h":
        return sv.Hadamard, (w, False, [])
    if op.name in _ROT:
        return getattr(sv, _ROT[op.name]), (w, False, [float(op.params[0])])
    if op.name == "cnot":
        return sv.CNOT, (w, False, [])
    if op.name in ("u3", "unitary"):
        m = u3_matrix(*op.params) if op.name == "u3" else op.params[0]
        return sv.applyMatrix, (np.ascontiguousarray(m, dtype), w, False)
    raise ValueError(f"lightning adapter: no mapping for gate {op.name!r}")


class LightningRunner(Runner):
    def __init__(self, ops, n, dtype, init):
        self.n, self.dtype = n, dtype
        self.sv = _STATE[dtype](n)
        self.sv.updateData(np.ascontiguousarray(init, dtype))
        self.calls = [_call(self.sv, op, dtype) for op in ops]

    def run(self):
        for fn, args in self.calls:
            fn(*args)

    def result(self):
        out = np.empty(1 << self.n, self.dtype)
        self.sv.getState(out)
        return out


class LightningPeer(Peer):
    name = "lightning"
    dist = "pennylane_lightning"

    def describe(self):
        return f"lightning.qubit {self.version()} (kernel bindings; QNode + adjoint for gradients)"

    def prepare(self, ops, n, dtype, init, *, fuse=None):
        return LightningRunner(ops, n, dtype, init)

    def hea_value_and_grad(self, n: int, layers: int, dtype: str):
        """``w (layers, n, 2) -> (sum_i <Z_i>, d/dw)`` of the HEA, adjoint method.

        Returns a function of a float64 numpy array giving ``(float, ndarray)``.
        """
        dev = pennylane.device("lightning.qubit", wires=n, c_dtype=np.dtype(dtype).type)
        obs = pennylane.sum(*[pennylane.Z(i) for i in range(n)])

        @pennylane.qnode(dev, diff_method="adjoint")
        def cost(w):
            pennylane_hea(w, n, layers)
            return pennylane.expval(obs)

        grad = pennylane.grad(cost)

        def value_and_grad(w):
            g = grad(pennylane.numpy.array(w, requires_grad=True))
            return float(grad.forward), np.asarray(g)

        return value_and_grad


ADAPTER = LightningPeer
