"""The reference executor of a native program: the same steps and coefficients run with the
pure-JAX kernels of `qsim.backends.xla`.

It gives native programs their forward-mode and higher-order derivatives (plain JAX
autodiff through it) and is the cross-check of the native kernels in the tests.
"""

from __future__ import annotations

import functools

import jax.numpy as jnp
import numpy as np

from ... import _blocks
from .. import xla
from .steps import DENSE, DIAGONAL, FUSED_DIAGONAL, LINEAR, PERMUTATION


def _step_matrix(step, coefs, dtype):
    """The full matrix (or diagonal) of a plain step on its wires (controls first)."""
    k = len(step.targets)
    if step.kind == DIAGONAL:
        return coefs[step.offset:step.offset + (1 << k)].astype(dtype)
    if step.kind == DENSE:
        u = coefs[step.offset:step.offset + (1 << 2 * k)].reshape(1 << k, 1 << k).astype(dtype)
    else:
        u = _blocks.perm_matrix(step.perm, dtype)
    return _blocks.controlled(u, len(step.controls))


def _fused_block(step, coefs, dtype):
    diagonal = step.kind == FUSED_DIAGONAL
    positions = tuple(range(len(step.targets)))
    members = []
    for m in step.members:
        full = _step_matrix(m, coefs, dtype)
        if diagonal:
            members.append((m.targets, full))
        else:
            members.append((tuple(m.controls) + tuple(m.targets),
                            jnp.diag(full) if m.kind == DIAGONAL else full))
    return _blocks.fused(members, positions, diagonal, dtype=dtype), diagonal


@functools.lru_cache(maxsize=256)
def linear_index(wires, cols, n, inverse=False) -> np.ndarray:
    """``F`` of a linear step on n-qubit states as an index array (``out = state[F]``)."""
    k = len(wires)
    i = np.arange(1 << n)
    bits = [(i >> (n - 1 - w)) & 1 for w in wires]          # a's bit of position j
    out = i.copy()
    for w in wires:
        out &= ~(1 << (n - 1 - w))
    for j in range(k):                                        # M a = XOR of cols[j] over set bits
        for t in range(k):
            if (cols[j] >> (k - 1 - t)) & 1:
                out ^= bits[j] << (n - 1 - wires[t])
    return np.argsort(out) if inverse else out


def _run_step(state, step, coefs, mode):
    """One step forwards (mode 0), inverted (1) or transposed (2)."""
    dtype = state.dtype
    if step.kind == LINEAR:   # a permutation matrix: its inverse is its transpose
        n = state.shape[-1].bit_length() - 1
        return state[linear_index(step.targets, step.perm, n, mode != 0)]
    if step.kind == PERMUTATION:
        perm = step.perm if mode == 0 else _blocks.inverse_perm(step.perm)
        return xla.apply_permutation(state, perm, step.targets, step.controls)
    if step.kind in (DENSE, DIAGONAL):
        diagonal = step.kind == DIAGONAL
        k = len(step.targets)
        block = (coefs[step.offset:step.offset + (1 << k)] if diagonal else
                 coefs[step.offset:step.offset + (1 << 2 * k)].reshape(1 << k, 1 << k)).astype(dtype)
        wires, controls = step.targets, step.controls
    else:
        block, diagonal = _fused_block(step, coefs, dtype)
        wires, controls = step.targets, ()
    if mode == 1:
        block = jnp.conj(block) if diagonal else jnp.conj(block).T
    elif mode == 2 and not diagonal:
        block = block.T
    if diagonal:
        return xla.apply_diagonal(state, block, wires)
    return xla.apply_dense(state, block, wires, controls)


def run_code(state, coefs, steps, mode=0):
    """Run decoded native ``steps`` with coefficients ``coefs`` on one flat state.

    ``mode``: 0 forward ``U_S ... U_1``, 1 inverse ``U_1^dagger ... U_S^dagger``, 2 transpose
    ``U_1^T ... U_S^T``.
    """
    order = steps if mode == 0 else reversed(steps)
    for step in order:
        state = _run_step(state, step, coefs, mode)
    return state
