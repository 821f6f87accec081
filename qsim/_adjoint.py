"""The adjoint method: reverse mode in the memory of a few statevectors, whatever the depth.

`run(program, params, state, backend)` is the forward simulation as a
`jax.custom_jvp` whose tangent is a `custom_linear` map: forward mode (``jvp``,
``jacfwd``) propagates tangents through the gates, and its transpose, which
reverse mode (``grad``, ``jacrev``) runs, is the adjoint walk of
`_executor.backward`: from the FINAL state it goes back op by op, un-applying
each (``psi <- U^dagger psi``) and taking the op's local VJP with the co-state
``lambda``. The only residuals are the parameters, the initial and the final
state. The local VJP is gate-agnostic, so fused blocks, user matrices, shared
parameters and parameters computed from inputs all work; a `RepeatOp` is walked
with a reverse `lax.scan`, a native program with one native sweep.

Derivatives of higher order differentiate the walk itself (plain JAX through
its ops, the native sweep through its reference), so ``hessian`` is exact.
"""

from __future__ import annotations

import functools

import jax

from . import _linear
from ._executor import backward, run_program


class _Static:
    """The static half of an adjoint run (hashable: a custom_jvp nondiff argument)."""

    def __init__(self, program, backend):
        self.program, self.backend = program, backend

    def __hash__(self):
        return hash((self.program, self.backend))

    def __eq__(self, other):
        return isinstance(other, _Static) and (self.program, self.backend) == (other.program, other.backend)


def run(program, params, state, backend):
    """The final state of ``program`` from ``state``, differentiated by the adjoint method."""
    return _run(_Static(program, backend), params, state)


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def _run(static, params, state):
    return run_program(static.program, params, state, static.backend)


@_run.defjvp
def _run_jvp(static, primals, tangents):
    params, state = primals
    out = _run(static, params, state)

    def forward(res, lin):
        params, state, _ = res
        return jax.jvp(lambda p, s: run_program(static.program, p, s, static.backend),
                       (params, state), lin)[1]

    def transpose(res, ct):
        params, _, out = res
        _, lam, grads = backward(static.program, params, out, ct, static.backend)
        return grads, lam

    return out, _linear.custom_linear(forward, transpose, (params, state, out), tangents)
