"""The Fubini-Study metric tensor (the quantum Fisher information / 4) of a parametrised state."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree


def metric_tensor(circuit_fn, params, diff="backprop"):
    """``g_ij = Re(<d_i psi|d_j psi> - <d_i psi|psi><psi|d_j psi>)`` of ``psi = circuit_fn(params).state()``.

    The parameters are flattened as `jax.flatten_util.ravel_pytree` does; the state's
    derivatives come from forward mode (``jax.jacfwd``), one tangent per parameter, so
    the metric is exact (no block-diagonal approximation) for every gate, shared
    parameters and parameters that enter several gates. Works under ``jit`` and ``vmap``.

    Args:
      circuit_fn: ``params -> qsim.Circuit``.
      params: any pytree of real arrays (P entries in all).
      diff: how ``state()`` is differentiated (``"backprop"`` or ``"adjoint"``).

    Returns:
      ``(P, P)`` real array in the state's real dtype (the QFI is ``4 g``).

    Raises:
      TypeError: if ``circuit_fn`` does not return a ``qsim.Circuit``.

    Example:
      >>> g = qsim.metric_tensor(lambda t: qsim.Circuit(1).rx(0, t[0]), jnp.array([0.3]))  # [[0.25]]
    """
    from ._circuit import Circuit

    flat, unravel = ravel_pytree(params)

    def state(x):
        c = circuit_fn(unravel(x))
        if not isinstance(c, Circuit):
            raise TypeError("metric_tensor: circuit_fn(params) must return a qsim.Circuit, "
                            f"got {type(c).__name__}")
        return c.state(diff=diff)

    psi = state(flat)
    jac = jax.jacfwd(state)(flat)                       # (2**n, P): column j is d_j psi
    overlap = jnp.conj(jac).T @ jac                     # <d_i psi|d_j psi>
    berry = jnp.conj(jac).T @ psi                       # <d_i psi|psi>
    return jnp.real(overlap - jnp.outer(berry, jnp.conj(berry)))
