"""TensorCircuit-NG on its JAX backend: ``tc.Circuit(n, inputs=state)``, jitted with the state donated.

TensorCircuit's wire order is qsim's. ``tc.set_backend`` and ``tc.set_dtype``
are global and switch ``jax_enable_x64`` (off for complex64, on for
complex128): the dtype is set before each function is traced, and the x64
flag is put back as it was (on when complex128 needs it).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import tensorcircuit as tc

from ..timing import compile_jit
from ..workloads import u3_matrix
from ._base import Peer, Runner


def apply_op(c, op, dtype):
    """Add one workload op to a ``tc.Circuit``."""
    w = op.wires
    if op.name == "h":
        c.h(w[0])
    elif op.name in ("rx", "ry", "rz"):
        getattr(c, op.name)(w[0], theta=op.params[0])
    elif op.name == "cnot":
        c.cnot(w[0], w[1])
    elif op.name in ("u3", "unitary"):
        m = u3_matrix(*op.params) if op.name == "u3" else op.params[0]
        c.any(*w, unitary=jnp.asarray(m, dtype))
    else:
        raise ValueError(f"tensorcircuit adapter: no mapping for gate {op.name!r}")


def hea_layers(c, w, n: int, layers: int) -> None:
    """The benchmark's HEA layers on a ``tc.Circuit``: RY, RZ on every wire, then a CNOT chain."""
    for layer in range(layers):
        for q in range(n):
            c.ry(q, theta=w[layer, q, 0])
            c.rz(q, theta=w[layer, q, 1])
        for q in range(n - 1):
            c.cnot(q, q + 1)


def set_dtype(dtype: str) -> None:
    """``tc.set_backend("jax")`` and ``tc.set_dtype(dtype)`` without turning ``jax_enable_x64`` off."""
    x64 = jax.config.jax_enable_x64
    tc.set_backend("jax")
    tc.set_dtype(dtype)
    jax.config.update("jax_enable_x64", x64 or dtype == "complex128")


class JaxRunner(Runner):
    """A jitted, donated ``state -> state`` function (compiled apart), fed its own result."""

    def __init__(self, fn, init, dtype):
        # a private copy: the donated buffer is never one the caller holds
        self.state = jnp.asarray(np.array(init, dtype, copy=True))
        self.step, times = compile_jit(fn, self.state, donate=True)
        self.compile_s = times["compile_s"]

    def run(self):
        self.state = self.step(self.state)
        self.state.block_until_ready()

    def result(self):
        return np.asarray(self.state)


class TensorCircuitPeer(Peer):
    name = "tensorcircuit"
    dist = "tensorcircuit-ng"
    hea_compile_heavy = True   # jit(value_and_grad) of an unrolled circuit: 66 s at n=12, L=4 here

    def describe(self):
        return f"tensorcircuit-ng {self.version()} (jax backend, jit, state donated)"

    def prepare(self, ops, n, dtype, init, *, fuse=None):
        set_dtype(dtype)

        def step(state):
            c = tc.Circuit(n, inputs=state)
            for op in ops:
                apply_op(c, op, dtype)
            return c.state()

        return JaxRunner(step, init, dtype)

    def batch_forward(self, n: int, layers: int, weights, dtype: str):
        """``xs (B, n) -> (B,)`` sum_i <Z_i> after angle embedding + HEA layers, vmapped (not jitted)."""
        set_dtype(dtype)
        w = jnp.asarray(weights)

        def one(x):
            c = tc.Circuit(n)
            for q in range(n):
                c.ry(q, theta=x[q])
            hea_layers(c, w, n, layers)
            return jnp.real(sum(c.expectation_ps(z=[q]) for q in range(n)))

        return tc.backend.vmap(one)

    def hea_value_and_grad(self, n: int, layers: int, dtype: str):
        """``w (layers, n, 2) -> (sum_i <Z_i>, d/dw)`` of the HEA: ``jax.jit(jax.value_and_grad)``
        (backprop) through ``tc.Circuit``, the cost read from ``c.state()`` (much faster to compile
        than one ``expectation_ps`` contraction per wire). Compiled here; ``.compile_s`` says how long.
        """
        set_dtype(dtype)
        real = jnp.finfo(dtype).dtype
        idx = np.arange(1 << n)
        signs = jnp.asarray(sum(1 - 2 * ((idx >> (n - 1 - q)) & 1) for q in range(n)), real)

        def cost(w):
            c = tc.Circuit(n)
            hea_layers(c, w, n, layers)
            psi = c.state()
            return jnp.sum(signs * jnp.abs(psi) ** 2)

        w0 = jnp.zeros((layers, n, 2), real)
        compiled, times = compile_jit(jax.value_and_grad(cost), w0)

        def value_and_grad(w):
            v, g = compiled(jnp.asarray(w, real))
            return float(v), np.asarray(g)

        value_and_grad.compile_s = times["compile_s"]
        return value_and_grad


ADAPTER = TensorCircuitPeer
