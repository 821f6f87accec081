"""Optimisers for quantum models, as optax `GradientTransformation`s."""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

import qsim


class QNGState(NamedTuple):
    """No state: the metric is recomputed at every step from the current parameters."""


def qng(circuit_fn, learning_rate, regularization=1e-3) -> optax.GradientTransformation:
    """Quantum natural gradient: ``update = -learning_rate * solve(g + regularization * I, grad)``.

    ``g = qsim.metric_tensor(circuit_fn, params)`` is the Fubini-Study metric of the
    state the model prepares (exact, every entry). Use it as any optax optimiser; its
    ``update`` needs ``params`` (``tx.update(grads, state, params)``; `nnx.Optimizer`
    passes them).

    Args:
      circuit_fn: ``params -> qsim.Circuit`` (the state whose geometry is used).
      learning_rate: step size (a float or an optax schedule of the step count is not
        supported: pass a float).
      regularization: added to the metric's diagonal (it is often singular).

    Returns:
      An `optax.GradientTransformation`.

    Raises:
      ValueError: if ``update`` is called without ``params``, or a negative regularization.

    Example:
      >>> tx = qml.optim.qng(lambda w: ansatz(w), learning_rate=0.1)
      >>> state = tx.init(w); updates, state = tx.update(grads, state, w)
    """
    if regularization < 0:
        raise ValueError(f"qng: regularization must be >= 0, got {regularization!r}")

    def init(params):
        del params
        return QNGState()

    def update(updates, state, params=None):
        if params is None:
            raise ValueError("qng: update(grads, state, params) needs params (the metric tensor is "
                             "evaluated at them); pass them as the third argument")
        flat_grad, unravel = ravel_pytree(updates)
        g = qsim.metric_tensor(circuit_fn, params)
        g = g + regularization * jnp.eye(g.shape[0], dtype=g.dtype)
        step = jnp.linalg.solve(g, flat_grad.astype(g.dtype))
        return unravel((-learning_rate * step).astype(flat_grad.dtype)), state

    return optax.GradientTransformation(init, update)
