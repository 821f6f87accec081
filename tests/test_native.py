"""Native CPU kernels (qsim._native, C++ through the XLA FFI) against independent references.

References written here: dense ``2^n x 2^n`` operators built with ``np.kron``
and an axis permutation (n <= 8), and pure-jnp einsum kernels for larger n and
for ``jax.vjp``. Every kernel, every kind of wire placement (adjacent,
reversed, far apart, high/low, inside one SIMD vector), k = 1..5, both dtypes,
batching through ``jax.vmap`` and reverse-mode derivatives.
"""

from __future__ import annotations

import os
import subprocess
import sys

import jax

jax.config.update("jax_enable_x64", True)  # process-wide; fine in tests (conftest does it too)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from qsim.backends import native_cpu as _native  # noqa: E402

pytestmark = pytest.mark.skipif(
    not _native.available(), reason=f"native kernels unavailable: {_native.why_unavailable()}")

TOL = {np.complex64: 1e-5, np.complex128: 1e-10}
DTYPES = (np.complex64, np.complex128)


# ------------------------------------------------------------ references ------

def random_state(rng, n, dtype, batch=()):
    shape = tuple(batch) + (2**n,)
    return (rng.normal(size=shape) + 1j * rng.normal(size=shape)).astype(dtype)


def random_matrix(rng, k, dtype, batch=()):
    dim = 2**k
    shape = tuple(batch) + (dim, dim)
    return ((rng.normal(size=shape) + 1j * rng.normal(size=shape)) / np.sqrt(dim)).astype(dtype)


def random_unitary(rng, k):
    q, r = np.linalg.qr(random_matrix(rng, k, np.complex128))
    return q * (np.diag(r) / np.abs(np.diag(r)))


def full_operator(n, u, targets, controls=()):
    """The 2^n x 2^n operator of ``u`` on ``targets`` (controlled by ``controls``), by kron."""
    targets, controls = list(targets), list(controls)
    k, c = len(targets), len(controls)
    block = np.eye(2 ** (k + c), dtype=complex)
    block[-(2**k):, -(2**k):] = u  # controls are the leading (most significant) bits
    rest = [w for w in range(n) if w not in targets + controls]
    op = np.kron(block, np.eye(2 ** len(rest)))
    order = controls + targets + rest          # wire of each kron axis
    axes = [order.index(w) for w in range(n)]  # kron axis of each wire
    op = op.reshape((2,) * (2 * n)).transpose(axes + [a + n for a in axes])
    return op.reshape(2**n, 2**n)


def perm_matrix(perm):
    p = np.zeros((len(perm), len(perm)), dtype=complex)
    p[np.arange(len(perm)), perm] = 1  # out[j] = in[perm[j]]
    return p


def einsum_dense(state, u, targets, controls=()):
    """Pure-jnp reference for any n: ``u`` contracted with the target axes of the state tensor."""
    n = state.shape[-1].bit_length() - 1
    k = len(targets)
    t = state.reshape((2,) * n)
    letters = "abcdefghijklmnopqrstuvwxyz"
    ins = [letters[w] for w in range(n)]
    outs = list(ins)
    new = "ABCDE"[:k]
    for i, w in enumerate(targets):
        outs[w] = new[i]
    spec = f"{new}{''.join(ins[w] for w in targets)},{''.join(ins)}->{''.join(outs)}"
    y = jnp.einsum(spec, u.reshape((2,) * (2 * k)), t, precision=jax.lax.Precision.HIGHEST)
    if controls:
        mask = np.zeros((2,) * n, dtype=bool)
        mask[tuple(1 if w in controls else slice(None) for w in range(n))] = True
        y = jnp.where(mask, y, t)
    return y.reshape(state.shape)


def einsum_diagonal(state, d, targets):
    n = state.shape[-1].bit_length() - 1
    shape = [1] * n
    for w in targets:
        shape[w] = 2
    dt = jnp.transpose(d.reshape((2,) * len(targets)), np.argsort(targets)).reshape(shape)
    return (state.reshape((2,) * n) * dt).reshape(state.shape)


def gather_permutation(state, perm, targets, controls=()):
    n = state.shape[-1].bit_length() - 1
    k = len(targets)
    src = np.arange(2**n)
    bits = (src[:, None] >> (n - 1 - np.arange(n))) & 1
    ok = np.all(bits[:, list(controls)] == 1, axis=1) if controls else np.ones(2**n, bool)
    j = sum(bits[:, w] << (k - 1 - q) for q, w in enumerate(targets))
    pj = np.asarray(perm)[j]
    moved = src.copy()
    for q, w in enumerate(targets):
        moved = (moved & ~(1 << (n - 1 - w))) | (((pj >> (k - 1 - q)) & 1) << (n - 1 - w))
    return state[np.where(ok, moved, src)]


def placements(n, k):
    """Wire tuples covering adjacent, reversed, far apart, highest, lowest and mixed."""
    cands = {
        tuple(range(k)),
        tuple(reversed(range(k))),
        tuple(range(n - k, n)),
        tuple(reversed(range(n - k, n))),
        tuple(np.linspace(0, n - 1, k).round().astype(int)),
        tuple(reversed(np.linspace(0, n - 1, k).round().astype(int))),
        tuple(np.random.default_rng(n * 10 + k).permutation(n)[:k]),
    }
    return sorted(c for c in cands if len(set(c)) == k)


def run_jitted(calls):
    """Run ``[(fn, args), ...]`` (static wires closed over in fn) in ONE jit: one compile per test."""
    fns = [fn for fn, _ in calls]
    return jax.jit(lambda args: [fn(*a) for fn, a in zip(fns, args)])([a for _, a in calls])


def assert_close(got, want, dtype, scale=1.0):
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=0,
                               atol=TOL[np.dtype(dtype).type] * scale)


# ---------------------------------------------------------------- dense ------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
def test_dense_against_kron(dtype, k):
    rng = np.random.default_rng(k)
    calls, wants = [], []
    for n in sorted({k, k + 1, 6}):
        for targets in placements(n, k):
            s, u = random_state(rng, n, dtype), random_matrix(rng, k, dtype)
            calls.append((lambda x, v, t=targets: _native.apply_dense(x, v, t), (s, u)))
            wants.append(full_operator(n, u, targets) @ s.astype(complex))
    for got, want in zip(run_jitted(calls), wants):
        assert_close(got, want, dtype)
    assert_close(_native.apply_dense(*calls[0][1], tuple(range(k))), wants[0], dtype)  # eager


@pytest.mark.parametrize("dtype", DTYPES)
def test_dense_every_pair_small_n(dtype):
    rng = np.random.default_rng(1)
    calls, wants = [], []
    for n in range(1, 5):
        for targets in [(w,) for w in range(n)] + [(a, b) for a in range(n) for b in range(n) if a != b]:
            s, u = random_state(rng, n, dtype), random_matrix(rng, len(targets), dtype)
            calls.append((lambda x, v, t=targets: _native.apply_dense(x, v, t), (s, u)))
            wants.append(full_operator(n, u, targets) @ s.astype(complex))
    for got, want in zip(run_jitted(calls), wants):
        assert_close(got, want, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", range(1, 21))
def test_dense_one_and_two_qubits_up_to_20(dtype, n):
    rng = np.random.default_rng(n)
    s = jnp.asarray(random_state(rng, n, dtype))
    wires = sorted({0, n // 2, n - 1})
    pairs = [(0, n - 1), (n - 1, 0), (n // 2, max(n // 2 - 1, 0)), (n - 2, n - 1)] if n > 1 else []
    calls = []
    for targets in [(w,) for w in wires] + [p for p in pairs if len(set(p)) == 2]:
        u = jnp.asarray(random_matrix(rng, len(targets), dtype))
        calls.append((lambda x, v, t=targets: _native.apply_dense(x, v, t), (s, u)))
        calls.append((lambda x, v, t=targets: einsum_dense(x, v, t), (s, u)))
    out = run_jitted(calls)
    for got, want in zip(out[::2], out[1::2]):
        assert_close(got, want, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_controlled_against_kron(dtype):
    rng = np.random.default_rng(2)
    cases = [  # (n, controls, targets): high/low controls and targets, inside one vector
        (2, (0,), (1,)), (2, (1,), (0,)), (3, (2,), (0,)), (3, (1, 2), (0,)), (3, (0,), (1, 2)),
        (4, (3,), (2,)), (4, (2, 3), (0, 1)), (5, (0, 4), (2,)), (6, (5,), (0, 1, 2)),
        (6, (0, 1), (4, 5)), (6, (3,), (5, 1)), (7, (6, 5, 0), (1, 3)), (8, (7,), (0, 2, 4, 6, 1)),
        (8, (1, 6), (7, 0, 3)),
    ]
    calls, wants = [], []
    for n, controls, targets in cases:
        s, u = random_state(rng, n, dtype), random_matrix(rng, len(targets), dtype)
        calls.append((lambda x, v, c=controls, t=targets: _native.apply_controlled(x, v, c, t), (s, u)))
        wants.append(full_operator(n, u, targets, controls) @ s.astype(complex))
    for got, want in zip(run_jitted(calls), wants):
        assert_close(got, want, dtype)


# ------------------------------------------------------------- diagonal ------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
def test_diagonal_against_kron(dtype, k):
    rng = np.random.default_rng(10 + k)
    calls, wants = [], []
    for n in sorted({k, k + 1, 6}):
        for targets in placements(n, k):
            s = random_state(rng, n, dtype)
            d = (rng.normal(size=2**k) + 1j * rng.normal(size=2**k)).astype(dtype)
            d[:: 2] = 1  # exact ones: those amplitudes are skipped, must stay untouched
            calls.append((lambda x, v, t=targets: _native.apply_diagonal(x, v, t), (s, d)))
            wants.append(full_operator(n, np.diag(d), targets) @ s.astype(complex))
    for got, want in zip(run_jitted(calls), wants):
        assert_close(got, want, dtype)


# ---------------------------------------------------------- permutation ------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
def test_permutation_against_kron(dtype, k):
    rng = np.random.default_rng(20 + k)
    calls, wants = [], []
    for n in sorted({k, k + 1, 6, 8}):
        for targets in placements(n, k):
            free = [w for w in range(n) if w not in targets]
            for controls in {(), tuple(free[-1:]), tuple(free[:1]), tuple(free[:2])}:
                perm = tuple(int(p) for p in rng.permutation(2**k))
                s = random_state(rng, n, dtype)
                calls.append((lambda x, p=perm, t=targets, c=controls:
                              _native.apply_permutation(x, p, t, c), (s,)))
                wants.append(full_operator(n, perm_matrix(perm), targets, controls) @ s.astype(complex))
    for got, want in zip(run_jitted(calls), wants):
        assert_close(got, want, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_named_permutations(dtype):
    rng = np.random.default_rng(3)
    n = 5
    s = random_state(rng, n, dtype)
    cases = [((1, 0), (4,), ()), ((1, 0), (0,), ()), ((1, 0), (4,), (0,)), ((1, 0), (0,), (4,)),
             ((1, 0), (2,), (3, 4)), ((0, 2, 1, 3), (0, 4), ()), ((0, 2, 1, 3), (3, 4), (0,)),
             ((0, 1, 2, 3, 4, 5, 7, 6), (0, 1, 2), ())]  # x, cnot both ways, toffoli, swap, cswap, ccx
    for perm, targets, controls in cases:
        want = full_operator(n, perm_matrix(perm), targets, controls) @ s.astype(complex)
        assert_close(_native.apply_permutation(s, perm, targets, controls), want, dtype)
        assert_close(gather_permutation(s, perm, targets, controls), want, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_permutation_large_n(dtype):
    rng = np.random.default_rng(4)
    n = 17
    s = random_state(rng, n, dtype)
    for perm, targets, controls in [((1, 0), (16,), ()), ((1, 0), (0,), (16,)),
                                    ((0, 2, 1, 3), (3, 15), (0, 16)), ((3, 0, 1, 2), (16, 15), ())]:
        got = _native.apply_permutation(jnp.asarray(s), perm, targets, controls)
        assert_close(got, gather_permutation(s, perm, targets, controls), dtype)


# ----------------------------------------------------- in place, donation ------

def test_in_place_under_donation():
    rng = np.random.default_rng(5)
    n = 12
    s = random_state(rng, n, np.complex64)
    u = random_matrix(rng, 1, np.complex64)
    want = einsum_dense(jnp.asarray(s), jnp.asarray(u), (3,))

    def step(state, u):
        state = _native.apply_dense(state, u, (3,))
        state = _native.apply_diagonal(state, jnp.ones(2, state.dtype), (0,))
        return _native.apply_permutation(state, (0, 1), (5,))

    f = jax.jit(step, donate_argnums=0)
    assert "input_output_alias" in f.lower(jnp.asarray(s), u).compile().as_text()
    x = jnp.asarray(s)
    y = f(x, u)
    assert x.is_deleted()  # the donated buffer was taken
    assert_close(y, want, np.complex64)


# ------------------------------------------------------------- batching ------

def _count_ffi_calls(fn, *args):
    """Native kernel calls in the lowered program."""
    return jax.jit(fn).lower(*args).as_text().count("@qsim_native_")


@pytest.mark.parametrize("dtype", DTYPES)
def test_vmap_dense_batched_state_and_matrix(dtype):
    rng = np.random.default_rng(6)
    n, b = 9, 5
    s = jnp.asarray(random_state(rng, n, dtype, (b,)))
    us = jnp.asarray(random_matrix(rng, 2, dtype, (b,)))
    for targets, controls in [((0, 8), ()), ((8, 7), ()), ((4, 1), (8,)), ((7,), (0, 3))]:
        t = targets
        u1 = us[0, : 2 ** len(t), : 2 ** len(t)]
        ub = us[:, : 2 ** len(t), : 2 ** len(t)]
        f = lambda st, u: _native.apply_controlled(st, u, controls, t)  # noqa: E731
        loop = lambda ss, uu: jnp.stack([f(x, v) for x, v in zip(ss, uu)])  # noqa: E731
        for in_axes, uu in [((0, None), u1), ((0, 0), ub)]:
            got = jax.jit(jax.vmap(f, in_axes=in_axes))(s, uu)
            assert _count_ffi_calls(jax.vmap(f, in_axes=in_axes), s, uu) == 1  # one call for the batch
            uu_list = uu if in_axes[1] == 0 else [uu] * b
            assert_close(got, loop(s, uu_list), dtype)
        got = jax.vmap(f, in_axes=(None, 0))(s[0], ub)  # batched matrix only
        assert_close(got, loop([s[0]] * b, ub), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_vmap_diagonal_and_permutation(dtype):
    rng = np.random.default_rng(7)
    n, b = 10, 4
    s = jnp.asarray(random_state(rng, n, dtype, (b,)))
    d = jnp.asarray((rng.normal(size=(b, 4)) + 1j * rng.normal(size=(b, 4))).astype(dtype))
    got = jax.vmap(_native.apply_diagonal, in_axes=(0, 0, None))(s, d, (9, 2))
    assert_close(got, jnp.stack([einsum_diagonal(s[i], d[i], (9, 2)) for i in range(b)]), dtype)
    got = jax.vmap(lambda x: _native.apply_permutation(x, (1, 0), (9,), (0,)))(s)
    assert_close(got, jnp.stack([gather_permutation(x, (1, 0), (9,), (0,)) for x in s]), dtype)


def test_nested_vmap():
    rng = np.random.default_rng(8)
    s = jnp.asarray(random_state(rng, 7, np.complex128, (3, 2)))
    u = jnp.asarray(random_matrix(rng, 1, np.complex128, (2,)))
    f = lambda x, v: _native.apply_dense(x, v, (6,))  # noqa: E731
    got = jax.vmap(jax.vmap(f, in_axes=(0, 0)), in_axes=(0, None))(s, u)
    want = jnp.stack([jnp.stack([einsum_dense(s[i, j], u[j], (6,)) for j in range(2)])
                      for i in range(3)])
    assert_close(got, want, np.complex128)


# ---------------------------------------------------------- derivatives ------

def _value_and_vjp(fn, args, ct):
    y, vjp = jax.vjp(fn, *args)
    return y, vjp(ct)


def _check_vjp(native_fn, ref_fn, args, dtype, rng):
    shape = args[0].shape
    ct = jnp.asarray((rng.normal(size=shape) + 1j * rng.normal(size=shape)).astype(dtype))
    (y, cts), (y_ref, cts_ref) = run_jitted(
        [(lambda a, c: _value_and_vjp(native_fn, a, c), (args, ct)),
         (lambda a, c: _value_and_vjp(ref_fn, a, c), (args, ct))])
    assert_close(y, y_ref, dtype)
    for got, want in zip(cts, cts_ref):
        # matrix cotangents are sums over 2^(n-k) products: the tolerance is relative
        assert_close(got, want, dtype, scale=max(4.0, float(jnp.abs(want).max())))


@pytest.mark.parametrize("dtype", DTYPES)
def test_vjp_dense_and_controlled(dtype):
    rng = np.random.default_rng(9)
    for n, controls, targets in [(1, (), (0,)), (3, (), (2, 0)), (8, (), (7,)), (8, (), (0, 3, 7)),
                                 (6, (5,), (0,)), (6, (0, 4), (5, 2)), (5, (), (0, 1, 2, 3, 4)),
                                 (7, (), (1, 0)), (9, (2,), (0, 5, 4, 1)), (8, (), (0, 1, 2, 3, 4)),
                                 (16, (), (15, 0)), (16, (3,), (10,)), (15, (), (3, 7, 0, 5, 1))]:
        s = jnp.asarray(random_state(rng, n, dtype))
        u = jnp.asarray(random_matrix(rng, len(targets), dtype))
        native = lambda x, v: _native.apply_controlled(x, v, controls, targets)  # noqa: E731
        ref = lambda x, v: einsum_dense(x, v, targets, controls)  # noqa: E731
        _check_vjp(native, ref, (s, u), dtype, rng)
        # a constant matrix takes the state-only path
        _check_vjp(lambda x: native(x, u), lambda x: ref(x, u), (s,), dtype, rng)
        g, g_ref = run_jitted([(jax.grad(lambda v: jnp.sum(jnp.abs(native(s, v)) ** 2)), (u,)),
                               (jax.grad(lambda v: jnp.sum(jnp.abs(ref(s, v)) ** 2)), (u,))])
        assert_close(g, g_ref, dtype, scale=float(jnp.abs(g_ref).max()) * 10)


@pytest.mark.parametrize("dtype", DTYPES)
def test_vjp_diagonal_and_permutation(dtype):
    rng = np.random.default_rng(11)
    for n, targets in [(2, (1,)), (6, (5, 0)), (7, (6, 5, 1)), (16, (15, 2))]:
        s = jnp.asarray(random_state(rng, n, dtype))
        d = jnp.asarray(random_state(rng, len(targets), dtype))
        _check_vjp(lambda x, v: _native.apply_diagonal(x, v, targets),
                   lambda x, v: einsum_diagonal(x, v, targets), (s, d), dtype, rng)
        perm = tuple(int(p) for p in rng.permutation(2 ** len(targets)))
        _check_vjp(lambda x: _native.apply_permutation(x, perm, targets, ()),
                   lambda x: gather_permutation(x, perm, targets), (s,), dtype, rng)


@pytest.mark.parametrize("dtype", DTYPES)
def test_vjp_under_vmap(dtype):
    rng = np.random.default_rng(12)
    n, b, targets = 8, 3, (7, 2)
    s = jnp.asarray(random_state(rng, n, dtype, (b,)))
    ub = jnp.asarray(random_matrix(rng, 2, dtype, (b,)))
    loss = lambda f: lambda x, v: jnp.sum(jnp.abs(f(x, v)) ** 2)  # noqa: E731
    native = loss(lambda x, v: _native.apply_dense(x, v, targets))
    ref = loss(lambda x, v: einsum_dense(x, v, targets))
    for in_axes, u in [((0, 0), ub), ((0, None), ub[0])]:
        got = jax.vmap(jax.grad(native, argnums=(0, 1)), in_axes=in_axes)(s, u)
        want = jax.vmap(jax.grad(ref, argnums=(0, 1)), in_axes=in_axes)(s, u)
        for g, w in zip(got, want):
            assert_close(g, w, dtype, scale=float(jnp.abs(w).max()))
    # batched loss summed over the batch: the unbatched matrix's cotangent is summed
    g = jax.grad(lambda v: jax.vmap(native, in_axes=(0, None))(s, v).sum())(ub[0])
    g_ref = jax.grad(lambda v: jax.vmap(ref, in_axes=(0, None))(s, v).sum())(ub[0])
    assert_close(g, g_ref, dtype, scale=float(jnp.abs(g_ref).max()))


# ----------------------------------------------------------------- fuzz ------

@pytest.mark.parametrize("dtype", DTYPES)
def test_fuzz_200_gates(dtype):
    rng = np.random.default_rng(13)
    n = 8
    s = random_state(rng, n, np.complex128)
    s /= np.linalg.norm(s)
    want, gates = s.copy(), []
    for _ in range(200):
        kind = rng.choice(["dense", "controlled", "diagonal", "permutation"])
        k = int(rng.integers(1, 6 if kind != "controlled" else 4))
        wires = [int(w) for w in rng.permutation(n)]
        targets = tuple(wires[:k])
        controls = tuple(wires[k: k + int(rng.integers(1, 3))]) if kind == "controlled" else ()
        if kind == "diagonal":
            d = np.exp(1j * rng.uniform(0, 2 * np.pi, 2**k))
            gates.append(lambda x, d=d.astype(dtype), t=targets: _native.apply_diagonal(x, d, t))
            op = np.diag(d)
        elif kind == "permutation":
            perm = tuple(int(p) for p in rng.permutation(2**k))
            controls = tuple(wires[k: k + int(rng.integers(0, 3))])
            gates.append(lambda x, p=perm, t=targets, c=controls:
                         _native.apply_permutation(x, p, t, c))
            op = perm_matrix(perm)
        else:
            op = random_unitary(rng, k)
            gates.append(lambda x, u=op.astype(dtype), c=controls, t=targets:
                         _native.apply_controlled(x, u, c, t))
        want = full_operator(n, op, targets, controls) @ want

    def circuit(x):
        for gate in gates:
            x = gate(x)
        return x

    assert_close(jax.jit(circuit)(jnp.asarray(s.astype(dtype))), want, dtype)


# ---------------------------------------------------------------- errors ------

def test_errors():
    s = jnp.zeros(2**7, jnp.complex64)
    with pytest.raises(ValueError, match="1 to 5 wires"):
        _native.apply_dense(s, jnp.eye(64, dtype=s.dtype), (0, 1, 2, 3, 4, 5))
    with pytest.raises(ValueError, match="U must have shape"):
        _native.apply_dense(s, jnp.eye(2, dtype=s.dtype), (0, 1))
    with pytest.raises(ValueError, match="d must have shape"):
        _native.apply_diagonal(s, jnp.ones(3, s.dtype), (0, 1))
    with pytest.raises(ValueError, match="perm must be a permutation"):
        _native.apply_permutation(s, (0, 0), (1,))
    with pytest.raises(TypeError, match="complex64 or complex128"):
        _native.apply_dense(jnp.zeros(8, jnp.float32), jnp.eye(2), (0,))
    with pytest.raises(Exception, match="repeated wire"):  # checked in C++: XlaRuntimeError
        jax.block_until_ready(_native.apply_dense(s, jnp.eye(4, dtype=s.dtype), (1, 1)))
    with pytest.raises(Exception, match="wire out of range"):
        jax.block_until_ready(_native.apply_dense(s, jnp.eye(2, dtype=s.dtype), (7,)))


def test_info():
    assert _native.why_unavailable() == ""
    assert _native.info().startswith("isa=")


# --------------------------------------------- scalar path, odd thread count ------

@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("QSIM_NATIVE_ISA") == "scalar",
                    reason="already running on the scalar path")
def test_scalar_path_and_three_threads():
    """Re-run the kernel tests in a fresh process on the portable (non-AVX2) path with 3 threads."""
    env = dict(os.environ, QSIM_NATIVE_ISA="scalar", QSIM_NUM_THREADS="3")
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", __file__, "-k",
           "kron or fuzz or named or large_n or up_to_20 or vjp or vmap"]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    info = subprocess.run([sys.executable, "-c", "from qsim.backends import native_cpu; print(native_cpu.info())"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert "isa=scalar threads=3" in info.stdout, info.stdout + info.stderr
