"""Finite-shot estimates: unbiased, with the predicted variance, and unbiased parameter-shift gradients.

Every statistical check runs over K keys at once (``jax.vmap`` over keys) and allows 4 standard
errors (the mean) or 5 standard errors of a sample variance (``sqrt(2 / (K - 1))`` relative,
the estimates being close to normal for these shot counts); keys are fixed, so the tests are
deterministic. Exact values and variances come from dense numpy operators.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from reference import TOL, gate, operator, pauli_sum_dense, pauli_word_dense

import qsim
from qsim import _shots
from qsim.backends import native_cpu

BACKENDS = ["xla"] + (["native"] if native_cpu.available() else [])
N = 3
TERMS = [(((0, "Z"), (1, "Z")), 0.8), (((1, "X"),), 0.5), (((0, "X"), (2, "Y")), -0.3), (((0, "X"), (1, "X")), 0.2),
         ((), 0.1)]
H = 0.8 * qsim.Z(0) @ qsim.Z(1) + 0.5 * qsim.X(1) - 0.3 * qsim.X(0) @ qsim.Y(2) + 0.2 * qsim.X(0) @ qsim.X(1) + 0.1
SPEC = [("ry", (0,), 0), ("rx", (1,), 1), ("cnot", (0, 1), None), ("crx", (1, 2), 2), ("h", (2,), None),
        ("rz", (0,), 0), ("u3", (2,), None)]
T0 = np.array([0.7, -0.4, 1.1])


def build(t, backend="xla", dtype=jnp.complex64):
    c = qsim.Circuit(N, backend=backend, dtype=dtype)
    for name, wires, i in SPEC:
        params = () if i is None else (t[i],)
        if name == "u3":
            params = (0.3, 0.2, 0.1)
        getattr(c, name)(*wires, *params)
    return c


def dense_state(t):
    psi = np.zeros(1 << N, complex)
    psi[0] = 1
    for name, wires, i in SPEC:
        params = () if i is None else (t[i],)
        if name == "u3":
            params = (0.3, 0.2, 0.1)
        psi = operator(N, gate(name, *params), wires) @ psi
    return psi


def exact_and_variance(psi, shots):
    """Exact <H> and the variance of its estimate: sum over qubit-wise commuting groups of Var / shots."""
    words = [w for w, _ in TERMS]
    total = np.vdot(psi, pauli_sum_dense(N, words, [c for _, c in TERMS]) @ psi).real
    var = 0.0
    for g in _shots.qwc_groups(tuple(words)):
        o = sum(TERMS[i][1] * pauli_word_dense(N, TERMS[i][0]) for i in g.members)
        var += (np.vdot(psi, o @ o @ psi) - np.vdot(psi, o @ psi) ** 2).real / shots
    return total, var


def test_qubit_wise_commuting_groups_are_greedy_and_in_order():
    groups = _shots.qwc_groups(tuple(w for w, _ in TERMS))
    assert [g.members for g in groups] == [(0,), (1, 2, 3)]
    assert groups[1].basis == ((0, "X"), (1, "X"), (2, "Y"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_estimate_is_unbiased_with_the_predicted_variance(backend):
    shots, k = 200, 300
    c = build(T0, backend)
    keys = jax.random.split(jax.random.key(0), k)
    est = np.asarray(jax.vmap(lambda key: c.expectation(H, shots=shots, key=key))(keys), np.float64)
    exact, var = exact_and_variance(dense_state(T0), shots)
    assert abs(float(c.expectation(H)) - exact) < TOL[np.complex64]
    assert abs(est.mean() - exact) < 4 * math.sqrt(var / k)
    assert abs(est.var(ddof=1) - var) < 5 * var * math.sqrt(2 / (k - 1))
    one = c.expectation(H, shots=shots, key=keys[3])
    assert float(one) == pytest.approx(float(est[3]), abs=1e-6)                     # reproducible for a key


def test_list_of_observables_and_double_precision():
    c = build(T0, dtype=jnp.complex128)
    got = c.expectation([H, qsim.Z(2)], shots=50, key=jax.random.key(1))
    assert got.shape == (2,) and got.dtype == jnp.float64
    assert abs(float(got[1])) <= 1 and float(got[1]) * 50 % 2 == pytest.approx(0, abs=1e-9)   # a mean of +-1


def test_probs_with_shots_are_frequencies():
    shots, k = 100, 200
    c = build(T0)
    keys = jax.random.split(jax.random.key(2), k)
    freq = np.asarray(jax.vmap(lambda key: c.probs(shots=shots, key=key))(keys))
    p = np.abs(dense_state(T0)) ** 2
    assert np.allclose(freq.sum(1), 1) and np.allclose(freq * shots, np.round(freq * shots))
    assert np.all(np.abs(freq.mean(0) - p) <= 4 * np.sqrt(p * (1 - p) / shots / k) + 1e-12)
    marginal = np.asarray(c.probs(wires=(2, 0), shots=shots, key=keys[0]))
    assert marginal.shape == (4,) and marginal.sum() == pytest.approx(1)


def _exact_grad(t):
    words = [w for w, _ in TERMS]
    h = pauli_sum_dense(N, words, [c for _, c in TERMS])
    f = lambda x: np.vdot(dense_state(x), h @ dense_state(x)).real
    return np.array([(f(t + e) - f(t - e)) / 2e-6 for e in np.eye(3) * 1e-6])


@pytest.mark.parametrize("backend", BACKENDS)
def test_parameter_shift_shot_gradient_is_unbiased(backend):
    shots, k = 100, 100

    def f(t, key):
        return build(t, backend).expectation(H, diff="parameter-shift", shots=shots, key=key)
    grads = np.asarray(jax.vmap(jax.grad(f), in_axes=(None, 0))(jnp.asarray(T0, jnp.float32),
                                                             jax.random.split(jax.random.key(3), k)), np.float64)
    want = _exact_grad(T0)
    se = grads.std(0, ddof=1) / math.sqrt(k)
    assert np.all(np.abs(grads.mean(0) - want) < 4 * se + 1e-6), (grads.mean(0), want, se)
    assert np.all(grads.std(0) > 0)                               # an estimate, not the exact gradient
    value, g = jax.value_and_grad(f)(jnp.asarray(T0, jnp.float32), jax.random.key(9))
    assert float(value) == pytest.approx(float(build(T0, backend).expectation(H, shots=shots,
                                                                              key=jax.random.key(9))), abs=1e-6)


@pytest.mark.parametrize("diff", ["backprop", "adjoint"])
def test_other_gradient_methods_refuse_shots(diff):
    f = lambda t: build(t).expectation(H, diff=diff, shots=10, key=jax.random.key(0))
    assert np.isfinite(float(f(jnp.asarray(T0))))                 # the value itself works
    with pytest.raises(ValueError, match=r"Circuit.expectation: a shots= estimate is differentiated only with "
                                         rf"diff='parameter-shift'.*got diff='{diff}'"):
        jax.grad(f)(jnp.asarray(T0))


def test_parameter_shift_shots_refuses_a_user_matrix_parameter():
    def f(t):
        u = jnp.asarray([[jnp.cos(t), -jnp.sin(t)], [jnp.sin(t), jnp.cos(t)]], jnp.complex64)
        return qsim.Circuit(1).unitary(u, 0).expectation(qsim.Z(0), diff="parameter-shift", shots=10,
                                                         key=jax.random.key(0))
    with pytest.raises(ValueError, match=r"cannot differentiate a parameter with no shift rule"):
        jax.grad(f)(1.0)


def test_jitted_estimate_compiles_once():
    traces = []

    def f(t, key):
        traces.append(1)
        return build(t).expectation(H, shots=64, key=key, diff="parameter-shift")
    g = jax.jit(jax.value_and_grad(f))
    g(jnp.asarray(T0), jax.random.key(0))
    g(jnp.asarray(T0) + 1, jax.random.key(1))
    assert len(traces) == 1


# --- dynamic circuits with shots -----------------------------------------------------------
def _teleport(t):
    c = qsim.Circuit(3).ry(0, t[0]).h(1).cnot(1, 2).cnot(0, 1).h(0).measure(0, 0).measure(1, 1)
    return c.cond([1], 1, lambda c: c.x(2)).cond([0], 1, lambda c: c.z(2).rx(2, t[1]))


def test_dynamic_estimate_and_gradient_are_unbiased():
    shots, k = 100, 100
    obs = qsim.Z(2) + 0.5 * qsim.X(2)
    t0 = jnp.asarray([0.9, 0.4])
    exact = float(_teleport(t0).expectation(obs))
    keys = jax.random.split(jax.random.key(4), k)
    f = lambda t, key: _teleport(t).expectation(obs, shots=shots, key=key, diff="parameter-shift")
    est = np.asarray(jax.vmap(f, in_axes=(None, 0))(t0, keys), np.float64)
    assert abs(est.mean() - exact) < 4 * est.std(ddof=1) / math.sqrt(k)
    grads = np.asarray(jax.vmap(jax.grad(f), in_axes=(None, 0))(t0, keys), np.float64)
    want = np.asarray(jax.grad(lambda t: _teleport(t).expectation(obs))(t0))
    assert np.all(np.abs(grads.mean(0) - want) < 4 * grads.std(0, ddof=1) / math.sqrt(k) + 1e-6)


def test_dephased_wire_gives_fair_coins():
    shots, k = 64, 300
    c = qsim.Circuit(2).h(0).measure(0).cz(0, 1)                  # wire 0 holds its bit: X(0) is a coin
    est = np.asarray(jax.vmap(lambda key: c.expectation(qsim.X(0), shots=shots, key=key))(
        jax.random.split(jax.random.key(5), k)), np.float64)
    assert abs(est.mean()) < 4 * math.sqrt(1 / shots / k)
    assert abs(est.var(ddof=1) - 1 / shots) < 5 * (1 / shots) * math.sqrt(2 / (k - 1))


def test_trajectory_estimate_is_unbiased(monkeypatch):
    """One trajectory per shot (forced; taken when the deferred program would not fit or cost more)."""
    shots, k, rounds = 40, 60, 5
    c = qsim.Circuit(2).ry(0, 0.8)
    for i in range(rounds):
        c.cnot(0, 1).reset(1).rx(1, 0.2 * i).cnot(1, 0).ry(0, 0.3)
    obs = qsim.Z(0) + 0.5 * qsim.X(1)
    exact = _reset_chain_reference(rounds)
    assert abs(float(c.expectation(obs)) - exact) < TOL[np.complex64]     # deferred: exact
    monkeypatch.setattr("qsim._dynamic._fits", lambda d, circ, shots: False)
    est = np.asarray(jax.vmap(lambda key: c.expectation(obs, shots=shots, key=key))(
        jax.random.split(jax.random.key(6), k)), np.float64)
    assert abs(est.mean() - exact) < 4 * est.std(ddof=1) / math.sqrt(k)


def _reset_chain_reference(rounds):
    """The same chain on a density matrix (reset = trace out and re-prepare |0>)."""
    rho = np.zeros((4, 4), complex)
    rho[0, 0] = 1
    ev = lambda u, w: operator(2, u, w)
    rho = ev(gate("ry", 0.8), (0,)) @ rho @ ev(gate("ry", 0.8), (0,)).conj().T
    for i in range(rounds):
        u = ev(gate("cnot"), (0, 1))
        rho = u @ rho @ u.conj().T
        r = rho.reshape(2, 2, 2, 2)
        reduced = np.einsum("ajbj->ab", r)
        rho = np.kron(reduced, np.diag([1.0, 0.0]))
        for g, w in ((gate("rx", 0.2 * i), (1,)), (gate("cnot"), (1, 0)), (gate("ry", 0.3), (0,))):
            u = ev(g, w)
            rho = u @ rho @ u.conj().T
    h = pauli_sum_dense(2, [((0, "Z"),), ((1, "X"),)], [1.0, 0.5])
    return np.trace(rho @ h).real


def test_sampling_and_marginals_of_many_small_probabilities():
    """2^22 outcomes of probability ~2e-7 each: one float32 cumulative sum over all of them drew
    the last bit with frequency 0.125 instead of 0.19, and one reduction lost 1e-3 of a marginal."""
    n = 22
    p = jnp.asarray(np.tile(np.array([0.405, 0.095, 0.405, 0.095], np.float32), 1 << (n - 2)) / (1 << (n - 2)))
    shots = 200_000
    bits = np.asarray(jax.jit(lambda k, p: qsim._simulate.sample_bits(k, p, shots, n))(jax.random.key(0), p))
    assert abs(bits[:, -1].mean() - 0.19) < 5 * math.sqrt(0.19 * 0.81 / shots)
    assert abs(bits[:, 0].mean() - 0.5) < 5 * math.sqrt(0.25 / shots)
    np.testing.assert_allclose(np.asarray(jax.jit(lambda p: _shots._marginal(p, n, (n - 1, 0)))(p)),
                               [0.405, 0.405, 0.095, 0.095], atol=1e-6)
