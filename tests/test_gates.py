"""Every gate of the table (and the aliases) against its closed form from the SPEC.

A gate's unitary is read off the simulator by running the circuit on every basis
state (``Circuit(k, state=e_j)`` gives column j) and compared with the matrix in
`reference` (written independently from qsim's table, controls first).
"""

import jax.numpy as jnp
import numpy as np
import pytest

import qsim
from reference import (DTYPES, REFERENCE_GATES, TOL, controlled, gate, operator, random_unitary)

ALIASES = ("cx", "ccx", "u1")
NAMES = tuple(sorted(qsim.GATES)) + ALIASES


def circuit_unitary(n, dtype, build):
    """Columns ``build(Circuit(n, state=e_j)).state()`` stacked: the circuit's unitary."""
    cols = []
    for j in range(1 << n):
        e = np.zeros(1 << n, dtype)
        e[j] = 1
        psi = build(qsim.Circuit(n, state=e, dtype=dtype)).state()
        assert psi.dtype == dtype and psi.shape == (1 << n,)
        cols.append(np.asarray(psi))
    return np.stack(cols, axis=1)


def angles(name):
    """Fixed random angles for a gate (seeded by its name), in [-2pi, 2pi]."""
    n_params = REFERENCE_GATES[name][1]
    return tuple(np.random.default_rng(sum(map(ord, name))).uniform(-2 * np.pi, 2 * np.pi, n_params))


def test_reference_table_covers_gate_table():
    assert set(qsim.GATES) <= set(REFERENCE_GATES)
    for name, g in qsim.GATES.items():
        n_wires, n_params, _ = REFERENCE_GATES[name]
        assert (g.n_wires, g.n_params) == (n_wires, n_params), name


@pytest.mark.parametrize("name", NAMES)
def test_every_gate_has_a_circuit_method_returning_the_circuit(name):
    n_wires, n_params, _ = REFERENCE_GATES[name]
    c = qsim.Circuit(n_wires)
    assert getattr(c, name)(*range(n_wires), *angles(name)) is c
    assert c.n_ops == 1


@pytest.mark.parametrize("dtype", DTYPES, ids=["c64", "c128"])
@pytest.mark.parametrize("name", NAMES)
def test_gate_matches_closed_form(name, dtype):
    n_wires, _, _ = REFERENCE_GATES[name]
    params = angles(name)
    got = circuit_unitary(n_wires, dtype, lambda c: getattr(c, name)(*range(n_wires), *params))
    np.testing.assert_allclose(got, gate(name, *params), atol=TOL[dtype])


@pytest.mark.parametrize("name", ["cnot", "crz", "rxx", "iswap", "toffoli", "cswap"])
def test_gate_on_reversed_and_shifted_wires(name):
    """The gate's first wire is the MSB of its matrix wherever the wires are placed.

    (Every gate also runs on random wires in test_circuit's every-gate circuit.)
    """
    n_wires, _, _ = REFERENCE_GATES[name]
    n = n_wires + 1
    wires = tuple(range(n - 1, 0, -1))            # e.g. cnot(2, 1) in 3 qubits: skips wire 0
    params = angles(name)
    got = circuit_unitary(n, np.complex128, lambda c: getattr(c, name)(*wires, *params))
    np.testing.assert_allclose(got, operator(n, gate(name, *params), wires), atol=TOL[np.complex128])


@pytest.mark.parametrize("theta", [0.0, np.pi, -np.pi / 2, 3 * np.pi])
def test_rotation_special_angles(theta):
    """Periodicity 4 pi and sign conventions: rx(pi) = -iX, rz(2 pi) = -I, u3(t, -pi/2, pi/2) = rx(t)."""
    got = circuit_unitary(1, np.complex128, lambda c: c.rx(0, theta))
    np.testing.assert_allclose(got, np.cos(theta / 2) * np.eye(2) - 1j * np.sin(theta / 2) * gate("x"),
                               atol=1e-12)
    got = circuit_unitary(1, np.complex128, lambda c: c.u3(0, theta, -np.pi / 2, np.pi / 2))
    np.testing.assert_allclose(got, gate("rx", theta), atol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES, ids=["c64", "c128"])
@pytest.mark.parametrize("wires", [(1,), (1, 0), (2, 0), (0, 2, 1), (2, 1, 0)])
def test_unitary_random(rng, wires, dtype):
    n = 3
    u = random_unitary(rng, len(wires))
    got = circuit_unitary(n, dtype, lambda c: c.unitary(u.astype(dtype), wires))
    np.testing.assert_allclose(got, operator(n, u, wires), atol=TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES, ids=["c64", "c128"])
@pytest.mark.parametrize("controls,targets", [((0,), (1,)), ((2,), (0,)), ((1,), (2, 0)),
                                              ((2, 0), (1,)), ((0, 3), (2, 1)), ((3, 1, 2), (0,))])
def test_controlled_random(rng, controls, targets, dtype):
    n = 4
    u = random_unitary(rng, len(targets))
    got = circuit_unitary(n, dtype, lambda c: c.controlled(u.astype(dtype), controls, targets))
    ref = operator(n, controlled(u, len(controls)), controls + targets)
    np.testing.assert_allclose(got, ref, atol=TOL[dtype])


@pytest.mark.parametrize("controls,targets", [((), (1, 0)), ((0,), (2,)), ((2, 0), (1,)), ((1,), (2, 0))])
def test_diagonal_user_matrices(rng, controls, targets):
    """Concrete diagonal matrices take a diagonal fast path; the result must not change."""
    n = 3
    u = np.diag(np.exp(1j * rng.uniform(-np.pi, np.pi, 1 << len(targets))))
    if controls:
        got = circuit_unitary(n, np.complex128, lambda c: c.controlled(u, controls, targets))
    else:
        got = circuit_unitary(n, np.complex128, lambda c: c.unitary(u, targets))
    ref = operator(n, controlled(u, len(controls)), controls + targets)
    np.testing.assert_allclose(got, ref, atol=TOL[np.complex128])


def test_permutation_user_matrix():
    """A user permutation matrix (here a 3-cycle of basis states on two wires) is applied as given."""
    u = np.eye(4)[[1, 2, 0, 3]].astype(complex)
    got = circuit_unitary(3, np.complex128, lambda c: c.unitary(u, (2, 0)))
    np.testing.assert_allclose(got, operator(3, u, (2, 0)), atol=1e-12)


@pytest.mark.parametrize("name", ["crx", "toffoli", "cswap"])
def test_controlled_gates_match_controlled_method(name):
    """``c.<controlled gate>(ctrl..., tgt...)`` equals ``c.controlled(base, ctrl, tgt)``."""
    n_wires, _, _ = REFERENCE_GATES[name]
    params = angles(name)
    full = gate(name, *params)
    n_ctrl = 2 if name == "toffoli" else 1
    base = full[-(full.shape[0] >> n_ctrl):, -(full.shape[0] >> n_ctrl):]
    wires = tuple(range(n_wires))[::-1]
    a = circuit_unitary(n_wires, np.complex128, lambda c: getattr(c, name)(*wires, *params))
    b = circuit_unitary(n_wires, np.complex128,
                        lambda c: c.controlled(base, wires[:n_ctrl], wires[n_ctrl:]))
    np.testing.assert_allclose(a, b, atol=1e-12)


def test_parameters_accept_python_numpy_and_jax_scalars():
    ref = gate("ry", 0.7)
    for theta in (0.7, np.float32(0.7), np.float64(0.7), jnp.asarray(0.7), jnp.asarray(0.7, jnp.float32)):
        got = circuit_unitary(1, np.complex64, lambda c: c.ry(0, theta))
        np.testing.assert_allclose(got, ref, atol=TOL[np.complex64])
    got = circuit_unitary(1, np.complex128, lambda c: c.rz(0, 2))   # python int
    np.testing.assert_allclose(got, gate("rz", 2.0), atol=1e-12)
