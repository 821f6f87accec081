"""The adjoint method: gradients in the memory of a few statevectors, whatever the depth.

`run(program, params, state)` is the forward simulation as a `jax.custom_vjp`.
Its residuals are only the parameters and the FINAL state. The backward pass
walks the program from the last op to the first; for each op it

1. un-applies the op to the state (``psi <- U^dagger psi``), recovering the op's input;
2. takes the local VJP of ``(p, psi) -> U(p) psi`` at that input with the
   co-state ``lambda``: this gives the op's parameter cotangent (for a gate
   with generator G that is ``2 Re <lambda| dU/dtheta |psi>`` in JAX's complex
   convention) and the co-state before the op (``U^T lambda``).

The local VJP is gate-agnostic, so fused blocks, user matrices, shared
parameters and parameters computed from inputs all work: cotangents flow back
into whatever produced the parameters. A `RepeatOp` is walked with a reverse
`lax.scan` over its layers, so depth never enters the memory or the program size.
"""

from __future__ import annotations

import functools

import jax

from ._ops import RepeatOp, apply, run_program
from ._scan import ProgramOp, ScanOp, program_adjoint, scan_adjoint


def _step(op, p, psi, lam):
    """One backward step through ``op``: returns (state before, co-state before, param cotangent)."""
    if isinstance(op, RepeatOp):
        return _repeat_step(op, p, psi, lam)
    if isinstance(op, ScanOp):
        return scan_adjoint(op, p, psi, lam)
    if isinstance(op, ProgramOp):
        return program_adjoint(op, p, psi, lam)
    psi = apply(op, p, psi, inverse=True)
    _, vjp = jax.vjp(lambda prm, s: apply(op, prm, s), p, psi)
    grad, lam = vjp(lam)
    return psi, lam, grad


def backward(program, params, psi, lam):
    """Walk ``program`` backwards from final state ``psi`` and co-state ``lam``."""
    grads = []
    for op, p in reversed(list(zip(program, params))):
        psi, lam, g = _step(op, p, psi, lam)
        grads.append(g)
    return psi, lam, tuple(reversed(grads))


def _repeat_step(op: RepeatOp, p, psi, lam):
    stacked, consts = p

    def body(carry, w):
        psi, lam = carry
        layer_params, params_vjp = jax.vjp(lambda w_, c_: op.params_fn(w_, *c_), w, consts)
        psi, lam, g = backward(op.body, layer_params, psi, lam)
        gw, gc = params_vjp(g)
        return (psi, lam), (gw, gc)

    (psi, lam), (gws, gcs) = jax.lax.scan(body, (psi, lam), stacked, reverse=True)
    gconsts = jax.tree.map(lambda g: g.sum(0), gcs)
    return psi, lam, (gws, gconsts)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def run(program, params, state):
    """Forward simulation whose VJP is the adjoint method (see module docstring)."""
    return run_program(program, params, state)


def _fwd(program, params, state):
    out = run_program(program, params, state)
    return out, (params, out)


def _bwd(program, res, ct):
    params, out = res
    _, lam, grads = backward(program, params, out, ct)
    return grads, lam


run.defvjp(_fwd, _bwd)
