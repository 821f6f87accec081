"""QAOA (Farhi, Goldstone, Gutmann 2014) for MaxCut and other diagonal (Ising) cost Hamiltonians.

``|gamma, beta> = prod_{l=1..p} exp(-i beta_l B) exp(-i gamma_l C) |+>^n`` with
the cost ``C`` a `qsim.PauliSum` of Z words (diagonal) and the mixer
``B = sum_i X_i``. The p layers are one `Circuit.repeat` over
``(gammas, betas)``, so compile time does not grow with p. The optimiser
minimises ``<C>``; MaxCut's cost is minus the cut (PennyLane's convention):

    C = sum_{(i,j) in E} w_ij (Z_i Z_j - 1) / 2,    <z|C|z> = -cut(z).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import qsim

from . import vqe

__all__ = ["QAOAResult", "ansatz", "cost_layer", "cut_values", "diagonal", "maxcut_hamiltonian",
           "mixer_layer", "optimize", "qubo_hamiltonian"]


def _edges(edges, weights, where):
    edges = [tuple(int(v) for v in e) for e in edges]
    if not edges or any(len(e) != 2 or e[0] == e[1] or min(e) < 0 for e in edges):
        raise ValueError(f"{where}: edges must be a non-empty list of pairs (i, j) of distinct "
                         f"non-negative ints, got {edges}")
    weights = np.ones(len(edges)) if weights is None else np.asarray(weights, float)
    if weights.shape != (len(edges),):
        raise ValueError(f"{where}: weights must have one entry per edge ({len(edges)}), got shape {weights.shape}")
    return edges, weights


def _z_sum(terms):
    """A Z-only `qsim.PauliSum` from ``[(wires, coeff)]`` (built in one go: no per-term device ops)."""
    terms = [t for t in terms if not t[0] or t[1] != 0]           # zero terms would only add gates
    words = tuple(tuple((w, "Z") for w in sorted(wires)) for wires, _ in terms)
    return qsim.PauliSum(words, np.array([float(c) for _, c in terms]))


def maxcut_hamiltonian(edges, weights=None):
    """The MaxCut cost ``C = sum w_ij (Z_i Z_j - 1) / 2`` (``<z|C|z> = -cut(z)``), a `qsim.PauliSum`.

    Args: edges: list of pairs ``(i, j)``; weights: optional ``(len(edges),)`` edge weights (default 1).
    """
    edges, weights = _edges(edges, weights, "qaoa.maxcut_hamiltonian")
    return _z_sum([((), -0.5 * weights.sum())] + [((i, j), 0.5 * w) for (i, j), w in zip(edges, weights)])


def qubo_hamiltonian(Q, linear=None, offset=0.0):
    """The Ising form of ``f(x) = x^T Q x + linear . x + offset`` over ``x`` in {0, 1}^n.

    With ``x_i = (1 - Z_i) / 2`` (bit 1 <-> Z = -1), ``<z|H|z> = f(z)`` for every basis state.

    Args: Q: shape ``(n, n)`` real (symmetrised). linear: shape ``(n,)`` (default 0). offset: a constant.
    Returns: a Z-only `qsim.PauliSum` on wires 0..n-1.
    """
    Q = np.asarray(Q, float)
    n = Q.shape[0]
    if Q.ndim != 2 or Q.shape != (n, n):
        raise ValueError(f"qaoa.qubo_hamiltonian: Q must be a square matrix, got shape {Q.shape}")
    lin = np.zeros(n) if linear is None else np.asarray(linear, float)
    if lin.shape != (n,):
        raise ValueError(f"qaoa.qubo_hamiltonian: linear must have shape ({n},), got {lin.shape}")
    S = (Q + Q.T) / 2
    off = S - np.diag(np.diag(S))
    terms = [((), offset + np.sum(np.diag(S) + lin) / 2 + np.sum(off) / 4)]
    terms += [((i,), -(S[i, i] + lin[i]) / 2 - np.sum(off[i]) / 2) for i in range(n)]
    terms += [((i, j), S[i, j] / 2) for i in range(n) for j in range(i + 1, n)]
    return _z_sum(terms)


def cut_values(edges, n_qubits, weights=None):
    """Brute force: the cut of every basis state, numpy ``(2**n_qubits,)`` (wire 0 = most significant bit)."""
    edges, weights = _edges(edges, weights, "qaoa.cut_values")
    bits = (np.arange(1 << n_qubits)[:, None] >> np.arange(n_qubits - 1, -1, -1)) & 1
    return sum(w * (bits[:, i] != bits[:, j]) for (i, j), w in zip(edges, weights))


def _z_terms(hamiltonian, where):
    """``[(wires, coeff)]`` of a Z-only PauliSum; ValueError for any X or Y."""
    if not isinstance(hamiltonian, qsim.PauliSum):
        raise TypeError(f"{where}: hamiltonian must be a qsim.PauliSum, got {type(hamiltonian).__name__}")
    if any(p != "Z" for word in hamiltonian.words for _, p in word):
        raise ValueError(f"{where}: the cost Hamiltonian must be diagonal (Z words only), got words "
                         f"{hamiltonian.words}")
    try:
        coeffs = np.real(np.asarray(hamiltonian.coeffs))      # concrete: plain numbers, no device ops per term
    except jax.errors.TracerArrayConversionError:
        coeffs = jnp.real(hamiltonian.coeffs)                 # traced coefficients (e.g. vmapped problems)
    return [(tuple(w for w, _ in word), coeffs[k]) for k, word in enumerate(hamiltonian.words)]


def diagonal(hamiltonian, n_qubits):
    """The diagonal ``<z|C|z>`` of a Z-only PauliSum, numpy ``(2**n_qubits,)`` (for brute force)."""
    bits = (np.arange(1 << n_qubits)[:, None] >> np.arange(n_qubits - 1, -1, -1)) & 1
    out = np.zeros(1 << n_qubits)
    for wires, coeff in _z_terms(hamiltonian, "qaoa.diagonal"):
        out += float(coeff) * np.prod(1 - 2 * bits[:, list(wires)], axis=1)
    return out


def cost_layer(c, gamma, hamiltonian):
    """``exp(-i gamma C)`` for a Z-only `qsim.PauliSum` C (identity terms are a global phase, skipped).

    ``Z_i`` -> ``rz(i, 2 gamma c)``; ``Z_i Z_j`` -> ``rzz(i, j, 2 gamma c)``; longer words use a CNOT ladder.
    """
    for wires, coeff in _z_terms(hamiltonian, "qaoa.cost_layer"):
        angle = 2 * gamma * coeff
        if len(wires) == 1:
            c.rz(wires[0], angle)
        elif len(wires) == 2:
            c.rzz(wires[0], wires[1], angle)
        elif len(wires) > 2:
            for a, b in zip(wires[:-1], wires[1:]):
                c.cnot(a, b)
            c.rz(wires[-1], angle)
            for a, b in reversed(list(zip(wires[:-1], wires[1:]))):
                c.cnot(a, b)
    return c


def mixer_layer(c, beta, wires=None):
    """``exp(-i beta sum_i X_i)`` = ``rx(2 beta)`` on each wire (default: all)."""
    for w in range(c.n_qubits) if wires is None else wires:
        c.rx(w, 2 * beta)
    return c


def ansatz(hamiltonian):
    """``f(c, params)`` preparing the QAOA state; ``params = (gammas, betas)``, each of shape ``(p,)``."""
    _z_terms(hamiltonian, "qaoa.ansatz")

    def prepare(c, params):
        for w in range(c.n_qubits):
            c.h(w)

        def layer(c, gb):
            cost_layer(c, gb[0], hamiltonian)
            mixer_layer(c, gb[1])

        return c.repeat(layer, (jnp.asarray(params[0]), jnp.asarray(params[1])))

    return prepare


class QAOAResult(NamedTuple):
    params: tuple          # (gammas (p,), betas (p,))
    energy: jax.Array      # () final <C>
    history: np.ndarray    # (steps,) <C> before each update
    probs: jax.Array       # (2**n,) probabilities of the final state


def optimize(hamiltonian, n_qubits, depth, *, steps=100, optimizer=None, params0=None, ramp=0.3,
             diff="backprop", dtype=None, callback=None):
    """Optimise the ``depth``-layer QAOA angles for a Z-only cost with optax (see `vqe.minimize`).

    Initial angles, unless ``params0 = (gammas, betas)`` is given: a linear ramp like a
    discretised annealing schedule, ``gamma_l = ramp t_l / max_k |c_k|`` and
    ``beta_l = ramp (1 - t_l)`` with ``t_l = (l + 1/2) / p`` and ``c_k`` the non-constant
    coefficients of the cost. Default optimiser: ``optax.adam(0.05)``.

    Returns: `QAOAResult`; ``jnp.argmax(result.probs)`` is the most likely bitstring.
    Raises: ValueError for a non-diagonal cost or a bad depth.
    """
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or depth < 1:
        raise ValueError(f"qaoa.optimize: depth must be a positive int, got {depth!r}")
    terms = [abs(float(coeff)) for wires, coeff in _z_terms(hamiltonian, "qaoa.optimize") if wires]
    if params0 is None:
        t = (jnp.arange(depth, dtype=jnp.float32) + 0.5) / depth
        params0 = (ramp * t / max(terms + [1e-12]), ramp * (1 - t))
    prep = ansatz(hamiltonian)
    res = vqe.minimize(prep, hamiltonian, params0, n_qubits, optimizer=optax.adam(0.05) if optimizer is None
                       else optimizer, steps=steps, diff=diff, dtype=dtype, callback=callback)
    c = prep(qsim.Circuit(n_qubits, dtype=dtype), res.params)
    return QAOAResult(res.params, res.energy, res.history, c.probs())
