"""`QuantumLayer`: a Flax NNX module whose forward pass is a parametrised quantum circuit.

The user writes the circuit for ONE sample, ``circuit(c, x, w)``, adding gates
to the `qsim.Circuit` ``c`` from that sample's features ``x`` (shape ``(f,)``)
and the weights ``w`` (a dict of arrays shaped by ``weight_shapes``). The layer
builds a fresh circuit, reads every observable from one simulation
(``c.expectation(observables, diff=...)``) and batches samples with `jax.vmap`.
"""

from __future__ import annotations

import inspect

from flax import nnx

from ._spec import default_init, make_spec

__all__ = ["QuantumLayer"]


class QuantumLayer(nnx.Module):
    """A quantum circuit as an NNX layer: ``(batch, f) -> (batch, n_obs)``.

    ``y[b, k] = <psi(x_b, w)| O_k |psi(x_b, w)>`` where ``|psi(x, w)>`` is the state
    that ``circuit(c, x, w)`` prepares from ``|0...0>`` and ``O_k = observables[k]``.

    Args:
      circuit: ``circuit(c, x, w)`` adds gates to ``c`` (a `qsim.Circuit`) for one sample;
        ``x`` has shape ``(f,)``, ``w`` is a dict ``name -> array of weight_shapes[name]``.
      n_qubits: number of wires of the circuit.
      weight_shapes: dict ``name -> shape`` of the trainable weights (each an `nnx.Param`).
      observables: a list of `qsim.PauliSum` (output ``(batch, len(observables))``) or one
        PauliSum (output ``(batch,)``).
      rngs: `nnx.Rngs` (keyword-only); weights are drawn from ``rngs.params()``.
      diff: gradient method, ``"backprop"``, ``"adjoint"`` or ``"parameter-shift"``.
      init: optional initializer ``init(key, shape, dtype)``; default uniform in ``[0, 2*pi)``.
      dtype: statevector dtype, ``jnp.complex64`` (default) or ``jnp.complex128`` (needs
        ``jax_enable_x64``); weights are float32 / float64 to match.
      n_inputs: optional feature count ``f``, checked on every call.
      noise: optional `qsim.NoiseModel`: every circuit runs ``c.with_noise(noise)`` (training under noise).
      noise_method: ``"density_matrix"`` (exact, default) or ``"trajectories"`` (an unbiased estimate
        from ``trajectories`` Born-rule trajectories per sample; each call draws a key from the layer's
        own ``nnx.Rngs`` stream, seeded from ``rngs.noise()`` at construction).
      trajectories: trajectories per sample (default 1000).

    Inputs: ``x`` real, shape ``(batch, f)`` or ``(f,)`` (then the output has no batch axis).

    Raises:
      ValueError: bad arguments (diff, n_qubits, weight_shapes, observable wires), or inputs of the
        wrong rank / feature count. TypeError: complex or non-numeric inputs, non-PauliSum observables.

    Example:
      >>> def circuit(c, x, w):
      ...     qml.templates.angle_embedding(c, x, rotation="Y")
      ...     qml.templates.strongly_entangling(c, w["layers"])
      >>> layer = qml.QuantumLayer(circuit, 4, {"layers": (3, 4, 3)},
      ...                          [qsim.Z(i) for i in range(4)], rngs=nnx.Rngs(0))
      >>> layer(jnp.ones((8, 4))).shape
      (8, 4)
    """

    def __init__(self, circuit, n_qubits, weight_shapes, observables, *, rngs, diff="backprop", init=None,
                 dtype=None, n_inputs=None, noise=None, noise_method="density_matrix", trajectories=None):
        self.spec = make_spec("QuantumLayer", circuit, n_qubits, weight_shapes, observables, diff, dtype,
                              n_inputs, noise, noise_method, trajectories)
        if not isinstance(rngs, nnx.Rngs):
            raise TypeError(f"QuantumLayer: rngs must be an nnx.Rngs, got {type(rngs).__name__}")
        if init is not None and not callable(init):
            raise TypeError(f"QuantumLayer: init must be a callable init(key, shape, dtype), got {init!r}")
        init = default_init if init is None else init
        self.weights = nnx.Dict({name: nnx.Param(init(rngs.params(), shape, self.spec.real_dtype))
                                 for name, shape in self.spec.weight_shapes})
        if self.spec.needs_key:
            self.noise_rngs = nnx.Rngs(noise=rngs.noise())

    def __call__(self, x):
        """Expectations, shape ``(batch, n_obs)`` for ``x`` of shape ``(batch, f)``; ``(n_obs,)`` for ``(f,)``."""
        w = {name: self.weights[name][...] for name, _ in self.spec.weight_shapes}
        return self.spec.forward(w, x, self.noise_rngs.noise() if self.spec.needs_key else None)


# nnx's metaclass makes `inspect.signature(QuantumLayer)` (and `help`) show ``(*args, **kwargs)``;
# publish the signature of ``__init__`` instead.
_init_signature = inspect.signature(QuantumLayer.__init__)
QuantumLayer.__signature__ = _init_signature.replace(parameters=list(_init_signature.parameters.values())[1:])
