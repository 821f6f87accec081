"""States that start in |0...0>: the projector put first (`qsim._product_start`) and the native
runner's product layers (csrc/product_layer.cpp), against the pure-JAX reference executor, the
pure-JAX backend and float64 finite differences. Tolerances: 1e-5 (complex64), 1e-10
(complex128), scaled by the reference's magnitude.
"""

from __future__ import annotations

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import qsim  # noqa: E402
from qsim import _product_start, _scan  # noqa: E402
from qsim.backends import NATIVE, XLA  # noqa: E402
from qsim.backends import native_cpu as _native  # noqa: E402

from test_native import DTYPES, assert_close, random_state, random_unitary  # noqa: E402

native_only = pytest.mark.skipif(
    not _native.available(), reason=f"native kernels unavailable: {_native.why_unavailable()}")


def product_program(rng, n):
    """``(code, coefs)``: on every wire |0><0| then a random unitary (one fused step each: the
    product layer), a CNOT chain as one linear step, then a layer of random unitaries."""
    code, flat = [], []

    def coef(a):
        flat.append(np.asarray(a, complex).reshape(-1))
        return sum(f.size for f in flat) - flat[-1].size

    for w in rng.permutation(n):
        members = [_native.encode_step(_native.DIAGONAL, (0,), (), None, coef([1.0, 0.0])),
                   _native.encode_step(_native.DENSE, (0,), (), None, coef(random_unitary(rng, 1)))]
        code += _native.steps.encode_fused((int(w),), members)
    code += _native.steps.encode_linear(tuple(range(n)), tuple((1 << (n - 1 - j)) | (1 << (n - 2 - j)) if j < n - 1
                                                                 else 1 for j in range(n)))
    for w in range(n):
        code += _native.encode_step(_native.DENSE, (w,), (), None, coef(random_unitary(rng, 1)))
    return tuple(code), np.concatenate(flat)


@native_only
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n, batch", [(3, 5), (9, 1), (12, 3), (17, 1)])
def test_product_layer_against_the_reference_executor(dtype, n, batch):
    """A layer on every wire whose matrices have a zero second column is the rank-one map
    ``x -> x[0] f_1 (x) ... (x) f_n``: the runners build it forwards and sweep it by contraction
    (one state over the threads from 17 qubits, a batch state by state, one state gate by gate),
    from ANY input state, not only |0...0>. Forward, inverse, transpose, and the sweep's
    (x, g_x, ct) with per-state coefficients, against the pure-JAX executor, which runs the
    projector as an ordinary diagonal. (The sweep recovers the input x[0] |0...0>, and the
    coefficient cotangent is taken there: a rank-one map forgets the rest of x.)"""
    from qsim.backends.native_cpu import reference
    from qsim.backends.native_cpu.primitives import program_p, sweep_p

    rng = np.random.default_rng(n)
    code, coefs = product_program(rng, n)
    code = _native.primitives._for_size(code, 1 << n)
    steps = _native.steps.decode(code)
    xs = jnp.asarray(random_state(rng, n, dtype, batch=(batch,)))
    cs = jnp.asarray(np.stack([coefs * np.exp(0.4j * b) for b in range(batch)]).astype(dtype))
    ref = jax.jit(jax.vmap(lambda s, c, mode: reference.run_code(s, c, steps, mode), in_axes=(0, 0, None)),
                  static_argnums=2)
    for mode in (0, 1, 2):
        got = jax.jit(lambda s, c: program_p.bind(s, c, code=code, mode=mode))(xs, cs)
        assert_close(got, ref(xs, cs, mode), dtype, scale=4)
    y = ref(xs, cs, 0)
    g = jnp.asarray(random_state(rng, n, dtype, batch=(batch,)))
    x_back, g_x, ct = jax.jit(lambda y, g, c: sweep_p.bind(y, g, c, code=code, want_ct=1))(y, g, cs)
    x_in = ref(y, cs, 1)   # the input the sweep recovers: x[0] |0...0> (the layer has rank one)
    _, vjp = jax.vjp(lambda k: jax.vmap(lambda s, kk: reference.run_code(s, kk, steps))(x_in, k), cs)
    want = vjp(g)[0]
    assert_close(x_back, x_in, dtype, scale=4)
    assert abs(float(jnp.abs(x_back[:, 1:]).max())) == 0.0
    assert_close(g_x, ref(g, cs, 2), dtype, scale=4)
    assert_close(ct, want, dtype, scale=float(jnp.abs(want).max()))


def encoded_hea(n, layers, x, w, backend, dtype=None):
    """Angle encoding of ``x`` then ``layers`` of RY, RZ on every wire and a CNOT chain."""
    c = qsim.Circuit(n, backend=backend, dtype=dtype)
    for i in range(n):
        c.ry(i, x[i])
    for layer in range(layers):
        for i in range(n):
            c.ry(i, w[layer, i, 0]).rz(i, w[layer, i, 1])
        for i in range(n - 1):
            c.cnot(i, i + 1)
    return c


def cost(n, layers, diff, backend, dtype=jnp.complex128):
    obs = sum((qsim.Z(i) for i in range(1, n)), qsim.Z(0)) + 0.5 * qsim.X(n // 2)

    def one(w, x):
        return encoded_hea(n, layers, x, w, backend, dtype).expectation(obs, diff=diff)

    return one


@native_only
def test_projector_goes_first_where_every_wire_starts_with_a_one_qubit_gate():
    """On the native backend every wire gets |0><0| first when each wire's first gate is a
    one-qubit gate of the first native run (into a repeat written out into it too); not when a
    wire starts with a CNOT, not on the pure-JAX backend, not with a user's initial state."""
    n = 4
    w = jnp.zeros((2, n, 2))
    x = jnp.zeros(n)
    c = encoded_hea(n, 2, x, w, "native")
    program, params = c.program
    new, new_params = _product_start.with_projector(program, params, NATIVE, n)
    assert len(new) == len(program) + n and len(new_params) == len(new)
    assert [op.gate for op in new[:n]] == [_product_start.PROJECT_ZERO] * n
    assert {op.wires for op in new[:n]} == {(i,) for i in range(n)}
    assert _product_start.with_projector(program, params, XLA, n)[0] == tuple(program)
    late = qsim.Circuit(n).ry(0, 0.1).ry(1, 0.2).ry(2, 0.3).cnot(2, 3).ry(3, 0.4)
    assert _product_start.with_projector(*late.program, NATIVE, n)[0] == tuple(late.program[0])
    body = qsim.Circuit(n)
    body.repeat(lambda c, t: [c.ry(i, t[i]) for i in range(n)] and c.cnot(0, 1), jnp.zeros((3, n)))
    assert len(_product_start.with_projector(*body.program, NATIVE, n)[0]) == len(body.program[0]) + n
    # the projector joins each wire's first gates: the lowered program starts with the product layer
    lowered, _ = _scan.to_native(new, new_params, jnp.complex64, NATIVE, n)
    first = _native.steps.decode(_native.primitives._for_size(lowered[0].code, 1 << n))[:n]
    assert all(s.kind == _native.steps.FUSED_DENSE and s.members[0].kind == _native.DIAGONAL for s in first)


@native_only
@pytest.mark.parametrize("n, batch", [(5, 6), (9, 1), (13, 3)])
def test_encoded_circuit_values_and_gradients_against_pure_jax(n, batch):
    """An angle-encoded HEA from |0...0>, batched with vmap: value and weight gradient by
    backprop and adjoint on the native backend (product layer first) equal the pure-JAX
    backend's (complex128, 1e-10), and the adjoint gradient equals float64 finite differences."""
    rng = np.random.default_rng(n)
    layers = 2
    w = jnp.asarray(rng.uniform(-2, 2, (layers, n, 2)))
    xs = jnp.asarray(rng.uniform(-2, 2, (batch, n)))

    def loss(diff, backend):
        f = cost(n, layers, diff, backend)
        return jax.jit(jax.value_and_grad(lambda w: jnp.sum(jax.vmap(lambda x: f(w, x))(xs) ** 2)))

    ref_v, ref_g = loss("backprop", "xla")(w)
    for diff in ("backprop", "adjoint"):
        v, g = loss(diff, "native")(w)
        assert abs(float(v) - float(ref_v)) < 1e-10 * max(1.0, abs(float(ref_v))), diff
        np.testing.assert_allclose(np.asarray(g), np.asarray(ref_g), atol=1e-10 * max(1.0, float(jnp.abs(ref_g).max())))
    f = jax.jit(lambda w: jnp.sum(jax.vmap(lambda x: cost(n, layers, "adjoint", "native")(w, x))(xs) ** 2))
    eps, flat = 1e-6, np.asarray(w).ravel()
    for i in rng.permutation(flat.size)[:4]:
        d = np.zeros_like(flat)
        d[i] = eps
        fd = (float(f(jnp.asarray((flat + d).reshape(w.shape)))) - float(f(jnp.asarray((flat - d).reshape(w.shape))))) / (2 * eps)
        assert abs(fd - float(np.asarray(ref_g).ravel()[i])) < 1e-6 * max(1.0, abs(fd))


@native_only
@pytest.mark.parametrize("dtype", [jnp.complex64, jnp.complex128])
def test_forward_mode_and_hessian_through_the_product_layer(dtype):
    """jvp, jacfwd and the Hessian (forward over reverse) of the encoded HEA on the native
    backend equal the pure-JAX backend's, in both dtypes, and the state itself too."""
    n, layers = 6, 2
    rng = np.random.default_rng(7)
    w = jnp.asarray(rng.uniform(-2, 2, (layers, n, 2)))
    x = jnp.asarray(rng.uniform(-2, 2, n))
    tol = 1e-5 if dtype == jnp.complex64 else 1e-10

    def value(backend, diff="adjoint"):
        obs = qsim.Z(0) + 0.7 * qsim.Z(n - 1) + 0.5 * qsim.X(2)
        return lambda w: encoded_hea(n, layers, x, w, backend, dtype).expectation(obs, diff=diff)

    for diff in ("backprop", "adjoint"):
        got = jax.jit(jax.hessian(value("native", diff)))(w)
        want = jax.jit(jax.hessian(value("xla", "backprop")))(w)
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=tol * 10)
        jf = jax.jit(jax.jacfwd(value("native", diff)))(w)
        np.testing.assert_allclose(np.asarray(jf), np.asarray(jax.grad(value("xla", "backprop"))(w)), atol=tol * 10)
    t = jnp.asarray(rng.normal(size=w.shape))
    _, got = jax.jvp(value("native"), (w,), (t,))
    _, want = jax.jvp(value("xla"), (w,), (t,))
    assert abs(float(got) - float(want)) < tol * 10
    s_native = encoded_hea(n, layers, x, w, "native", dtype).state()
    s_xla = encoded_hea(n, layers, x, w, "xla", dtype).state()
    assert_close(s_native, s_xla, dtype, scale=4)
