"""qujax: ``get_params_to_statetensor_func`` with every gate given as its matrix, jitted, state donated.

qujax holds the state as an ``(2,)*n`` tensor with qubit 0 first (qsim's order);
gates given as arrays need no parameter convention (its named rotations take
angles in units of pi).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import qujax

from ..workloads import u3_matrix
from ._base import Peer
from ._tensorcircuit import JaxRunner

_FIXED = {"h": np.array([[1, 1], [1, -1]]) / np.sqrt(2),
          "cnot": np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]])}


def matrix(op) -> np.ndarray:
    """The op's matrix in qsim's conventions (first wire = most significant bit)."""
    if op.name in _FIXED:
        return _FIXED[op.name]
    if op.name == "u3":
        return u3_matrix(*op.params)
    if op.name == "unitary":
        return np.asarray(op.params[0])
    t = op.params[0]
    c, s = np.cos(t / 2), np.sin(t / 2)
    return {"rx": np.array([[c, -1j * s], [-1j * s, c]]), "ry": np.array([[c, -s], [s, c]]),
            "rz": np.diag([np.exp(-1j * t / 2), np.exp(1j * t / 2)])}[op.name]


class QujaxPeer(Peer):
    name = "qujax"
    dist = "qujax"

    def describe(self):
        return f"qujax {self.version()} (gates as matrices, jit, state donated)"

    def prepare(self, ops, n, dtype, init, *, fuse=None):
        gates = [jnp.asarray(matrix(op), dtype).reshape((2,) * (2 * len(op.wires))) for op in ops]
        apply = qujax.get_params_to_statetensor_func(gates, [list(op.wires) for op in ops],
                                                     [[] for _ in ops], n)

        def step(state):
            return apply(statetensor_in=state.reshape((2,) * n)).reshape(-1)

        return JaxRunner(step, init, dtype)


ADAPTER = QujaxPeer
