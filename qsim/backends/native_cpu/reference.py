"""The reference executor of a native program: the same steps and coefficients run with the
pure-JAX kernels of `qsim.backends.xla`.

It gives native programs their forward-mode and higher-order derivatives (plain JAX
autodiff through it) and is the cross-check of the native kernels in the tests.
"""

from __future__ import annotations

import jax.numpy as jnp

from ... import _blocks
from .. import xla
from .steps import DENSE, DIAGONAL, FUSED_DIAGONAL, PERMUTATION


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


def _run_step(state, step, coefs, mode):
    """One step forwards (mode 0), inverted (1) or transposed (2)."""
    dtype = state.dtype
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
