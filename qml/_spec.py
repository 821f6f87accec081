"""The static description of a quantum layer and its pure forward pass (shared by the NNX and Linen layers).

A `LayerSpec` holds everything about a layer that is static (the circuit
function, qubit count, weight shapes, observables as Pauli words with their
coefficients as Python numbers, gradient method, dtype). It is a frozen,
hashable dataclass, so a module holding it compiles once under `nnx.jit` and
equal specs compare equal after `nnx.split` / `nnx.merge`. The weights and the
inputs are the only traced values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import qsim

_DIFF = ("backprop", "adjoint", "parameter-shift")
_DTYPES = {np.dtype(np.complex64): np.dtype(np.complex64), np.dtype(np.complex128): np.dtype(np.complex128),
           np.dtype(np.float32): np.dtype(np.complex64), np.dtype(np.float64): np.dtype(np.complex128)}


@dataclass(frozen=True)
class LayerSpec:
    where: str                                        # layer name for error messages
    circuit: Callable                                 # circuit(c, x, w) adds gates for one sample
    n_qubits: int
    weight_shapes: tuple[tuple[str, tuple[int, ...]], ...]
    observables: tuple[tuple[tuple, tuple], ...]      # (words, coefficients) of each PauliSum
    single: bool                                      # observables was one PauliSum: output (batch,)
    diff: str
    dtype: np.dtype                                   # statevector dtype (complex64 / complex128)
    n_inputs: int | None
    noise_key: tuple | None = None                    # the noise model's value (None: noiseless)
    noise_method: str = "density_matrix"              # or "trajectories" (needs a key per call)
    trajectories: int | None = None
    noise: object = field(default=None, compare=False)  # a frozen copy of the qsim.NoiseModel

    @property
    def real_dtype(self):
        return np.dtype(np.float32) if self.dtype == np.complex64 else np.dtype(np.float64)

    def pauli_sums(self):
        return [qsim.PauliSum(words, jnp.asarray(coeffs)) for words, coeffs in self.observables]

    def check_input(self, x):
        """Validate ``x`` (shape ``(batch, f)`` or ``(f,)``, real) and cast it to the real dtype."""
        want = "(batch, n_inputs) or (n_inputs,)" if self.n_inputs is None else \
            f"(batch, {self.n_inputs}) or ({self.n_inputs},)"
        if isinstance(x, (list, tuple, int, float)):
            x = np.asarray(x)
        dtype = getattr(x, "dtype", None)
        if dtype is None or not (jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.integer)
                                 or dtype == jnp.bool_):
            raise TypeError(f"{self.where}: inputs must be a real array of shape {want}, got "
                            f"{type(x).__name__} with dtype {dtype}")
        if x.ndim not in (1, 2):
            raise ValueError(f"{self.where}: inputs must have shape {want}, got shape {tuple(x.shape)}")
        if self.n_inputs is not None and x.shape[-1] != self.n_inputs:
            raise ValueError(f"{self.where}: inputs must have shape {want}, got shape {tuple(x.shape)}")
        return jnp.asarray(x, self.real_dtype)

    @property
    def needs_key(self):
        """Whether a call needs a random key (noise unravelled into trajectories)."""
        return self.noise is not None and self.noise_method == "trajectories"

    def one(self, x, w, key=None):
        """Expectations for ONE sample: shape ``(n_obs,)`` (``()`` if ``single``)."""
        c = qsim.Circuit(self.n_qubits, dtype=self.dtype)
        out = self.circuit(c, x, w)
        if isinstance(out, qsim.Circuit):
            c = out
        elif out is not None:
            raise TypeError(f"{self.where}: circuit(c, x, w) must add gates to c and return None or a "
                            f"qsim.Circuit, got {type(out).__name__}")
        if self.noise is None:
            vals = c.expectation(self.pauli_sums(), diff=self.diff)
        else:
            extra = dict(key=key, trajectories=self.trajectories) if self.needs_key else {}
            vals = c.with_noise(self.noise).expectation(self.pauli_sums(), diff=self.diff,
                                                        method=self.noise_method, **extra)
        return vals[0] if self.single else vals

    def forward(self, weights, x, key=None):
        """Batched forward pass: ``x`` (batch, f) -> (batch, n_obs); (f,) -> (n_obs,).

        With trajectories, ``key`` is split into one key per sample."""
        x = self.check_input(x)
        if x.ndim == 1:
            return self.one(x, weights, key)
        if key is None:
            return jax.vmap(self.one, in_axes=(0, None))(x, weights)
        return jax.vmap(self.one, in_axes=(0, None, 0))(x, weights, jax.random.split(key, x.shape[0]))


def default_init(key, shape, dtype):
    """Uniform angles in ``[0, 2*pi)``."""
    return jax.random.uniform(key, shape, dtype, 0.0, 2 * math.pi)


_NOISE_METHODS = ("density_matrix", "trajectories")


def _noise_fields(where, noise, noise_method, trajectories):
    """The spec's noise fields: the model's value, a frozen copy, the method and trajectory count."""
    if noise is None:
        return {}
    if not isinstance(noise, qsim.NoiseModel):
        raise TypeError(f"{where}: noise must be a qsim.NoiseModel or None, got {type(noise).__name__}")
    if noise_method not in _NOISE_METHODS:
        raise ValueError(f"{where}: noise_method must be one of {_NOISE_METHODS}, got {noise_method!r}")
    if trajectories is not None and (isinstance(trajectories, bool) or not isinstance(trajectories, (int, np.integer))
                                     or trajectories < 2):
        raise ValueError(f"{where}: trajectories must be an int >= 2 or None, got {trajectories!r}")
    try:
        key = noise.key()
    except (TypeError, jax.errors.ConcretizationTypeError):
        raise ValueError(f"{where}: noise must have concrete parameters (numbers, not traced values)") from None
    return dict(noise_key=key, noise_method=noise_method, trajectories=trajectories, noise=noise.copy())


def make_spec(where, circuit, n_qubits, weight_shapes, observables, diff, dtype, n_inputs, noise=None,
              noise_method="density_matrix", trajectories=None):
    """Validate the layer arguments and return the `LayerSpec`."""
    if not callable(circuit):
        raise TypeError(f"{where}: circuit must be a callable circuit(c, x, w), got {type(circuit).__name__}")
    if isinstance(n_qubits, bool) or not isinstance(n_qubits, (int, np.integer)):
        raise TypeError(f"{where}: n_qubits must be a positive int, got {n_qubits!r} of type "
                        f"{type(n_qubits).__name__}")
    if n_qubits < 1:
        raise ValueError(f"{where}: n_qubits must be a positive int, got {n_qubits!r}")
    if diff not in _DIFF:
        raise ValueError(f"{where}: diff must be one of {_DIFF}, got {diff!r}")
    try:
        cdtype = _DTYPES[np.dtype(jnp.complex64 if dtype is None else dtype)]
    except (KeyError, TypeError):
        raise TypeError(f"{where}: dtype must be jnp.complex64 or jnp.complex128 (or float32/float64), "
                        f"got {dtype!r}") from None
    if n_inputs is not None and (isinstance(n_inputs, bool) or not isinstance(n_inputs, (int, np.integer))
                                 or n_inputs < 1):
        raise ValueError(f"{where}: n_inputs must be a positive int or None, got {n_inputs!r}")
    shapes = _weight_shapes(where, weight_shapes)
    single = isinstance(observables, qsim.PauliSum)
    obs = [observables] if single else list(observables) if isinstance(observables, (list, tuple)) else None
    if not obs or not all(isinstance(o, qsim.PauliSum) for o in obs):
        raise TypeError(f"{where}: observables must be a qsim.PauliSum or a non-empty list of them "
                        f"(e.g. [qsim.Z(i) for i in range(n)]), got {observables!r}")
    for k, o in enumerate(obs):
        top = max((wire for word in o.words for wire, _ in word), default=-1)
        if top >= n_qubits:
            raise ValueError(f"{where}: an observable acts on wire {top}, out of range for n_qubits={n_qubits}")
        _check_hermitian(where, "observables" if single else f"observables[{k}]", o)
    frozen = tuple((tuple(o.words), tuple(np.asarray(o.coeffs).tolist())) for o in obs)
    return LayerSpec(where, circuit, int(n_qubits), shapes, frozen, single, diff, cdtype,
                     None if n_inputs is None else int(n_inputs),
                     **_noise_fields(where, noise, noise_method, trajectories))


def _check_hermitian(where, name, obs):
    """An observable must have real coefficients once equal words are merged (``X @ Y`` is ``1j Z``)."""
    cs = np.asarray(obs.coeffs)
    if not np.iscomplexobj(cs):
        return
    merged = {}
    for word, c in zip(obs.words, cs.tolist()):
        merged[word] = merged.get(word, 0) + c
    tol = (1e-5 if cs.dtype == np.complex64 else 1e-10) * max(1.0, float(np.abs(cs).max(initial=0)))
    for word, c in merged.items():
        if abs(c.imag) > tol:
            label = " ".join(f"{p}{q}" for q, p in word) or "I"
            raise ValueError(f"{where}: {name} is not Hermitian: {label} has the complex coefficient {c} "
                             "(after merging equal words); observables need real coefficients "
                             "(X(0) @ Y(0) is 1j Z0, so -1j * (X(0) @ Y(0)) is Z0)")


def _weight_shapes(where, weight_shapes):
    if not hasattr(weight_shapes, "items"):
        raise TypeError(f"{where}: weight_shapes must be a dict name -> shape, e.g. {{'layers': (3, 4, 3)}}, "
                        f"got {type(weight_shapes).__name__}")
    out = []
    for name, shape in weight_shapes.items():
        shape = (shape,) if isinstance(shape, (int, np.integer)) else shape
        try:
            shape = tuple(int(s) for s in shape)
        except (TypeError, ValueError):
            raise TypeError(f"{where}: weight_shapes[{name!r}] must be a tuple of ints, got {shape!r}") from None
        if not isinstance(name, str) or any(s < 0 for s in shape):
            raise ValueError(f"{where}: weight_shapes needs str names and non-negative sizes, got "
                             f"{name!r}: {shape}")
        out.append((name, shape))
    return tuple(out)
