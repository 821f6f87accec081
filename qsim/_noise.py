"""Reading a noisy circuit: the density-matrix engine or stochastic trajectories, chosen by ``method``.

``method="density_matrix"`` (default) is exact (`_density`). ``method="trajectories"``
unravels every channel into Born-rule jumps on a statevector (`_unravel`): ``trajectories``
of them (default 1000) run as vmapped batches over ``jax.random.split(key, trajectories)``,
in chunks whose states fit in cache (each chunk under `jax.checkpoint`, so backprop holds a
chunk's states, not all), and the estimate is their mean; `expectation_with_error` also
returns the standard error ``std / sqrt(trajectories)``.

Gradients of a trajectory estimate: with ``diff="backprop"`` the mean of per-trajectory
gradients, each that of its unnormalised branch over the branch probability (`_unravel`):
an unbiased estimate of the exact gradient, for gate angles and noise parameters alike and
for every channel (amplitude damping too: its state-dependent branch probabilities enter
through the unnormalised branch). With ``diff="parameter-shift"`` the gate angles are
shifted and each shifted circuit re-estimated with its own keys (`_shots.values`; unbiased;
noise parameters must then be constants). Mid-circuit measurements and resets keep the
dynamic executor's rules (the post-selected branch's derivative). ``shots=`` estimates are
`_noise_shots`'. A readout error (`NoiseModel.readout`) flips sampled bits: `sample`, `run`,
``probs(shots=)`` and shot estimates, not the exact values (as in Qiskit Aer).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from . import _density, _shots, _trajectory
from ._observables import combine_words, pauli_expectations
from ._simulate import fusion_width, sample_bits
from ._unravel import STATES_PER_TRAJECTORY, batched, chunk_size, initial, trajectory, trajectory_program
from ._validate import check_key, check_memory

METHODS = ("density_matrix", "trajectories")
DEFAULT_TRAJECTORIES = 1000


@functools.partial(jax.jit, static_argnums=(0, 4, 5, 6, 7, 8, 9, 10, 11))
def _words_jit(program, params, init, key, n, dtype, k, backend, words, n_clbits, count, batch):
    """Per-trajectory real Pauli-word values, shape ``(count, len(words))``."""
    state0 = initial(init, n, dtype)

    def one(kk):
        s, _ = trajectory(program, params, state0, kk, n_clbits, backend, k)
        return jnp.real(pauli_expectations(s, words))

    return batched(one, jax.random.split(_trajectory.as_key(key), count), batch)


class _Estimator:
    """``(program, params, init, key) -> mean word values`` over trajectories (hashable, for
    the parameter-shift rule of `_shots.values`)."""

    def __init__(self, *static):
        self.static = static            # n, dtype, k, backend, words, n_clbits, count, batch

    def __call__(self, program, params, init, key):
        return _words_jit(program, params, init, key, *self.static).mean(0)

    def __eq__(self, other):
        return isinstance(other, _Estimator) and other.static == self.static

    def __hash__(self):
        return hash(self.static)


def _check_count(trajectories, where):
    if trajectories is None:
        return DEFAULT_TRAJECTORIES
    if isinstance(trajectories, bool) or not isinstance(trajectories, (int, np.integer)) or trajectories < 2:
        raise ValueError(f"{where}: trajectories must be an int >= 2 (the number of trajectories averaged), "
                         f"got {trajectories!r}")
    return int(trajectories)


def _need_key(key, where, what):
    if key is None:
        raise ValueError(f"{where}: {what} needs a random key, e.g. key=jax.random.key(0)")
    return check_key(key, where)


def _trajectory_words(circ, words, key, trajectories, where):
    """``(program, params, static arguments of _words_jit)``; the memory guard first."""
    count, batch, program, params = _trajectory_setup(circ, key, trajectories, where)
    static = (circ.n_qubits, circ.dtype, fusion_width(circ), circ.backend, words, circ.n_clbits, count, batch)
    return program, params, static


def expectation_with_error(circ, obs, *, key, trajectories=None, diff="backprop"):
    """The trajectory estimate of ``<H>`` and its standard error (``std / sqrt(trajectories)``).

    Args:
      circ: a noisy `Circuit`.
      obs: a `PauliSum` (scalar results) or a list of them (shape ``(k,)``).
      key: a JAX random key; trajectory ``t`` uses ``jax.random.split(key, trajectories)[t]``.
      trajectories: how many (default 1000).
      diff: ``"backprop"`` (the unbiased pathwise estimator of the module docstring).
    Returns:
      ``(estimate, standard_error)``, each real, of the shape of the result.
    """
    from ._observables import PauliSum
    single = isinstance(obs, PauliSum)
    observables = [obs] if single else list(obs)
    words = tuple(w for o in observables for w in o.words)
    where = "qsim.expectation_with_error"
    if diff not in ("backprop",):
        raise ValueError(f"{where}: diff must be 'backprop' (the standard error of a parameter-shift "
                         f"gradient is not reported), got {diff!r}")
    program, params, static = _trajectory_words(circ, words, key, trajectories, where)
    per = combine_words(observables, _words_jit(program, params, circ._init, key, *static), circ.real_dtype)
    mean, err = per.mean(0), per.std(0, ddof=1) / math.sqrt(per.shape[0])
    return (mean[0], err[0]) if single else (mean, err)


# ------------------------------------------------------------------ dispatch ------

def check_method(method, where):
    method = "density_matrix" if method is None else method
    if method not in METHODS:
        raise ValueError(f"{where}: method must be one of {METHODS} for a noisy circuit, got {method!r}")
    return method


def state(circ, diff, *, key=None, method=None):
    """One trajectory's final state (``method="trajectories"`` with ``key``)."""
    where = "Circuit.state"
    if check_method(method, where) == "density_matrix":
        raise ValueError(f"{where}: a noisy circuit has no single statevector; use density_matrix() for the "
                         "exact state, or state(method='trajectories', key=key) for one trajectory's state")
    _need_key(key, where, "a trajectory's state")
    program, params = trajectory_program(circ)
    return _state_jit(program, params, circ._init, key, circ.n_qubits, circ.dtype, fusion_width(circ),
                      circ.backend, circ.n_clbits)


@functools.partial(jax.jit, static_argnums=(0, 4, 5, 6, 7, 8))
def _state_jit(program, params, init, key, n, dtype, k, backend, n_clbits):
    s, _ = trajectory(program, params, initial(init, n, dtype), key, n_clbits, backend, k)
    return s


def expectations(circ, observables, diff, *, shots=None, key=None, method=None, trajectories=None):
    """``<H>`` of each observable, real ``(len(observables),)``: exact (density matrix) or estimated."""
    where = f"Circuit.expectation(diff={diff!r})"
    method = check_method(method, where)
    words = tuple(w for o in observables for w in o.words)
    if shots is not None:
        from . import _noise_shots
        vals = _noise_shots.word_estimates(circ, words, diff, shots, key, method, where)
    elif method == "density_matrix":
        return _density.expectations(circ, observables, diff)
    else:
        if diff == "adjoint":
            raise ValueError(f"{where}: diff='adjoint' does not apply to trajectories (they are not unitary); "
                             "use diff='backprop' or diff='parameter-shift'")
        program, params, static = _trajectory_words(circ, words, key, trajectories, where)
        if diff == "parameter-shift":
            vals = _shots.values(_Estimator(*static), program, params, circ._init, _trajectory.as_key(key), diff)
        else:
            vals = _words_jit(program, params, circ._init, key, *static).mean(0)
    return combine_words(observables, vals, circ.real_dtype)


def probs(circ, wires, *, shots=None, key=None, method=None, trajectories=None):
    """Probabilities of the final wires: exact, a trajectory mean, or shot frequencies."""
    where = "Circuit.probs"
    method = check_method(method, where)
    if shots is not None:
        ws = tuple(range(circ.n_qubits)) if wires is None else tuple(wires)
        bits = sample(circ, _need_key(key, where, "shots="), shots, ws, method=method)
        idx = jnp.sum(bits << jnp.arange(len(ws) - 1, -1, -1), axis=1)
        return jnp.zeros((1 << len(ws),), circ.real_dtype).at[idx].add(1.0 / shots)
    if method == "density_matrix":
        return circ._marginal(_density.probs(circ), wires)
    p = _trajectory_probs(circ, key, trajectories, where)
    return circ._marginal(p, wires)


def _trajectory_setup(circ, key, trajectories, where):
    """``(count, batch, program, params)`` of a trajectories run, checked (count, key, memory guard)."""
    count = _check_count(trajectories, where)
    _need_key(key, where, "method='trajectories'")
    batch = chunk_size(circ.n_qubits, circ.dtype, count)
    check_memory(circ.n_qubits, circ.dtype, STATES_PER_TRAJECTORY, where, batch=batch)
    return (count, batch) + tuple(trajectory_program(circ))


def _trajectory_probs(circ, key, trajectories, where):
    count, batch, program, params = _trajectory_setup(circ, key, trajectories, where)
    return _probs_jit(program, params, circ._init, key, circ.n_qubits, circ.dtype, fusion_width(circ), circ.backend,
                      circ.n_clbits, count, batch)


@functools.partial(jax.jit, static_argnums=(0, 4, 5, 6, 7, 8, 9, 10))
def _probs_jit(program, params, init, key, n, dtype, k, backend, n_clbits, count, batch):
    state0 = initial(init, n, dtype)

    def one(kk):
        s, _ = trajectory(program, params, state0, kk, n_clbits, backend, k)
        return jnp.real(s) ** 2 + jnp.imag(s) ** 2

    return batched(one, jax.random.split(_trajectory.as_key(key), count), batch).mean(0)


def readout(bits, key, error):
    """``bits`` with each bit flipped (0 -> 1 with ``error[0]``, 1 -> 0 with ``error[1]``)."""
    if error is None:
        return bits
    u = jax.random.uniform(key, bits.shape)
    flip = u < jnp.where(bits == 1, error[1], error[0])
    return jnp.where(flip, 1 - bits, bits).astype(bits.dtype)


def _readout_key(key):
    return jax.random.fold_in(_trajectory.as_key(key), 0x0E17)


def sample(circ, key, shots, wires, *, method=None):
    """``shots`` samples of ``wires`` of the final state (int32 ``(shots, len(wires))``)."""
    method = check_method(method, "Circuit.sample")
    error = getattr(circ, "readout_error", None)
    if method == "density_matrix":
        p = circ._marginal(jnp.clip(_density.probs(circ), 0, None), tuple(wires))
        bits = sample_bits(key, p, shots, len(wires))
    else:
        n = circ.n_qubits
        batch = chunk_size(n, circ.dtype, shots, states=2)
        check_memory(n, circ.dtype, 2, "Circuit.sample", batch=batch)
        program, params = trajectory_program(circ)
        bits = _sample_jit(program, params, circ._init, key, n, circ.dtype, fusion_width(circ), circ.backend,
                           circ.n_clbits, shots, batch, tuple(wires))
    return readout(bits, _readout_key(key), error)


@functools.partial(jax.jit, static_argnums=(0, 4, 5, 6, 7, 8, 9, 10, 11))
def _sample_jit(program, params, init, key, n, dtype, k, backend, n_clbits, shots, batch, wires):
    state0 = initial(init, n, dtype)

    def one(kk):
        run_key, sample_key = jax.random.split(kk)
        s, _ = trajectory(program, params, state0, run_key, n_clbits, backend, k)
        return _shots.sample_wires(s, wires, 1, sample_key)[0]

    return jax.lax.map(one, jax.random.split(_trajectory.as_key(key), shots), batch_size=batch)


def run(circ, key, shots, *, method=None):
    """The classical bits of ``shots`` runs, int32 ``(shots, n_clbits)`` (readout error applied)."""
    method = check_method(method, "Circuit.run")
    error = getattr(circ, "readout_error", None)
    if method == "density_matrix":
        bits = _density.sample_clbits(circ, key, shots)
    else:
        n = circ.n_qubits
        batch = chunk_size(n, circ.dtype, shots, states=2)
        check_memory(n, circ.dtype, 2, "Circuit.run", batch=batch)
        program, params = trajectory_program(circ, keep_measurements=True)
        bits = _run_jit(program, params, circ._init, key, n, circ.dtype, fusion_width(circ), circ.backend,
                        circ.n_clbits, shots, batch)
    return readout(bits, _readout_key(key), error)


@functools.partial(jax.jit, static_argnums=(0, 4, 5, 6, 7, 8, 9, 10))
def _run_jit(program, params, init, key, n, dtype, k, backend, n_clbits, shots, batch):
    state0 = initial(init, n, dtype)

    def one(kk):
        return trajectory(program, params, state0, kk, n_clbits, backend, k)[1]

    return jax.lax.map(one, jax.random.split(_trajectory.as_key(key), shots), batch_size=batch)
