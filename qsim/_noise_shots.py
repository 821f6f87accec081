"""Finite-shot estimates of Pauli words for noisy circuits (``expectation(H, shots=, key=)``).

As for a noiseless circuit (`_shots`): the words are split into qubit-wise commuting
groups, each measured with its own ``shots`` samples in its basis (group ``g`` draws from
``fold_in(key, g)``), a word's estimate is the mean of its parity. The samples come from
the exact density matrix (``method="density_matrix"``: rho rotated into the group's basis,
``U`` on its rows and ``conj(U)`` on its columns, then its diagonal) or, with
``method="trajectories"``, one trajectory per shot. A readout error flips the sampled bits.
``diff="parameter-shift"`` differentiates the estimate (each shifted circuit with its own
keys: `_shots.values`).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from . import _density, _shots, _trajectory, _unravel
from ._simulate import sample_bits
from ._validate import check_shots

_TO_BASIS = {"X": np.array([[1, 1], [1, -1]]) / np.sqrt(2),
             "Y": np.array([[1, 1], [1, -1]]) / np.sqrt(2) @ np.diag([1, -1j])}


def _flip(bits, key, error):
    from ._noise import readout
    return readout(bits, key, error)


class _DensityEstimator:
    """``(program, params, init, key) -> word estimates`` from the exact rho (hashable)."""

    def __init__(self, *static):
        self.static = static        # n_wires, dtype, k, backend, remat, reduce, words, shots, readout

    def __call__(self, program, params, init, key):
        n_wires, dtype, k, backend, remat, reduce, words, shots, error = self.static
        rho = _density.run(program, params, init, n_wires, dtype, k, backend, remat, reduce)
        n = n_wires if reduce is None else len(reduce[0])
        groups = _shots.qwc_groups(words)
        per_group = []
        for g, group in enumerate(groups):
            r = rho
            for w, p in group.basis:
                if p != "Z":
                    u = jnp.asarray(_TO_BASIS[p], rho.dtype)
                    r = backend.apply_dense(backend.apply_dense(r, u, (w,)), jnp.conj(u), (w + n,))
            probs = _shots._marginal(jnp.clip(_density.diagonal(r, n), 0, None), n, tuple(w for w, _ in group.basis))
            gkey = jax.random.fold_in(key, g)
            bits = _flip(sample_bits(jax.random.fold_in(gkey, 0), probs, shots, len(group.basis)),
                         jax.random.fold_in(gkey, 1), error)
            per_group.append(_shots.parities(bits, group, words, rho.real.dtype))
        return _shots.assemble(words, groups, per_group, rho.real.dtype)

    def __eq__(self, other):
        return isinstance(other, _DensityEstimator) and other.static == self.static

    def __hash__(self):
        return hash(self.static)


class _TrajectoryEstimator:
    """``(program, params, init, key) -> word estimates``, one trajectory per shot (hashable)."""

    def __init__(self, *static):
        self.static = static        # n, dtype, k, backend, n_clbits, words, shots, batch, readout

    def __call__(self, program, params, init, key):
        n, dtype, k, backend, n_clbits, words, shots, batch, error = self.static
        state0 = jnp.zeros((1 << n,), dtype).at[0].set(1) if init is None else init
        groups = _shots.qwc_groups(words)
        per_group = []
        for g, group in enumerate(groups):
            def one(kk, group=group):
                run_key, sample_key = jax.random.split(kk)
                s, _ = _unravel.trajectory(program, params, state0, run_key, n_clbits, backend, k)
                return _shots.sample_group(s, group, 1, sample_key, backend)[0]
            gkey = jax.random.fold_in(key, g)
            bits = jax.lax.map(one, jax.random.split(jax.random.fold_in(gkey, 0), shots), batch_size=batch)
            bits = _flip(bits, jax.random.fold_in(gkey, 1), error)
            per_group.append(_shots.parities(bits, group, words, jnp.finfo(dtype).dtype))
        return _shots.assemble(words, groups, per_group, jnp.finfo(dtype).dtype)

    def __eq__(self, other):
        return isinstance(other, _TrajectoryEstimator) and other.static == self.static

    def __hash__(self):
        return hash(self.static)


@functools.partial(jax.jit, static_argnums=(0, 1, 5))
def _values_jit(estimator, program, params, init, key, diff):
    return _shots.values(estimator, program, params, init, key, diff)


def word_estimates(circ, words, diff, shots, key, method, where):
    """Shot estimates of each word's ``<P>`` (real ``(len(words),)``), differentiable by parameter shift."""
    from . import _noise
    from ._simulate import fusion_width
    shots = check_shots(shots, where)
    key = _trajectory.as_key(_noise._need_key(key, where, "shots="))
    error = getattr(circ, "readout_error", None)
    k = fusion_width(circ)
    if method == "density_matrix":
        j, k, remat = _density._prepare(circ, "backprop" if diff == "parameter-shift" else diff, where)
        est = _DensityEstimator(j.n_wires, circ.dtype, k, circ.backend, remat, j.reduce, words, shots, error)
        return _values_jit(est, j.program, j.params, j.init, key, diff)
    if diff == "adjoint":
        raise ValueError(f"{where}: diff='adjoint' does not apply to trajectories; use diff='parameter-shift'")
    n = circ.n_qubits
    batch = _unravel.chunk_size(n, circ.dtype, shots, states=2)
    program, params = _unravel.trajectory_program(circ)
    est = _TrajectoryEstimator(n, circ.dtype, k, circ.backend, circ.n_clbits, words, shots, batch, error)
    return _values_jit(est, program, params, circ._init, key, diff)
