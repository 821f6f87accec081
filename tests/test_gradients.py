"""The three gradient methods against each other and against float64 finite differences."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import qsim

METHODS = ("backprop", "adjoint", "parameter-shift")
C128_TOL = 1e-9      # gradients in complex128 (FD with step 1e-6 is accurate to ~1e-9)
C64_TOL = 2e-5       # between methods at complex64: sums of ~30 float32 terms

H = (0.7 * qsim.Z(0) @ qsim.Z(1) - 0.4 * qsim.X(2) + 0.3 * qsim.Y(1) @ qsim.X(3)
     + 0.2 * qsim.Y(0) + 0.5 * qsim.Z(3) - 0.1)


def every_gate_circuit(t, x, dtype=jnp.complex128, **kw):
    """Every parametrised gate, a shared parameter (t[0]) and input-dependent angles."""
    c = qsim.Circuit(4, dtype=dtype, **kw)
    c.h(0).rx(1, t[0]).ry(2, t[1]).rz(3, t[2]).phase(0, t[3])
    c.u3(1, t[4], t[5], t[6]).u2(2, t[7], t[8]).u1(3, t[0])
    c.crx(0, 1, t[9]).cry(1, 2, t[10]).crz(3, 0, t[11]).cphase(2, 3, t[12])
    c.rxx(0, 2, t[13]).ryy(1, 3, t[14]).rzz(3, 1, t[15])
    c.cnot(0, 3).ry(0, jnp.sin(x[0]) * t[1]).rx(2, x[1] * t[0]).toffoli(0, 1, 2).cswap(3, 0, 1)
    c.cz(1, 2).iswap(0, 1).sx(3).t(2).cy(2, 0)
    return c


def loss(t, x, diff, dtype=jnp.complex128, **kw):
    return every_gate_circuit(t, x, dtype, **kw).expectation(H, diff=diff)


def central_fd(f, t, eps=1e-6):
    t = np.asarray(t, np.float64)
    g = np.zeros_like(t)
    for i in range(t.size):
        e = np.zeros_like(t)
        e[i] = eps
        g[i] = (f(t + e) - f(t - e)) / (2 * eps)
    return g


@pytest.fixture(scope="module")
def point():
    rng = np.random.default_rng(7)
    return rng.uniform(-np.pi, np.pi, 16), rng.uniform(-1, 1, 2)


@pytest.mark.parametrize("diff", METHODS)
def test_grad_matches_finite_differences_float64(point, diff):
    t, x = point
    f = jax.jit(lambda t: loss(t, x, "backprop"))
    ref = central_fd(lambda v: float(f(v)), t)
    got = jax.jit(jax.grad(lambda t: loss(t, x, diff)))(jnp.asarray(t))
    np.testing.assert_allclose(got, ref, atol=C128_TOL)


@pytest.mark.parametrize("diff", METHODS[1:])
def test_methods_agree_complex64_and_input_gradient(point, diff):
    t, x = point
    ref_t, ref_x = jax.grad(lambda t, x: loss(t, x, "backprop", jnp.complex64), (0, 1))(t, x)
    got_t, got_x = jax.jit(jax.grad(lambda t, x: loss(t, x, diff, jnp.complex64), (0, 1)))(t, x)
    np.testing.assert_allclose(got_t, ref_t, atol=C64_TOL)
    np.testing.assert_allclose(got_x, ref_x, atol=C64_TOL)  # cotangent flows into the inputs


@pytest.mark.parametrize("diff", METHODS)
def test_value_and_grad_under_vmap(point, diff):
    t, _ = point
    xs = jnp.asarray(np.random.default_rng(3).uniform(-1, 1, (5, 2)))
    vg = jax.jit(jax.vmap(jax.value_and_grad(lambda t, x: loss(t, x, diff)), in_axes=(None, 0)))
    vals, grads = vg(jnp.asarray(t), xs)
    for i in range(xs.shape[0]):
        v, g = jax.value_and_grad(lambda t: loss(t, xs[i], "backprop"))(jnp.asarray(t))
        np.testing.assert_allclose(vals[i], v, atol=C128_TOL)
        np.testing.assert_allclose(grads[i], g, atol=C128_TOL)


@pytest.mark.parametrize("diff", METHODS)
def test_user_matrices_and_initial_state(diff):
    """Traced user matrices (no shift rule) and a traced initial state get exact cotangents."""
    rng = np.random.default_rng(11)
    psi = rng.normal(size=8) + 1j * rng.normal(size=8)
    psi = jnp.asarray(psi / np.linalg.norm(psi))
    obs = qsim.X(0) @ qsim.Z(2) + 0.5 * qsim.Y(1)
    gen = jnp.asarray([[0.3, 1 - 0.2j], [1 + 0.2j, -0.5]])

    def f(a, psi, method):
        u = jax.scipy.linalg.expm(1j * a * gen)
        c = qsim.Circuit(3, state=psi, dtype=jnp.complex128).ry(1, a).controlled(u, (1,), (0,))
        return c.unitary(jnp.kron(u, u), (2, 0)).rx(2, 2 * a).expectation(obs, diff=method)

    ga, gpsi = jax.jit(jax.grad(f, (0, 1)), static_argnums=2)(0.37, psi, diff)
    ra, rpsi = jax.grad(f, (0, 1))(0.37, psi, "backprop")
    np.testing.assert_allclose(ga, ra, atol=C128_TOL)
    np.testing.assert_allclose(gpsi, rpsi, atol=C128_TOL)
    fd = central_fd(lambda v: float(f(v[0], psi, "backprop")), np.array([0.37]))
    np.testing.assert_allclose(ga, fd[0], atol=C128_TOL)


def test_jitted_value_and_grad_compiles_once(point):
    t, x = point
    traces = []

    def f(t):
        traces.append(1)
        return loss(t, x, "adjoint")

    step = jax.jit(jax.value_and_grad(f))
    for k in range(3):
        jax.block_until_ready(step(jnp.asarray(t) + k))
    assert len(traces) == 1


def test_fusion_does_not_change_gradients(point):
    t, x = point
    g0 = jax.grad(lambda t: loss(t, x, "adjoint", max_fused_qubits=0))(jnp.asarray(t))
    for k in (2, 3, 5):
        gk = jax.grad(lambda t: loss(t, x, "adjoint", max_fused_qubits=k))(jnp.asarray(t))
        np.testing.assert_allclose(gk, g0, atol=C128_TOL)


def test_bad_diff_method():
    with pytest.raises(ValueError, match="diff must be one of"):
        qsim.Circuit(1).expectation(qsim.Z(0), diff="finite")
