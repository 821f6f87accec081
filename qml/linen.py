"""`qml.linen.QuantumLayer`: the quantum layer for ``flax.linen`` (``init`` / ``apply``).

Same circuit, weights and numbers as `qml.QuantumLayer` (NNX); the weights live
in the ``"params"`` collection under their ``weight_shapes`` names. The
initializer is called ``weight_init`` here because ``init`` is the name of
`flax.linen.Module.init`.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import flax.linen as nn

from ._spec import default_init, make_spec

__all__ = ["QuantumLayer"]


class QuantumLayer(nn.Module):
    """A quantum circuit as a Linen layer: ``(batch, f) -> (batch, n_obs)``.

    Attributes:
      circuit: ``circuit(c, x, w)`` adds gates for one sample (see `qml.QuantumLayer`).
      n_qubits: number of wires.
      weight_shapes: dict ``name -> shape``; each weight is ``params[name]``.
      observables: list of `qsim.PauliSum` (or one PauliSum: output ``(batch,)``).
      diff: ``"backprop"`` | ``"adjoint"`` | ``"parameter-shift"``.
      weight_init: ``weight_init(key, shape, dtype)``; default uniform in ``[0, 2*pi)``.
      dtype: statevector dtype (``jnp.complex64`` default, or ``jnp.complex128``).
      n_inputs: optional feature count, checked on every call.
      noise: optional `qsim.NoiseModel` (see `qml.QuantumLayer`); ``noise_method``: ``"density_matrix"``
        or ``"trajectories"``, which draws its key from the ``"noise"`` rng collection
        (``layer.apply(params, x, rngs={"noise": key})``); ``trajectories`` per sample.

    Example:
      >>> layer = qml.linen.QuantumLayer(circuit, 4, {"layers": (3, 4, 3)}, [qsim.Z(0)])
      >>> params = layer.init(jax.random.key(0), x)       # {"params": {"layers": (3, 4, 3)}}
      >>> y = layer.apply(params, x)                       # (batch, 1)
    """

    circuit: Callable
    n_qubits: int
    weight_shapes: Mapping[str, Any]
    observables: Any
    diff: str = "backprop"
    weight_init: Callable | None = None
    dtype: Any = None
    n_inputs: int | None = None
    noise: Any = None
    noise_method: str = "density_matrix"
    trajectories: int | None = None

    @nn.compact
    def __call__(self, x):
        """Expectations, shape ``(batch, n_obs)`` for ``x`` of shape ``(batch, f)``; ``(n_obs,)`` for ``(f,)``."""
        spec = make_spec("linen.QuantumLayer", self.circuit, self.n_qubits, dict(self.weight_shapes),
                         self.observables, self.diff, self.dtype, self.n_inputs, self.noise,
                         self.noise_method, self.trajectories)
        init = default_init if self.weight_init is None else self.weight_init
        w = {name: self.param(name, init, shape, spec.real_dtype) for name, shape in spec.weight_shapes}
        return spec.forward(w, x, self.make_rng("noise") if spec.needs_key else None)
