"""The executor: runs program records on a backend, forwards, inverted, or backwards (adjoint).

One table per direction maps a record type to its rule, so a new kind of record
(a measurement, a channel, a device swap) is one record in `_ir` and one entry
here. ``backend`` (`qsim.backends.Backend`) supplies the kernels; lowered
records (`ScanOp`, `ProgramOp`) carry their own step data (see `_scan`).

- ``APPLY[type](op, params, state, backend, inverse) -> state``;
- ``BACKWARD[type](op, params, psi, lam, backend) -> (psi before, lam before, cotangent)``:
  one step of the adjoint walk from the op's output ``psi`` and co-state ``lam``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from . import _blocks, _scan
from ._gates import full_matrix, gate_matrix
from ._ir import FusedOp, GateOp, ProgramOp, RepeatOp, ScanOp


def gate_apply(op: GateOp, params, state, backend, inverse=False):
    """Apply one gate op (or its inverse) to a flat state."""
    g = op.gate
    if g.structure == "permutation":
        perm = _blocks.inverse_perm(g.perm) if inverse else g.perm
        return backend.apply_permutation(state, perm, op.targets, op.controls)
    block = gate_matrix(g, params, state.dtype)
    if g.structure == "diagonal":
        return backend.apply_diagonal(state, jnp.conj(block) if inverse else block, op.wires)
    if inverse:
        block = jnp.conj(block).T
    return backend.apply_dense(state, block, op.targets, op.controls)


def fused_matrix(op: FusedOp, params, dtype):
    """The block of a fused op: its (2^k,) diagonal or its (2^k, 2^k) matrix on ``op.wires``."""
    if op.diagonal:
        members = [(m.wires, gate_matrix(m.gate, p, dtype)) for m, p in zip(op.members, params)]
    else:
        members = [(m.wires, full_matrix(m.gate, p, dtype)) for m, p in zip(op.members, params)]
    return _blocks.fused(members, op.wires, op.diagonal, dtype=dtype)


def fused_apply(op: FusedOp, params, state, backend, inverse=False):
    block = fused_matrix(op, params, state.dtype)
    if op.diagonal:
        return backend.apply_diagonal(state, jnp.conj(block) if inverse else block, op.wires)
    return backend.apply_dense(state, jnp.conj(block).T if inverse else block, op.wires)


def repeat_apply(op: RepeatOp, params, state, backend, inverse=False):
    stacked, consts = params

    def body(s, w):
        return run_program(op.body, op.params_fn(w, *consts), s, backend, inverse), None

    state, _ = jax.lax.scan(body, state, stacked, reverse=inverse)
    return state


APPLY = {
    GateOp: gate_apply,
    FusedOp: fused_apply,
    RepeatOp: repeat_apply,
    ScanOp: lambda op, p, s, backend, inverse=False: _scan.scan_apply(op, p, s, backend, inverse),
    ProgramOp: lambda op, p, s, backend, inverse=False: _scan.program_apply(op, p, s, inverse),
}


def run_program(program, params, state, backend, inverse=False):
    """Run a whole program forwards (or, with ``inverse``, its inverse: last op first)."""
    pairs = list(zip(program, params))
    for op, p in (reversed(pairs) if inverse else pairs):
        state = APPLY[type(op)](op, p, state, backend, inverse)
    return state


# ------------------------------------------------------------ adjoint walk ------

def _local_backward(op, p, psi, lam, backend):
    """Un-apply ``op``, then its local VJP at the recovered input (any unitary record)."""
    psi = APPLY[type(op)](op, p, psi, backend, True)
    _, vjp = jax.vjp(lambda prm, s: APPLY[type(op)](op, prm, s, backend), p, psi)
    grad, lam = vjp(lam)
    return psi, lam, grad


def _repeat_backward(op: RepeatOp, p, psi, lam, backend):
    stacked, consts = p

    def body(carry, w):
        psi, lam = carry
        layer_params, params_vjp = jax.vjp(lambda w_, c_: op.params_fn(w_, *c_), w, consts)
        psi, lam, g = backward(op.body, layer_params, psi, lam, backend)
        gw, gc = params_vjp(g)
        return (psi, lam), (gw, gc)

    (psi, lam), (gws, gcs) = jax.lax.scan(body, (psi, lam), stacked, reverse=True)
    return psi, lam, (gws, jax.tree.map(lambda g: g.sum(0), gcs))


BACKWARD = {
    GateOp: _local_backward,
    FusedOp: _local_backward,
    RepeatOp: _repeat_backward,
    ScanOp: lambda op, p, psi, lam, backend: _scan.scan_adjoint(op, p, psi, lam, backend),
    ProgramOp: lambda op, p, psi, lam, backend: _scan.program_adjoint(op, p, psi, lam),
}


def backward(program, params, psi, lam, backend):
    """Walk ``program`` backwards from its final state ``psi`` and co-state ``lam``.

    Returns ``(initial state, its co-state, parameter cotangents)``.
    """
    grads = []
    for op, p in reversed(list(zip(program, params))):
        psi, lam, g = BACKWARD[type(op)](op, p, psi, lam, backend)
        grads.append(g)
    return psi, lam, tuple(reversed(grads))
