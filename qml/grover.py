"""Grover search (Grover 1996) over ``N = 2**n`` basis states with ``M`` marked ones.

Start in ``|s> = H^n |0>``; each iteration applies the oracle
``O = I - 2 sum_{m marked} |m><m|`` then the diffusion ``D = 2|s><s| - I`` (up to
a global phase). With ``sin(theta) = sqrt(M / N)`` the probability of measuring a
marked state after k iterations is ``sin^2((2k + 1) theta)``, largest near
``k = floor(pi/4 sqrt(N/M))``.

The oracle flips the phase of each marked ``|m>`` with X gates on its zero bits
around a multi-controlled Z (`Circuit.controlled`); no 2^n x 2^n matrix is built.
The k iterations are one `Circuit.repeat`.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import qsim

__all__ = ["circuit", "optimal_iterations", "search", "success_probability"]

_Z = np.diag([1.0, -1.0])


def _marked(n_qubits, marked, where):
    if isinstance(n_qubits, bool) or not isinstance(n_qubits, (int, np.integer)) or n_qubits < 1:
        raise ValueError(f"{where}: n_qubits must be a positive int, got {n_qubits!r}")
    marked = sorted({int(m) for m in np.atleast_1d(marked).tolist()})
    if not marked or marked[0] < 0 or marked[-1] >= 1 << n_qubits:
        raise ValueError(f"{where}: marked must be distinct basis indices in 0..{(1 << n_qubits) - 1}, got {marked}")
    return marked


def optimal_iterations(n_qubits, n_marked=1):
    """``floor(pi/4 * sqrt(N / M))`` iterations, ``N = 2**n_qubits``, ``M = n_marked``."""
    return int(math.floor(math.pi / 4 * math.sqrt((1 << n_qubits) / n_marked)))


def success_probability(n_qubits, n_marked, iterations):
    """Closed form ``sin^2((2k + 1) theta)`` with ``sin(theta) = sqrt(M / N)``."""
    theta = math.asin(math.sqrt(n_marked / (1 << n_qubits)))
    return math.sin((2 * iterations + 1) * theta) ** 2


def _phase_flip(c, bits):
    """``I - 2|bits><bits|`` on all wires: X on the zero bits, multi-controlled Z, X again."""
    n = c.n_qubits
    zeros = [w for w in range(n) if not bits[w]]
    for w in zeros:
        c.x(w)
    if n == 1:
        c.z(0)
    else:
        c.controlled(_Z, tuple(range(n - 1)), (n - 1,))
    for w in zeros:
        c.x(w)


def circuit(n_qubits, marked, iterations=None, *, dtype=None):
    """The Grover circuit: ``iterations`` (default `optimal_iterations`) rounds of oracle and diffusion.

    Args: marked: an int or a list of basis indices (wire 0 = most significant bit).
    Returns: a `qsim.Circuit`. Raises: ValueError for bad indices or a negative iteration count.
    """
    where = "grover.circuit"
    marked = _marked(n_qubits, marked, where)
    k = optimal_iterations(n_qubits, len(marked)) if iterations is None else iterations
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
        raise ValueError(f"{where}: iterations must be a non-negative int, got {iterations!r}")
    bits = [[(m >> (n_qubits - 1 - w)) & 1 for w in range(n_qubits)] for m in marked]
    c = qsim.Circuit(n_qubits, dtype=dtype)
    for w in range(n_qubits):
        c.h(w)

    def iteration(c, _):
        for b in bits:                      # oracle
            _phase_flip(c, b)
        for w in range(n_qubits):           # diffusion: H (I - 2|0><0|) H = -(2|s><s| - I)
            c.h(w)
        _phase_flip(c, [0] * n_qubits)
        for w in range(n_qubits):
            c.h(w)

    if k:
        c.repeat(iteration, jnp.zeros((int(k),)))
    return c


def search(n_qubits, marked, iterations=None):
    """Run Grover search; return the probability of measuring a marked state (real scalar).

    Example:
      >>> float(search(4, 5))              # 3 iterations: sin^2(7 asin(1/4)) = 0.9613
    """
    marked = _marked(n_qubits, marked, "grover.search")
    return jnp.sum(circuit(n_qubits, marked, iterations).probs()[jnp.asarray(marked)])
