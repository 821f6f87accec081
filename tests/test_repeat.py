"""`Circuit.repeat`: same numbers as the unrolled circuit, one trace of the layer whatever the depth."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import qsim
from qsim import _fusion

N = 4
TOL = 1e-10  # complex128
OBS = qsim.Z(0) + 0.5 * qsim.X(1) @ qsim.Y(3) - 0.2 * qsim.Z(2) @ qsim.Z(3)


def layer(c, w):
    for q in range(N):
        c.ry(q, w["a"][q, 0]).rz(q, w["a"][q, 1])
    for q in range(N - 1):
        c.cnot(q, q + 1)
    c.crx(0, 3, w["b"])


def weights(n_layers, seed=0):
    rng = np.random.default_rng(seed)
    return {"a": jnp.asarray(rng.uniform(-3, 3, (n_layers, N, 2))), "b": jnp.asarray(rng.uniform(-3, 3, n_layers))}


def scanned(w, diff="backprop", x=0.0):
    c = qsim.Circuit(N, dtype=jnp.complex128).ry(2, x)
    return c.repeat(layer, w).expectation(OBS, diff=diff)


def unrolled(w, x=0.0):
    c = qsim.Circuit(N, dtype=jnp.complex128).ry(2, x)
    for i in range(w["b"].shape[0]):
        layer(c, jax.tree.map(lambda v: v[i], w))
    return c.expectation(OBS)


@pytest.mark.parametrize("diff", ["backprop", "adjoint", "parameter-shift"])
def test_repeat_matches_unrolled_value_and_grad(diff):
    w = weights(3)
    v, g = jax.value_and_grad(scanned)(w, diff)
    rv, rg = jax.value_and_grad(unrolled)(w)
    np.testing.assert_allclose(v, rv, atol=TOL)
    for k in g:
        np.testing.assert_allclose(g[k], rg[k], atol=TOL)


def test_closed_over_input_gets_its_gradient():
    """A layer closing over a traced input (data re-uploading) passes the cotangent back to it."""
    w = weights(2)

    def f(x, diff):
        def lay(c, p):
            layer(c, p)
            c.rx(1, x * p["b"])
        return qsim.Circuit(N, dtype=jnp.complex128).repeat(lay, w).expectation(OBS, diff=diff)

    ref = jax.grad(f)(0.3, "backprop")
    eps = 1e-6
    fd = (f(0.3 + eps, "backprop") - f(0.3 - eps, "backprop")) / (2 * eps)
    np.testing.assert_allclose(ref, fd, atol=1e-8)
    np.testing.assert_allclose(jax.grad(f)(0.3, "adjoint"), ref, atol=TOL)


@pytest.mark.parametrize("n_layers", [2, 50])
@pytest.mark.parametrize("diff", ["backprop", "adjoint"])
def test_layer_traced_once_whatever_the_depth(n_layers, diff):
    traces = []

    def counting_layer(c, w):
        traces.append(1)
        layer(c, w)

    step = jax.jit(jax.value_and_grad(
        lambda w: qsim.Circuit(N).repeat(counting_layer, w).expectation(OBS, diff=diff)))
    w = jax.tree.map(lambda v: v.astype(jnp.float32), weights(n_layers))
    jax.block_until_ready(step(w))
    first = len(traces)
    jax.block_until_ready(step(jax.tree.map(lambda v: v + 1, w)))
    assert len(traces) == first          # no retrace on the second call
    assert first <= 3                    # record + scan body (+ backward body), not n_layers


def test_fusion_inside_repeat_reduces_passes():
    c = qsim.Circuit(N).repeat(layer, weights(5))
    program, _ = c.program
    assert _fusion.count_passes(program, 4) < _fusion.count_passes(program, 0)


def test_repeat_errors():
    c = qsim.Circuit(2)
    with pytest.raises(ValueError, match="same leading"):
        c.repeat(lambda c, w: c.rx(0, w["a"]), {"a": jnp.zeros(3), "b": jnp.zeros(4)})
    with pytest.raises(ValueError, match="out of range"):
        c.repeat(lambda c, w: c.rx(5, w), jnp.zeros(3))


@pytest.mark.parametrize("diff", ["backprop", "adjoint"])
def test_short_repeat_on_a_streaming_state_joins_the_native_program(diff):
    """On the native kernels a repeat of a few layers is written out into one program at every
    size, 17 qubits included (the state streams from memory there): one call and no scan; value
    and gradient equal the pure-JAX kernels'."""
    from qsim import _ir, _scan, backends

    if not backends.native_cpu.available():
        pytest.skip("native kernels not built")
    n = 17

    def hea(c, w):
        for q in range(n):
            c.ry(q, w[q, 0]).rz(q, w[q, 1])
        for q in range(n - 1):
            c.cnot(q, q + 1)

    def f(w, x, backend):
        c = qsim.Circuit(n, backend=backend)
        for q in range(n):
            c.ry(q, x[q])
        c.repeat(hea, w)
        return c, c.expectation(qsim.Z(0) + qsim.Z(n - 1), diff=diff)

    rng = np.random.default_rng(7)
    w, x = jnp.asarray(rng.uniform(-1, 1, (3, n, 2)), jnp.float32), jnp.asarray(rng.uniform(-1, 1, n), jnp.float32)
    circ, _ = f(w, x, "native")
    program, params = circ.program
    lowered, _ = _scan.to_native(program, params, np.complex64, backends.NATIVE, n)
    assert [type(op) for op in lowered] == [_ir.ProgramOp]
    got = jax.jit(jax.value_and_grad(lambda w: f(w, x, "native")[1]))(w)
    ref = jax.jit(jax.value_and_grad(lambda w: f(w, x, "xla")[1]))(w)
    assert abs(float(got[0]) - float(ref[0])) < 1e-4
    np.testing.assert_allclose(np.asarray(got[1]), np.asarray(ref[1]), atol=1e-4)
