"""Unitaries as exact sequences of ``qelib1.inc`` gates (for ``to_qasm``).

Each function returns ``(gates, phase)``: ``gates`` a list of ``(qelib1 name,
local wires, params)`` with local wire 0 the unitary's most significant bit,
applied in list order, and ``phase`` the global phase ``alpha`` left over
(the unitary is ``e^{i alpha}`` times the product of the gates).

- one qubit: ``U = e^{i alpha} u3(theta, phi, lam)`` (ZYZ angles);
- one control, one target: ``cu(theta, phi, lam, gamma)``, exact (no phase left);
- a diagonal on one or two qubits: ``p`` and ``cp`` phases;
- two qubits: the cosine-sine decomposition ``U = (A0 ⊕ A1) (Ry multiplexed) (B0 ⊕ B1)``,
  each ``A0 ⊕ A1`` (selected by the first qubit) as ``u3`` on the second then ``cu``;
- a constant that qelib1 names under controls (``cx``, ``ccx``, ``c3x``, ``c4x``, ``ch``, ``csx``,
  ``c3sqrtx``, ``cy``, ``cswap``, ``rccx``, ``rc3x``) by that name.
"""

from __future__ import annotations

import cmath
import math

import numpy as np

from .qelib1 import CONTROLLED

_ATOL = 1e-9


def zyz(u: np.ndarray) -> tuple[float, float, float, float]:
    """``(theta, phi, lam, alpha)`` with ``u = e^{i alpha} u3(theta, phi, lam)`` for a 2x2 unitary ``u``.

    ``u3 = e^{i(phi+lam)/2} rz(phi) ry(theta) rz(lam)`` and ``v = u / sqrt(det u)`` is
    ``rz(phi) ry(theta) rz(lam) = [[e^{-i(phi+lam)/2} c, .], [e^{i(phi-lam)/2} s, .]]``.
    """
    root = cmath.sqrt(np.linalg.det(u))
    a, b = u[0, 0] / root, u[1, 0] / root
    theta = 2 * math.atan2(abs(b), abs(a))
    total = -2 * cmath.phase(a) if abs(a) > _ATOL else 0.0      # phi + lam
    diff = 2 * cmath.phase(b) if abs(b) > _ATOL else 0.0        # phi - lam
    phi, lam = (total + diff) / 2, (total - diff) / 2
    return theta, phi, lam, cmath.phase(root) - total / 2


def one_qubit(u):
    theta, phi, lam, alpha = zyz(u)
    return [("u3", (0,), (theta, phi, lam))], alpha


def controlled_one(u):
    """``u`` on local wire 1 where local wire 0 is 1: one ``cu`` (its gamma carries u's phase)."""
    theta, phi, lam, alpha = zyz(u)
    return [("cu", (0, 1), (theta, phi, lam, alpha))], 0.0


def diagonal(d: np.ndarray):
    """``diag(d)`` on one or two qubits: ``p`` on each, ``cp`` for the |11> part."""
    alpha = cmath.phase(d[0])
    rel = [cmath.phase(x) - alpha for x in d]
    if len(d) == 2:
        return [("p", (0,), (rel[1],))], alpha
    a, b = rel[2], rel[1]
    return [("p", (0,), (a,)), ("p", (1,), (b,)), ("cp", (0, 1), (rel[3] - a - b,))], alpha


def two_qubit(u: np.ndarray):
    """Any 4x4 unitary: cosine-sine decomposition into u3, cu, ry and cx gates."""
    from scipy.linalg import cossin     # scipy comes with jax

    (a0, a1), angles, (b0, b1) = cossin(u, p=2, q=2, separate=True)
    first, alpha_b = _multiplexed(b0, b1)
    last, alpha_a = _multiplexed(a0, a1)
    t0, t1 = angles
    middle = [("ry", (0,), (t0 + t1,)), ("cx", (1, 0), ()), ("ry", (0,), (t0 - t1,)), ("cx", (1, 0), ())]
    return first + middle + last, alpha_a + alpha_b


def _multiplexed(m0, m1):
    """``m0`` on local wire 1 where wire 0 is 0, ``m1`` where it is 1: u3(m0), then cu(m1 m0^dagger)."""
    theta, phi, lam, alpha = zyz(m0)
    (cu,), _ = controlled_one(m1 @ m0.conj().T)
    return [("u3", (1,), (theta, phi, lam)), cu], alpha


def controlled(u: np.ndarray, n_controls: int):
    """``u`` under ``n_controls`` controls, when qelib1 has it; None otherwise."""
    for name, (m, controls) in CONTROLLED.items():
        if controls == n_controls and m.shape == u.shape and np.allclose(u, m, atol=_ATOL):
            return [(name, tuple(range(n_controls + int(math.log2(len(m))))), ())], 0.0
    if n_controls == 1 and u.shape == (2, 2):
        return controlled_one(u)
    if n_controls == 0:
        return unitary(u)
    return None


def unitary(u: np.ndarray):
    """Any unitary on one or two qubits; None for more."""
    if u.shape == (2, 2):
        return one_qubit(u)
    if u.shape == (4, 4):
        return two_qubit(u)
    return None
