"""Every JAX transform on every path: one conformance suite over backends and gradient methods.

For a random 3-qubit circuit using every parametrised gate of the table (parameters
shared between gates and scaled), ``grad``, ``jacrev``, ``jacfwd``, ``jvp``,
``linearize``, ``hessian``, ``jacrev(jacrev)``, ``vmap``, ``jit`` and
``checkpoint`` (and compositions such as ``jit(vmap(hessian))``) of
``expectation``, ``probs`` and ``state`` are checked against float64 central finite
differences of a dense numpy simulation (``tests/reference.py``), on the native and
the pure-JAX backends and for every ``diff`` method, the same through ``repeat``.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from reference import gate, operator, pauli_sum_dense

import qsim
from qsim.backends import native_cpu

BACKENDS = ["xla"] + (["native"] if native_cpu.available() else [])
METHODS = ["backprop", "adjoint", "parameter-shift"]
N = 3
# (name, wires, [(theta index, scale, offset) per parameter]); h and cnot keep it entangled
SPEC = [
    ("h", (0,), []), ("rx", (0,), [(0, 1.0, 0.1)]), ("ry", (1,), [(1, 1.0, 0.0)]),
    ("rz", (2,), [(2, 0.7, 0.3)]), ("cnot", (0, 1), []), ("u3", (2,), [(3, 1.0, 0.0), (0, 0.5, 0.2), (1, -1.0, 0.0)]),
    ("crx", (1, 2), [(2, 1.0, 0.0)]), ("rzz", (0, 2), [(3, 2.0, 0.0)]), ("phase", (1,), [(0, 1.0, 0.0)]),
    ("cry", (2, 0), [(1, 1.3, 0.0)]), ("u2", (0,), [(2, 1.0, 0.0), (3, 1.0, 0.5)]), ("rxx", (1, 2), [(0, 1.0, 0.0)]),
    ("crz", (0, 1), [(3, 0.8, 0.0)]), ("ryy", (0, 1), [(2, 1.0, 0.0)]), ("cphase", (2, 1), [(1, 1.0, 0.0)]),
]
THETA = np.array([0.31, -0.72, 1.13, 0.48])
H_TERMS = [(((0, "Z"), (1, "Z")), 1.0), (((1, "X"),), 0.5), (((2, "Y"), (0, "X")), -0.3)]
H = 1.0 * qsim.Z(0) @ qsim.Z(1) + 0.5 * qsim.X(1) - 0.3 * qsim.Y(2) @ qsim.X(0)
H_DENSE = pauli_sum_dense(N, [w for w, _ in H_TERMS], [c for _, c in H_TERMS])


def build(theta, backend, c=None):
    c = c if c is not None else qsim.Circuit(N, dtype=jnp.complex128, backend=backend)
    for name, wires, ps in SPEC:
        getattr(c, name)(*wires, *[s * theta[i] + o for i, s, o in ps])
    return c


def dense_state(theta):
    psi = np.zeros(1 << N, complex)
    psi[0] = 1
    for name, wires, ps in SPEC:
        psi = operator(N, gate(name, *[s * theta[i] + o for i, s, o in ps]), wires) @ psi
    return psi


def dense_expectation(theta):
    psi = dense_state(theta)
    return float(np.real(np.vdot(psi, H_DENSE @ psi)))


def fd_jacobian(f, x, h=1e-5):
    cols = [(np.asarray(f(x + h * e)) - np.asarray(f(x - h * e))) / (2 * h) for e in np.eye(len(x))]
    return np.stack(cols, axis=-1)


def fd_hessian(f, x, h=1e-4):
    return fd_jacobian(lambda y: fd_jacobian(f, y, h), x, h)


def expectation_fn(backend, diff):
    return lambda t: build(t, backend).expectation(H, diff=diff)


@pytest.fixture(scope="module")
def refs():
    return {"grad": fd_jacobian(dense_expectation, THETA), "hess": fd_hessian(dense_expectation, THETA)}


@pytest.mark.parametrize("diff", METHODS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_first_order_transforms_of_expectation(backend, diff, refs):
    f = expectation_fn(backend, diff)
    t = jnp.asarray(THETA)
    want = refs["grad"]
    v = jnp.asarray([0.3, -1.0, 0.5, 2.0])

    @jax.jit
    def all_first_order(t, v):
        _, lin = jax.linearize(f, t)
        return (f(t), jax.grad(f)(t), jax.jacrev(f)(t), jax.jacfwd(f)(t), jax.jvp(f, (t,), (v,))[1],
                lin(v), jax.grad(jax.checkpoint(f))(t))

    value, *grads, jvp, lin, ckpt = all_first_order(t, v)
    np.testing.assert_allclose(float(value), dense_expectation(THETA), atol=1e-10)
    for g in grads + [ckpt]:
        np.testing.assert_allclose(g, want, atol=1e-7)
    np.testing.assert_allclose(jvp, want @ np.asarray(v), atol=1e-7)
    np.testing.assert_allclose(lin, want @ np.asarray(v), atol=1e-7)


@pytest.mark.parametrize("diff", METHODS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_hessians_of_expectation(backend, diff, refs):
    f = expectation_fn(backend, diff)
    t = jnp.asarray(THETA)
    want = refs["hess"]
    hessians = jax.jit(lambda t: (jax.hessian(f)(t), jax.jacrev(jax.jacrev(f))(t), jax.jacfwd(jax.jacfwd(f))(t)))
    for h in hessians(t):
        np.testing.assert_allclose(h, want, atol=1e-6)


@pytest.mark.parametrize("diff", METHODS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_jit_vmap_hessian_composition(backend, diff):
    f = expectation_fn(backend, diff)
    batch = THETA[None, :] + np.array([[0.0], [0.4], [-0.9]])
    got = jax.jit(jax.vmap(jax.hessian(f)))(jnp.asarray(batch))
    for row, g in zip(batch, got):
        np.testing.assert_allclose(g, fd_hessian(dense_expectation, row), atol=1e-6)
    grads = jax.vmap(jax.grad(f))(jnp.asarray(batch))
    for row, g in zip(batch, grads):
        np.testing.assert_allclose(g, fd_jacobian(dense_expectation, row), atol=1e-7)


@pytest.mark.parametrize("diff", ["backprop", "adjoint"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_state_and_probs_jacobians(backend, diff):
    t = jnp.asarray(THETA)

    def state(x):
        return build(x, backend).state(diff=diff)

    def probs(x):
        return jnp.abs(state(x)) ** 2

    want_state = fd_jacobian(dense_state, THETA)
    want_probs = fd_jacobian(lambda x: np.abs(dense_state(x)) ** 2, THETA)
    want_hess = fd_hessian(lambda x: np.abs(dense_state(x)) ** 2, THETA)
    got = jax.jit(lambda t: (jax.jacfwd(state)(t), jax.jacrev(lambda x: jnp.real(state(x)))(t),
                             jax.jacrev(lambda x: jnp.imag(state(x)))(t), jax.jacfwd(probs)(t),
                             jax.jacrev(probs)(t), jax.jacfwd(lambda x: build(x, backend).probs())(t),
                             jax.hessian(probs)(t)))(t)
    for g, want in zip(got, [want_state, want_state.real, want_state.imag, want_probs, want_probs,
                             want_probs, want_hess]):
        np.testing.assert_allclose(g, want, atol=1e-6 if want.ndim == 3 else 1e-7)


def _layer(c, w):
    for q in range(N):
        c.ry(q, w[q, 0]).rz(q, 0.5 * w[q, 1])
    c.crx(0, 1, w[0, 0] * w[1, 1])
    for q in range(N - 1):
        c.cnot(q, q + 1)


def _dense_repeat(w):
    psi = np.zeros(1 << N, complex)
    psi[0] = 1
    for layer in w.reshape(-1, N, 2):
        for q in range(N):
            psi = operator(N, gate("ry", layer[q, 0]), (q,)) @ psi
            psi = operator(N, gate("rz", 0.5 * layer[q, 1]), (q,)) @ psi
        psi = operator(N, gate("crx", layer[0, 0] * layer[1, 1]), (0, 1)) @ psi
        for q in range(N - 1):
            psi = operator(N, gate("cnot"), (q, q + 1)) @ psi
    return float(np.real(np.vdot(psi, H_DENSE @ psi)))


@pytest.mark.parametrize("diff", METHODS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_transforms_through_repeat(backend, diff):
    w0 = np.random.default_rng(3).uniform(-1, 1, (3, N, 2))

    def f(w):
        c = qsim.Circuit(N, dtype=jnp.complex128, backend=backend)
        return c.repeat(_layer, w).expectation(H, diff=diff)

    flat = lambda x: _dense_repeat(np.asarray(x))  # noqa: E731
    w = jnp.asarray(w0)
    want_g = fd_jacobian(flat, w0.ravel()).reshape(w0.shape)
    for g in jax.jit(lambda w: (jax.grad(f)(w), jax.jacfwd(f)(w)))(w):
        np.testing.assert_allclose(g, want_g, atol=1e-7)
    want_h = fd_hessian(flat, w0.ravel())
    got_h = jax.jit(jax.hessian(f))(w).reshape(w0.size, w0.size)
    np.testing.assert_allclose(got_h, want_h, atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_vmap_over_inputs_with_shared_weights_and_complex64(backend):
    """x64 stays on here, but the circuit is complex64: the default precision's tolerance."""
    xs = jnp.asarray(np.random.default_rng(4).uniform(-1, 1, (5, N)), jnp.float32)
    t = jnp.asarray(THETA, jnp.float32)

    def f(w, x):
        c = qsim.Circuit(N, backend=backend)
        for q in range(N):
            c.ry(q, x[q])
        return build(w, backend, c).expectation(H)

    def loss(w):
        return jnp.sum(jax.vmap(f, in_axes=(None, 0))(w, xs) ** 2)

    def dense_loss(w):
        total = 0.0
        for x in np.asarray(xs, float):
            psi = np.zeros(1 << N, complex)
            psi[0] = 1
            for q in range(N):
                psi = operator(N, gate("ry", x[q]), (q,)) @ psi
            for name, wires, ps in SPEC:
                psi = operator(N, gate(name, *[s * w[i] + o for i, s, o in ps]), wires) @ psi
            total += float(np.real(np.vdot(psi, H_DENSE @ psi))) ** 2
        return total

    for g in jax.jit(lambda t: (jax.grad(loss)(t), jax.jacfwd(loss)(t)))(t):
        np.testing.assert_allclose(g, fd_jacobian(dense_loss, THETA), atol=2e-5)


def test_pennylane_hessian_agrees():
    pennylane = pytest.importorskip("pennylane")
    dev = pennylane.device("default.qubit", wires=2)

    @pennylane.qnode(dev, interface="jax", diff_method="backprop")
    def circuit(t):
        pennylane.RY(t[0], wires=0)
        pennylane.RX(t[1], wires=1)
        pennylane.CNOT(wires=[0, 1])
        pennylane.RZ(t[2], wires=1)
        pennylane.CRY(t[0] * t[1], wires=[1, 0])
        return pennylane.expval(pennylane.PauliZ(0) @ pennylane.PauliZ(1) + 0.5 * pennylane.PauliX(1))

    hq = qsim.Z(0) @ qsim.Z(1) + 0.5 * qsim.X(1)
    t = jnp.asarray([0.4, -0.3, 0.9])
    want = jax.hessian(circuit)(t)
    for backend in BACKENDS:
        for diff in METHODS:   # noqa: B007 (closed over below, called at once)
            def f(t):
                c = qsim.Circuit(2, dtype=jnp.complex128, backend=backend)
                c.ry(0, t[0]).rx(1, t[1]).cnot(0, 1).rz(1, t[2]).cry(1, 0, t[0] * t[1])
                return c.expectation(hq, diff=diff)
            np.testing.assert_allclose(jax.jit(jax.hessian(f))(t), want, atol=1e-8, err_msg=f"{backend} {diff}")


def test_compile_cache_does_not_grow_on_eager_calls():
    from qsim import _simulate

    def run(a):
        c = qsim.Circuit(3).rx(0, a).cnot(0, 1)

        def layer(c, w):            # a fresh closure on every call, as users write it
            c.ry(1, w[0]).rz(2, w[1]).cnot(1, 2)
        c.repeat(layer, jnp.full((4, 2), a))
        return c.expectation(qsim.Z(2)), c.state()

    run(0.1)
    sizes = (_simulate._state_jit._cache_size(), _simulate._words_jit._cache_size())
    for a in (0.2, 0.3, 0.4):
        run(a)
    assert (_simulate._state_jit._cache_size(), _simulate._words_jit._cache_size()) == sizes


@pytest.mark.parametrize("backend", BACKENDS)
def test_metric_tensor_against_the_dense_formula(backend):
    def circuit_fn(t):
        return build(t, backend)

    g = qsim.metric_tensor(circuit_fn, jnp.asarray(THETA))
    psi = dense_state(THETA)
    d = fd_jacobian(dense_state, THETA)
    want = np.real(d.conj().T @ d - np.outer(d.conj().T @ psi, psi.conj() @ d))
    np.testing.assert_allclose(g, want, atol=1e-8)
    np.testing.assert_allclose(g, g.T, atol=1e-12)
    assert np.linalg.eigvalsh(np.asarray(g)).min() > -1e-10


def test_metric_tensor_pytree_params_and_pennylane():
    pennylane = pytest.importorskip("pennylane")
    params = {"a": jnp.asarray([0.3, -0.5]), "b": jnp.asarray(1.1)}

    def circuit_fn(p):
        c = qsim.Circuit(2, dtype=jnp.complex128)
        c.h(0).h(1).rx(0, p["a"][0]).cphase(0, 1, p["b"]).u3(1, p["a"][1], p["b"], 0.2).crx(1, 0, p["a"][0])
        return c

    g = qsim.metric_tensor(circuit_fn, params)
    dev = pennylane.device("default.qubit", wires=2)

    @pennylane.qnode(dev, interface="autograd")   # its jax path breaks on jax 0.10 (jax.core.TraceTag)
    def node(x):
        pennylane.Hadamard(0)
        pennylane.Hadamard(1)
        pennylane.RX(x[0], wires=0)
        pennylane.ControlledPhaseShift(x[2], wires=[0, 1])
        pennylane.U3(x[1], x[2], 0.2, wires=1)
        pennylane.CRX(x[0], wires=[1, 0])
        return pennylane.expval(pennylane.PauliZ(0))

    want = pennylane.adjoint_metric_tensor(node)(pennylane.numpy.array([0.3, -0.5, 1.1], requires_grad=True))
    want = np.asarray(want)
    np.testing.assert_allclose(g, want, atol=1e-8)


def test_qng_step_and_nnx_optimizer():
    import optax
    from flax import nnx

    import qml

    hq = qsim.Z(0) + 0.5 * qsim.X(1) @ qsim.X(0)

    def circuit_fn(w):
        return qsim.Circuit(2, dtype=jnp.complex128).ry(0, w[0]).ry(1, w[1]).cnot(0, 1).rx(0, w[2])

    def loss(w):
        return circuit_fn(w).expectation(hq)

    w = jnp.asarray([0.4, -0.2, 0.7])
    tx = qml.optim.qng(circuit_fn, learning_rate=0.1, regularization=1e-3)
    state = tx.init(w)
    updates, state = jax.jit(tx.update)(jax.grad(loss)(w), state, w)
    g = np.asarray(qsim.metric_tensor(circuit_fn, w))
    want = -0.1 * np.linalg.solve(g + 1e-3 * np.eye(3), np.asarray(jax.grad(loss)(w)))
    np.testing.assert_allclose(updates, want, atol=1e-9)
    with pytest.raises(ValueError, match="needs params"):
        tx.update(jax.grad(loss)(w), state)

    class Model(nnx.Module):
        def __init__(self):
            self.w = nnx.Param(w)

    model = Model()
    opt = nnx.Optimizer(model, qml.optim.qng(lambda p: circuit_fn(p.w), 0.1), wrt=nnx.Param)
    start = float(loss(model.w[...]))
    for _ in range(5):
        grads = nnx.grad(lambda m: loss(m.w[...]))(model)
        opt.update(model, grads)
    assert float(loss(model.w[...])) < start - 0.1
    assert isinstance(optax.GradientTransformation, type)
