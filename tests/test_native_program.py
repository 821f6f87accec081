"""Native whole-program calls (csrc/program.cpp, `qsim._native.apply_program`) against references.

References: dense ``2^n x 2^n`` operators built with ``np.kron`` (tests/test_native.py's
helpers) multiplied in numpy, float64 finite differences for the coefficient
cotangents, and the per-gate native kernels. Tolerances: 1e-5 (complex64),
1e-10 (complex128), scaled by the reference's magnitude for gradients.
"""

from __future__ import annotations

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import qsim  # noqa: E402
from qsim import _scan, _simulate  # noqa: E402
from qsim.backends import NATIVE  # noqa: E402
from qsim.backends import native_cpu as _native  # noqa: E402

from test_native import (DTYPES, assert_close, full_operator, perm_matrix,  # noqa: E402
                          random_state, random_unitary)

pytestmark = pytest.mark.skipif(
    not _native.available(), reason=f"native kernels unavailable: {_native.why_unavailable()}")


def random_program(rng, n, steps, phases=None):
    """``(code, coefs (complex128), dense operator)`` of random dense/controlled/diagonal/perm steps.

    ``phases`` (a list) receives, per coefficient, a real direction that keeps every step unitary
    when the coefficients are multiplied by ``exp(1j * theta * direction)`` (a phase per column).
    """
    code, flat, offset, total = [], [], 0, np.eye(2**n, dtype=complex)
    for _ in range(steps):
        kind = rng.choice(["dense", "controlled", "diagonal", "permutation"])
        k = int(rng.integers(1, 4 if kind == "controlled" else 6))
        wires = [int(w) for w in rng.permutation(n)]
        targets = tuple(wires[:k])
        controls = tuple(wires[k:k + int(rng.integers(1, 3))]) if kind in ("controlled", "permutation") else ()
        if kind == "diagonal":
            d = np.exp(1j * rng.uniform(0, 2 * np.pi, 2**k))
            code += _native.encode_step(_native.DIAGONAL, targets, (), None, offset)
            flat.append(d)
            op = np.diag(d)
        elif kind == "permutation":
            perm = tuple(int(p) for p in rng.permutation(2**k))
            code += _native.encode_step(_native.PERMUTATION, targets, controls, perm, offset)
            op = perm_matrix(perm)
        else:
            op = random_unitary(rng, k)
            code += _native.encode_step(_native.DENSE, targets, controls, None, offset)
            flat.append(op.reshape(-1))
        if kind != "permutation":
            offset += flat[-1].size
            if phases is not None:
                phi = rng.normal(size=2**k)
                phases.append(phi if kind == "diagonal" else np.tile(phi, 2**k))
        total = full_operator(n, op, targets, controls) @ total
    return tuple(code), np.concatenate(flat), total


@pytest.mark.parametrize("dtype", DTYPES)
def test_forward_inverse_transpose_against_kron(dtype):
    rng = np.random.default_rng(1)
    n = 7
    code, coefs, total = random_program(rng, n, 60)
    x = random_state(rng, n, np.complex128)
    c = jnp.asarray(coefs.astype(dtype))
    xs = jnp.asarray(x.astype(dtype))
    fwd, inv = jax.jit(lambda s, c: (_native.apply_program(s, c, code),
                                     _native.apply_program(s, c, code, inverse=True)))(xs, c)
    assert_close(fwd, total @ x, dtype, scale=float(np.abs(x).max()) * 4)
    assert_close(inv, total.conj().T @ x, dtype, scale=float(np.abs(x).max()) * 4)
    # the state cotangent of the forward (constant coefficients) is U^T g
    g = random_state(rng, n, np.complex128)
    _, vjp = jax.vjp(lambda s: _native.apply_program(s, c, code), xs)
    assert_close(vjp(jnp.asarray(g.astype(dtype)))[0], total.T @ g, dtype, scale=float(np.abs(g).max()) * 4)


@pytest.mark.parametrize("dtype", DTYPES)
def test_vmap_state_and_coefficients(dtype):
    rng = np.random.default_rng(2)
    n = 6
    code, coefs, _ = random_program(rng, n, 25)
    xs = jnp.asarray(random_state(rng, n, dtype, batch=(3,)))
    cs = jnp.asarray(np.stack([coefs, coefs.conj(), coefs * 1j]).astype(dtype))
    f = jax.jit(lambda s, c: _native.apply_program(s, c, code))
    one = jax.vmap(f, in_axes=(0, None))(xs, cs[0])
    both = jax.vmap(f)(xs, cs)
    for b in range(3):
        assert_close(one[b], f(xs[b], cs[0]), dtype)
        assert_close(both[b], f(xs[b], cs[b]), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_coefficient_gradient_against_finite_differences(dtype):
    """d/dtheta of <psi|Z0|psi> where coefficients depend on theta, against float64 FD and the
    per-gate native kernels; also the adjoint sweep's (x, g_x, ct) outputs."""
    rng = np.random.default_rng(3)
    n = 5
    phases = []
    code, coefs, _ = random_program(rng, n, 20, phases)
    x = jnp.asarray(random_state(rng, n, np.complex128) / 4)
    dirs = jnp.asarray(np.concatenate(phases))   # unitary steps: the sweep un-applies with U^dagger
    sign = jnp.asarray(1 - 2 * ((np.arange(2**n) >> (n - 1)) & 1), jnp.float64)

    def f(theta, dt):
        c = (jnp.asarray(coefs) * jnp.exp(1j * theta * dirs)).astype(dt)
        psi = _native.apply_program(x.astype(dt), c, code)
        return jnp.sum(sign * jnp.abs(psi) ** 2).astype(jnp.float64)

    g = jax.jit(jax.grad(lambda t: f(t, dtype)))(0.3)
    eps = 1e-6
    fd = (f(0.3 + eps, jnp.complex128) - f(0.3 - eps, jnp.complex128)) / (2 * eps)
    assert abs(float(g) - float(fd)) <= (2e-4 if dtype == np.complex64 else 1e-7) * max(1, abs(float(fd)))

    # the sweep recovers the input and gives U^T g (coefficient ct checked through grad above)
    c = jnp.asarray(coefs.astype(dtype))
    y = _native.apply_program(x.astype(dtype), c, code)
    ct_y = jnp.asarray(random_state(rng, n, dtype))
    x_back, g_x, ct = _native.program_adjoint(code, c, y, ct_y)
    _, vjp = jax.vjp(lambda s, cc: _native.apply_program(s, cc, code), x.astype(dtype), c)
    want_gx, want_ct = vjp(ct_y)
    assert_close(x_back, x, dtype)
    assert_close(g_x, want_gx, dtype, scale=4)
    assert_close(ct, want_ct, dtype, scale=float(jnp.abs(want_ct).max()))


def phased_cost(code, coefs, phases, x, n, wire):
    """``f(theta, dtype)``: ``<Z_wire>`` after the program whose coefficients are turned by
    ``exp(1j * theta * direction)`` (`random_program`'s phases keep every step unitary)."""
    dirs = jnp.asarray(np.concatenate(phases))
    sign = jnp.asarray(1 - 2 * ((np.arange(2**n) >> (n - 1 - wire)) & 1), jnp.float64)

    def f(theta, dt):
        k = (jnp.asarray(coefs) * jnp.exp(1j * theta * dirs)).astype(dt)
        psi = _native.apply_program(jnp.asarray(x).astype(dt), k, code)
        return jnp.sum(sign * jnp.abs(psi) ** 2).astype(jnp.float64)
    return f


def random_fused(rng, n, steps, phases):
    """Fused steps (blocks multiplied out by the kernel) with random dense, controlled, diagonal and
    permutation members: ``(code, coefs, dense operator)``; ``phases`` as in `random_program`."""
    code, flat, offset, total = [], [], 0, np.eye(2**n, dtype=complex)
    for _ in range(steps):
        K = int(rng.integers(2, 5))
        wires = tuple(int(w) for w in rng.permutation(n)[:K])
        diagonal = rng.random() < 0.25
        members, block = [], np.eye(2**K, dtype=complex)
        for _ in range(int(rng.integers(1, 6))):
            pos = [int(q) for q in rng.permutation(K)]
            kind = "diagonal" if diagonal else rng.choice(["dense", "controlled", "diagonal", "permutation"])
            k = int(rng.integers(1, K + 1)) if kind != "controlled" else int(rng.integers(1, K))
            t = tuple(pos[:k])
            c = tuple(pos[k:k + 1]) if kind in ("controlled", "permutation") and k < K else ()
            if kind == "diagonal":
                m = np.exp(1j * rng.uniform(0, 2 * np.pi, 2**k))
                members.append(_native.encode_step(_native.DIAGONAL, t, (), None, offset))
                flat.append(m)
                phases.append(rng.normal(size=2**k))
                op = np.diag(m)
            elif kind == "permutation":
                perm = tuple(int(p) for p in rng.permutation(2**k))
                members.append(_native.encode_step(_native.PERMUTATION, t, c, perm, offset))
                op = perm_matrix(perm)
            else:
                op = random_unitary(rng, k)
                members.append(_native.encode_step(_native.DENSE, t, c, None, offset))
                flat.append(op.reshape(-1))
                phases.append(np.tile(rng.normal(size=2**k), 2**k))
            offset += 0 if kind == "permutation" else flat[-1].size
            block = full_operator(K, op, t, c) @ block
        code += _native.encode_fused(wires, members, diagonal)
        total = full_operator(n, block, wires) @ total
    coefs = np.concatenate(flat) if flat else np.zeros(1)
    return tuple(code), coefs, total


@pytest.mark.parametrize("dtype", DTYPES)
def test_fused_steps_against_kron_and_finite_differences(dtype):
    rng = np.random.default_rng(6)
    n = 6
    phases = []
    code, coefs, total = random_fused(rng, n, 12, phases)
    x = random_state(rng, n, np.complex128) / 4
    c = jnp.asarray(coefs.astype(dtype))
    fwd, inv = jax.jit(lambda s, c: (_native.apply_program(s, c, code),
                                     _native.apply_program(s, c, code, inverse=True)))(
        jnp.asarray(x.astype(dtype)), c)
    assert_close(fwd, total @ x, dtype)
    assert_close(inv, total.conj().T @ x, dtype)

    f = phased_cost(code, coefs, phases, x, n, 1)
    g = jax.jit(jax.grad(lambda t: f(t, dtype)))(0.7)
    eps = 1e-6
    fd = (f(0.7 + eps, jnp.complex128) - f(0.7 - eps, jnp.complex128)) / (2 * eps)
    assert abs(float(g) - float(fd)) <= (2e-4 if dtype == np.complex64 else 1e-7) * max(1, abs(float(fd)))


def one_qubit_heavy(rng, n, steps, phases):
    """A program of mostly one-qubit steps (dense, diagonal, X) between CNOTs and two-qubit
    diagonals, so that most wires carry runs that `merge` turns into one step:
    ``(code, coefs, dense operator)``; ``phases`` as in `random_program`."""
    code, flat, offset, total = [], [], 0, np.eye(2**n, dtype=complex)
    for _ in range(steps):
        kind = rng.choice(["dense", "dense", "diagonal", "x", "cnot", "cz"])
        a, b = (int(w) for w in rng.permutation(n)[:2])
        if kind in ("dense", "diagonal"):
            op = random_unitary(rng, 1) if kind == "dense" else np.diag(np.exp(1j * rng.uniform(0, 6, 2)))
            kind_id = _native.DENSE if kind == "dense" else _native.DIAGONAL
            code += _native.encode_step(kind_id, (a,), (), None, offset)
            flat.append(op.reshape(-1) if kind == "dense" else np.diag(op))
            offset += flat[-1].size
            phi = rng.normal(size=2)
            phases.append(np.tile(phi, 2) if kind == "dense" else phi)
            total = full_operator(n, op, (a,)) @ total
        elif kind == "cz":
            d = np.exp(1j * rng.uniform(0, 6, 4))
            code += _native.encode_step(_native.DIAGONAL, (a, b), (), None, offset)
            flat.append(d)
            offset += 4
            phases.append(rng.normal(size=4))
            total = full_operator(n, np.diag(d), (a, b)) @ total
        else:
            controls = (b,) if kind == "cnot" else ()
            code += _native.encode_step(_native.PERMUTATION, (a,), controls, (1, 0))
            total = full_operator(n, perm_matrix((1, 0)), (a,), controls) @ total
    return tuple(code), np.concatenate(flat), total


@pytest.mark.parametrize("dtype", DTYPES)
def test_one_qubit_runs_merged_against_kron_and_finite_differences(dtype):
    """In-cache states run each wire's runs of one-qubit steps as one step (native_cpu.merge):
    fewer steps, the same state as the dense product, the same coefficient gradient as float64
    finite differences and as the unmerged program, and forward-mode derivatives through it."""
    from qsim.backends.native_cpu import merge, primitives

    rng = np.random.default_rng(11)
    n = 5
    phases = []
    code, coefs, total = one_qubit_heavy(rng, n, 70, phases)
    plan = merge.plan(code)
    assert plan is not None and len(_native.steps.decode(plan)) < len(_native.steps.decode(code)) * 0.75
    assert merge.plan(plan) is None      # merging is idempotent
    x = random_state(rng, n, np.complex128)
    c = jnp.asarray(coefs.astype(dtype))
    out = jax.jit(lambda s, k: _native.apply_program(s, k, code))(jnp.asarray(x.astype(dtype)), c)
    assert_close(out, total @ x, dtype, scale=4)

    f = phased_cost(code, coefs, phases, x, n, 0)
    tol = 2e-4 if dtype == np.complex64 else 1e-7
    g = float(jax.jit(jax.grad(lambda t: f(t, dtype)))(0.3))
    eps = 1e-6
    fd = float((f(0.3 + eps, jnp.complex128) - f(0.3 - eps, jnp.complex128)) / (2 * eps))
    assert abs(g - fd) <= tol * max(1, abs(fd))
    assert abs(float(jax.jit(jax.jacfwd(lambda t: f(t, dtype)))(0.3)) - fd) <= tol * max(1, abs(fd))
    saved = primitives._for_size
    try:       # the same program run as it is (no merging) gives the same gradient
        primitives._for_size = lambda code, dim: code
        g_plain = float(jax.grad(lambda t: f(t, dtype))(0.3))
    finally:
        primitives._for_size = saved
    assert abs(g - g_plain) <= tol * max(1, abs(fd))
    # the sweep's outputs with merged steps: the input, U^T g and the original coefficients' ct
    y = _native.apply_program(jnp.asarray(x.astype(dtype)), c, code)
    ct_y = jnp.asarray(random_state(rng, n, dtype, batch=(3,)))
    x_back, g_x, ct = _native.program_adjoint(code, c, jnp.broadcast_to(y, ct_y.shape), ct_y)
    _, vjp = jax.vjp(lambda k: _native.apply_program(jnp.asarray(x.astype(dtype)), k, code), c)
    want_ct = sum(vjp(ct_y[b])[0] for b in range(3))     # shared coefficients: summed over the batch
    assert_close(x_back[1], x, dtype)
    assert_close(g_x, ct_y @ jnp.asarray(total.astype(dtype)), dtype, scale=4)
    assert_close(ct, want_ct, dtype, scale=float(jnp.abs(want_ct).max()))


def layered_program(rng, n, layers):
    """``(code, coefs)``: layers of random one-qubit unitaries on a random half-or-more of the
    wires (distinct: the runners apply each such run as one layer, in tile passes), each followed
    by a CNOT and a one-qubit gate repeated on a wire of the layer (which ends the layer)."""
    code, flat, offset = [], [], 0
    for _ in range(layers):
        wires = [int(w) for w in rng.permutation(n)[:int(rng.integers(max(2, n // 2), n + 1))]]
        for w in wires + [wires[0]]:
            code += _native.encode_step(_native.DENSE, (w,), (), None, offset)
            flat.append(random_unitary(rng, 1).reshape(-1))
            offset += 4
        a, b = rng.permutation(n)[:2]
        code += _native.encode_step(_native.PERMUTATION, (int(b),), (int(a),), (1, 0), 0)
    return tuple(code), np.concatenate(flat)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [3, 12, 18])
def test_one_qubit_layers_against_the_reference_executor(dtype, n):
    """Runs of one-qubit steps on distinct wires run as layers: every gate of a pass while a tile
    of the state sits in L1 (low wires on contiguous tiles; high wires gathered from rows, in
    passes of at most 7; lanes inside a vector for the lowest bits). Forward, inverse, transpose
    and the sweep's (x, g_x, ct), shared and per-state coefficients, both runners (one state
    gate by gate over the threads, a batch state by state), against the pure-JAX executor."""
    from qsim.backends.native_cpu import reference

    rng = np.random.default_rng(n)
    code, coefs = layered_program(rng, n, 3)
    steps = _native.steps.decode(code)
    batch = 1 if n > 12 else 3
    xs = jnp.asarray(random_state(rng, n, dtype, batch=(batch,)))
    cs = jnp.asarray(np.stack([coefs] + [coefs * np.exp(1j * b) for b in range(1, batch)]).astype(dtype))
    run_ref = jax.jit(lambda s, c, mode: reference.run_code(s, c, steps, mode), static_argnums=2)
    for mode in (0, 1, 2):
        got = jax.jit(lambda s, c: _native.program(s, c, code, mode))(xs, cs)
        for b in range(batch):
            assert_close(got[b], run_ref(xs[b], cs[b], mode), dtype, scale=4)
    y = jax.jit(lambda s, c: _native.apply_program(s, c, code))(xs, cs[0])
    ct_y = jnp.asarray(random_state(rng, n, dtype, batch=(batch,)))
    x_back, g_x, ct = _native.program_adjoint(code, cs[0], y, ct_y)
    _, vjp = jax.vjp(lambda k: jax.vmap(lambda s: reference.run_code(s, k, steps))(xs), cs[0])
    want_ct = vjp(ct_y)[0]
    assert_close(x_back, xs, dtype, scale=4)
    for b in range(batch):
        assert_close(g_x[b], run_ref(ct_y[b], cs[0], 2), dtype, scale=4)
    assert_close(ct, want_ct, dtype, scale=float(jnp.abs(want_ct).max()))


def mixed_program(rng, n, steps):
    """``(code, coefs)``: random dense, controlled, diagonal, permutation, fused (members on
    positions, of every kind) and linear steps on wires < n, with targets on every wire."""
    code, flat = [], []

    def coef(a):
        flat.append(np.asarray(a, complex).reshape(-1))
        return sum(f.size for f in flat) - flat[-1].size

    for _ in range(steps):
        kind = rng.choice(["dense", "controlled", "diagonal", "permutation", "fused", "linear"])
        wires = [int(w) for w in rng.permutation(n)]
        k = int(rng.integers(1, min(n, 3) + 1))
        nc = int(rng.integers(1, min(2, n - k) + 1)) if n > k else 0
        if kind in ("dense", "controlled"):
            ctrl = tuple(wires[k:k + nc]) if kind == "controlled" else ()
            code += _native.encode_step(_native.DENSE, tuple(wires[:k]), ctrl, None,
                                        coef(random_unitary(rng, k)))
        elif kind == "diagonal":
            code += _native.encode_step(_native.DIAGONAL, tuple(wires[:k]), (), None,
                                        coef(np.exp(1j * rng.uniform(0, 7, 2**k))))
        elif kind == "permutation":
            perm = tuple(int(p) for p in rng.permutation(2**k))
            code += _native.encode_step(_native.PERMUTATION, tuple(wires[:k]), tuple(wires[k:k + nc]), perm)
        elif kind == "fused":
            members = [_native.encode_step(_native.DENSE, (k - 1,), (), None, coef(random_unitary(rng, 1))),
                       _native.encode_step(_native.DIAGONAL, (0,), (), None, coef(np.exp(1j * rng.uniform(0, 7, 2))))]
            if k >= 2:
                members += [_native.encode_step(_native.PERMUTATION, (1,), (0,), (1, 0)),
                            _native.encode_step(_native.DENSE, (0, k - 1), (), None, coef(random_unitary(rng, 2))),
                            _native.encode_step(_native.DENSE, (1,), (0,), None, coef(random_unitary(rng, 1)))]
            code += _native.steps.encode_fused(tuple(wires[:k]), members)
        else:                           # columns of an invertible GF(2) matrix: row operations
            cols = [1 << (k - 1 - j) for j in range(k)]
            for _ in range(2 * k):
                a, b = rng.permutation(k)[:2] if k > 1 else (0, 0)
                if a != b:
                    cols[a] ^= cols[b]
            code += _native.steps.encode_linear(tuple(wires[:k]), tuple(cols))
    return tuple(code), np.concatenate(flat)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n, batch", [(1, 3), (3, 1), (5, 21), (7, 21)])
def test_lanes_runner_against_the_reference_executor(dtype, n, batch, monkeypatch):
    """Batches of states of a few qubits run W at once, one per vector lane (16 complex64 or 8
    complex128 states per tile on AVX-512; 8 or 4 on AVX2), fused steps as their members: every
    kind of step, forward, inverse, transpose and the sweep's (x, g_x, ct), shared and per-state
    coefficients, partial tiles and several tiles per call, against the pure-JAX executor and
    against the state-by-state runner (QSIM_NATIVE_LANES=0)."""
    from qsim.backends.native_cpu import reference
    from qsim.backends.native_cpu.primitives import program_p, sweep_p

    rng = np.random.default_rng(40 + n)
    code, coefs = mixed_program(rng, n, 14)
    steps = _native.steps.decode(code)
    kinds = {s.kind for s in steps}
    assert {_native.steps.FUSED_DENSE, _native.PERMUTATION}.issubset(kinds) or n < 3
    xs = jnp.asarray(random_state(rng, n, dtype, batch=(batch,)))
    cs = jnp.asarray(np.stack([coefs * np.exp(0.3j * b) for b in range(batch)]).astype(dtype))
    ref = jax.jit(jax.vmap(lambda s, c, mode: reference.run_code(s, c, steps, mode),
                           in_axes=(0, 0, None)), static_argnums=2)
    run = jax.jit(lambda s, c, mode: program_p.bind(s, c, code=code, mode=mode), static_argnums=2)
    sweep = jax.jit(lambda y, g, c: sweep_p.bind(y, g, c, code=code, want_ct=1))
    g = jnp.asarray(random_state(rng, n, dtype, batch=(batch,)))
    results = {}
    for lanes in ("1", "0"):
        monkeypatch.setenv("QSIM_NATIVE_LANES", lanes)
        out = [run(xs, cs, mode) for mode in (0, 1, 2)]
        for c in (cs, cs[0]):                            # per-state and shared coefficients
            y = run(xs, jnp.broadcast_to(c, cs.shape), 0)
            out += list(sweep(y, g, c))
        results[lanes] = out
    for mode in (0, 1, 2):
        assert_close(results["1"][mode], ref(xs, cs, mode), dtype, scale=4)
    for i, c in enumerate((cs, cs[0])):
        x_back, g_x, ct = results["1"][3 + 3 * i: 6 + 3 * i]
        if c.ndim == 1:
            _, vjp = jax.vjp(lambda k: jax.vmap(lambda s: reference.run_code(s, k, steps))(xs), c)
        else:
            _, vjp = jax.vjp(lambda k: jax.vmap(lambda s, kk: reference.run_code(s, kk, steps))(xs, k), c)
        want = vjp(g)[0]
        assert_close(x_back, xs, dtype, scale=4)
        assert_close(g_x, ref(g, jnp.broadcast_to(c, cs.shape), 2), dtype, scale=4)
        got = ct.sum(0) if c.ndim == 1 else ct
        assert_close(got, want, dtype, scale=float(jnp.abs(want).max()))
    for a, b in zip(results["1"], results["0"]):
        assert_close(a, b, dtype, scale=4 * max(1.0, float(jnp.abs(b).max())))


@pytest.mark.slow
@pytest.mark.parametrize("isa", ["avx2", "scalar"])
def test_lanes_runner_on_narrower_vectors(isa):
    """The lanes runner's test again in a fresh process on AVX2 (8 complex64 states per tile)
    and on the portable kernels (2 per tile), with 3 threads."""
    import subprocess
    import sys

    env = dict(__import__("os").environ, QSIM_NATIVE_ISA=isa, QSIM_NUM_THREADS="3")
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", __file__, "-k", "lanes_runner_against"]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0 and "8 passed" in out.stdout, out.stdout[-3000:] + out.stderr[-3000:]


@pytest.mark.parametrize("dtype", DTYPES)
def test_cnot_networks_run_as_one_linear_step(dtype):
    """Runs of CNOTs and SWAPs become one linear step (a gather through a GF(2)-linear index map):
    the merged program has one step per run, and forward, inverse, transpose, the sweep and the
    pure-JAX reference executor all equal the dense product of the gates."""
    from qsim.backends.native_cpu import merge, reference

    rng = np.random.default_rng(12)
    n = 9                       # the index map spans two table bytes
    code, total, flat, offset = [], np.eye(2**n, dtype=complex), [], 0
    for layer in range(3):
        for _ in range(int(rng.integers(3, 9))):
            a, b = (int(w) for w in rng.permutation(n)[:2])
            if rng.random() < 0.7:
                code += _native.encode_step(_native.PERMUTATION, (b,), (a,), (1, 0))
                total = full_operator(n, perm_matrix((1, 0)), (b,), (a,)) @ total
            else:
                code += _native.encode_step(_native.PERMUTATION, (a, b), (), (0, 2, 1, 3))
                total = full_operator(n, perm_matrix((0, 2, 1, 3)), (a, b)) @ total
        u = random_unitary(rng, 1)          # a one-qubit gate on a wire of the network closes it
        w = b
        code += _native.encode_step(_native.DENSE, (w,), (), None, offset)
        flat.append(u.reshape(-1))
        offset += 4
        total = full_operator(n, u, (w,)) @ total
    code = tuple(code)
    plan = merge.plan(code)
    kinds = [s.kind for s in _native.steps.decode(plan)]
    assert kinds.count(_native.steps.LINEAR) == 3 and set(kinds) == {_native.steps.LINEAR, _native.DENSE}
    c = jnp.asarray(np.concatenate(flat).astype(dtype))
    x = random_state(rng, n, np.complex128)
    xs = jnp.asarray(x.astype(dtype))
    fwd, inv = jax.jit(lambda s, k: (_native.apply_program(s, k, code),
                                     _native.apply_program(s, k, code, inverse=True)))(xs, c)
    assert_close(fwd, total @ x, dtype, scale=4)
    assert_close(inv, total.conj().T @ x, dtype, scale=4)
    ref = reference.run_code(xs, c, _native.steps.decode(plan))
    assert_close(ref, total @ x, dtype, scale=4)
    g = jnp.asarray(random_state(rng, n, dtype))
    x_back, g_x, _ = _native.program_adjoint(code, c, fwd, g)
    assert_close(x_back, x, dtype, scale=4)
    assert_close(g_x, total.T @ np.asarray(g, complex), dtype, scale=4)
    singular = _native.steps.encode_linear((0, 1), (3, 3))
    with pytest.raises(Exception, match="invertible"):
        jax.block_until_ready(_native.apply_program(xs, c, singular))


def test_errors_from_the_kernel():
    s = jnp.zeros(2**4, jnp.complex64).at[0].set(1)
    bad_wire = _native.encode_step(_native.DENSE, (4,), (), None, 0)
    with pytest.raises(Exception, match="wire out of range"):
        jax.block_until_ready(_native.apply_program(s, jnp.eye(2, dtype=s.dtype).reshape(-1), bad_wire))
    short = _native.encode_step(_native.DENSE, (0, 1), (), None, 0)
    with pytest.raises(Exception, match="offset out of range"):
        jax.block_until_ready(_native.apply_program(s, jnp.ones(4, s.dtype), short))
    outside = _native.encode_fused((0, 1), [_native.encode_step(_native.DENSE, (2,), (), None, 0)])
    with pytest.raises(Exception, match="inside the block"):
        jax.block_until_ready(_native.apply_program(s, jnp.ones(4, s.dtype), outside))


# ------------------------------------------------------- through Circuit ------

def _qcbm_like(n, angles, backend="auto"):
    c = qsim.Circuit(n, dtype="complex128", backend=backend)
    i = 0
    for w in range(n):
        c.rx(w, angles[i]).rz(w, angles[i + 1])
        i += 2
    for _ in range(4):
        for w in range(n - 1):
            c.cnot(w, w + 1)
        for w in range(n):
            c.rz(w, angles[i]).rx(w, angles[i + 1]).crz(w, (w + 2) % n, angles[i + 2])
            i += 3
    return c


def test_long_concrete_circuit_runs_as_one_native_program():
    """A concrete 98-gate circuit is lowered to a single ProgramOp; its state matches the
    dense product of its gates (built from the per-gate matrices in numpy)."""
    n = 5
    angles = np.random.default_rng(4).uniform(0, 2 * np.pi, 2 * n + 4 * 3 * n)
    c = _qcbm_like(n, angles)
    program, _, _ = _simulate._prepared(c)
    assert [type(op).__name__ for op in program] == ["ProgramOp"]
    ref = np.zeros(2**n, complex)
    ref[0] = 1
    for op, p in zip(*c.program):
        m = np.asarray(qsim._gates.full_matrix(op.gate, p, jnp.complex128))
        ref = full_operator(n, m, op.wires) @ ref
    np.testing.assert_allclose(np.asarray(c.state()), ref, atol=1e-10)


def test_traced_circuit_gradients_native_program_vs_per_gate():
    """Traced parameters: runs of gates become native programs (to_native); value and gradient
    equal the pure-JAX kernels' for backprop and adjoint (complex128, 1e-10)."""
    n = 5
    angles = jnp.asarray(np.random.default_rng(5).uniform(0, 2 * np.pi, 2 * n + 4 * 3 * n))
    obs = qsim.Z(0) + 0.5 * qsim.X(2)
    lowered = _scan.to_native(*_qcbm_like(n, angles).program, jnp.complex128, NATIVE)[0]
    assert all(type(op).__name__ == "ProgramOp" for op in lowered)

    def cost(a, diff, backend="native"):
        return _qcbm_like(n, a, backend).expectation(obs, diff=diff)

    got = {d: jax.jit(jax.value_and_grad(lambda a, d=d: cost(a, d)))(angles) for d in ("backprop", "adjoint")}
    ref = jax.jit(jax.value_and_grad(lambda a: cost(a, "backprop", "xla")))(angles)
    for d, (v, g) in got.items():
        assert abs(float(v) - float(ref[0])) < 1e-10, d
        np.testing.assert_allclose(np.asarray(g), np.asarray(ref[1]), atol=1e-10, err_msg=d)


def test_passes_count_what_the_kernels_run():
    """`merge.passes`: a layer costs one pass for its gates below the tile bits and one per 7
    above (the low tile taking up to 12 bits where that saves a high pass, as build_layer
    does), a linear step two, a dense step on 4 wires two, a diagonal one."""
    from qsim.backends.native_cpu import merge

    enc, st = _native.encode_step, _native.steps

    def layer_of(n):
        return tuple(x for w in range(n) for x in enc(st.DENSE, (w,)))

    n = 18
    layer = layer_of(n)                                                   # 11 low + 7 high gates
    assert merge.passes(layer, n) == 1 + 1
    assert merge.passes(layer_of(19), 19) == 1 + 1                        # 12 low + 7 high
    assert merge.passes(layer_of(20), 20) == 1 + 2                        # 10 low + 10 high
    assert merge.passes(layer_of(16), 16) == 1 + 1                        # 10 low + 6 high
    assert merge.passes(layer_of(12), 12) == 1                            # one tile
    assert merge.passes(layer[:7 * len(enc(st.DENSE, (0,)))], n) == 1    # wires 0..6: all high
    linear = st.encode_linear((0, 1, 2), (0b100, 0b110, 0b011))
    block = enc(st.DENSE, (0, 1, 2, 3))
    diag = enc(st.DIAGONAL, (4,))
    assert merge.passes(layer + linear + block + diag, n) == 2 + 2 + 2 + 1
    repeated = enc(st.DENSE, (3,)) + enc(st.DENSE, (3,))                  # a wire twice: two passes
    assert merge.passes(repeated, n) == 2


def _streaming_choice(build, n, monkeypatch):
    """Value and gradient of ``build(c, w)`` on n qubits, native and pure-JAX, and whether each
    native program ran merged: `_for_size` is watched (the state streams from memory above
    2**16 amplitudes: there the code with fewer passes runs)."""
    from qsim.backends.native_cpu import merge, primitives

    chosen, real = [], primitives._for_size

    def watch(code, dim):
        out = real(code, dim)
        merged = merge.plan(_native.steps.unfuse(code)) or _native.steps.unfuse(code)
        chosen.append(out == merged)   # (the derivatives' programs pass the merged code again)
        return out

    monkeypatch.setattr(primitives, "_for_size", watch)
    obs = qsim.PauliSum.from_string(" + ".join(f"Z{q}" for q in range(n)))

    def f(w, backend):
        c = qsim.Circuit(n, backend=backend)
        build(c, w)
        return c.expectation(obs, diff="adjoint")

    w = jnp.asarray(np.random.default_rng(3).uniform(-1, 1, 3 * n))
    got = jax.jit(jax.value_and_grad(lambda w: f(w, "native")))(w)
    ref = jax.jit(jax.value_and_grad(lambda w: f(w, "xla")))(w)
    assert abs(float(got[0]) - float(ref[0])) < 1e-4
    np.testing.assert_allclose(np.asarray(got[1]), np.asarray(ref[1]), atol=1e-4)
    return chosen


def test_streaming_states_run_the_code_with_fewer_passes(monkeypatch):
    """Above 2**16 amplitudes a layer of rotations between CNOT chains runs merged (layer passes
    and a linear step, not 4-wire blocks); a brickwork of two-qubit gates runs fused. Both give
    the pure-JAX kernels' value and gradient."""
    n = 17

    def hea(c, w):
        for q in range(n):
            c.ry(q, w[q]).rz(q, w[n + q])
        for q in range(n - 1):
            c.cnot(q, q + 1)
        for q in range(n):
            c.ry(q, w[2 * n + q])

    def brickwork(c, w):
        for q in range(0, n - 1, 2):
            c.rxx(q, q + 1, w[q]).crz(q, q + 1, w[n + q])
        for q in range(1, n - 1, 2):
            c.rxx(q, q + 1, w[q]).crz(q, q + 1, w[n + q])

    assert all(_streaming_choice(hea, n, monkeypatch))
    assert not any(_streaming_choice(brickwork, n, monkeypatch))


@pytest.mark.parametrize("dtype", DTYPES)
def test_linear_step_on_one_large_state(dtype):
    """A CNOT network on one state of 17 qubits (the linear step shares its copy and its gather
    over the threads from there): forward, inverse and the sweep's (x, g_x) against the gates
    applied one by one in numpy."""
    rng = np.random.default_rng(17)
    n = 17
    gates = [(q, q + 1) for q in range(n - 1)] + [(int(a), int(b)) for a, b in
                                                  (rng.permutation(n)[:2] for _ in range(5))]
    code = []
    for a, b in gates:
        code += _native.encode_step(_native.PERMUTATION, (b,), (a,), (1, 0))
    code = tuple(code)

    def network(v, gates):
        t = v.reshape((2,) * n).copy()
        for a, b in gates:                           # CNOT(control a, target b)
            sel = [slice(None)] * n
            sel[a] = 1
            sub = t[tuple(sel)]
            t[tuple(sel)] = np.flip(sub, axis=b - (b > a))
        return t.reshape(-1)

    x = random_state(rng, n, np.complex128)
    xs, c = jnp.asarray(x.astype(dtype)), jnp.zeros(1, dtype)
    fwd, inv = jax.jit(lambda s: (_native.apply_program(s, c, code),
                                  _native.apply_program(s, c, code, inverse=True)))(xs)
    assert_close(fwd, network(x, gates), dtype, scale=4)
    assert_close(inv, network(x, gates[::-1]), dtype, scale=4)
    g = random_state(rng, n, np.complex128)
    x_back, g_x, _ = _native.program_adjoint(code, c, fwd, jnp.asarray(g.astype(dtype)))
    assert_close(x_back, x, dtype, scale=4)
    assert_close(g_x, network(g, gates[::-1]), dtype, scale=4)     # a permutation: P^T = P^-1


def _numpy_network(v, n, ops):
    """CNOTs ``("cx", a, b)`` and one-qubit matrices ``("u", w, m)`` applied in order to the
    states ``v`` (batch, 2^n), one by one in numpy."""
    t = v.reshape((-1,) + (2,) * n).copy()
    for op in ops:
        if op[0] == "cx":
            _, a, b = op
            sel = [slice(None)] * (n + 1)
            sel[a + 1] = 1
            t[tuple(sel)] = np.flip(t[tuple(sel)], axis=b - (b > a) + 1)
        else:
            _, w, m = op
            t = np.moveaxis(np.tensordot(m, t, axes=([1], [w + 1])), 0, w + 1)
    return t.reshape(v.shape)


def _assert_ct_as_reference(ct, code, coefs, xs, g, dtype):
    """The sweep's coefficient cotangent ``ct`` against the pure-JAX reference's VJP of ``code``
    at the states ``xs`` with cotangent ``g`` (complex128)."""
    from qsim.backends.native_cpu import reference

    steps = _native.steps.decode(code)
    _, vjp = jax.vjp(lambda k: jax.vmap(lambda s: reference.run_code(s, k, steps))(xs.astype(np.complex128)),
                     jnp.asarray(coefs))
    want_ct = np.asarray(vjp(jnp.asarray(g))[0])
    assert_close(ct, want_ct, dtype, scale=4 * float(np.abs(want_ct).max()))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n, batch, chains", [(10, 3, 4), (12, 5, 3), (9, 1, 3), (13, 1, 4), (17, 1, 3), (17, 2, 2)])
def test_linear_steps_on_every_runner(dtype, n, batch, chains):
    """CNOT chains between layers of one-qubit gates, as in the hardware-efficient ansatz, run as
    linear steps that gather into a second buffer and carry on from there: on the batch runner
    (n = 10, 12), gate by gate (one state), over the threads (17 qubits) and a batch of large
    states; an even and an odd number of them (the state copied home at the end). Chains whose
    controls sit above their targets map the vector lanes among themselves (the AVX2 and AVX-512
    kernels permute a vector instead of gathering it), the reversed chain does not. Forward, inverse
    and the sweep's (x, g_x) against the gates applied one by one in numpy, its coefficient
    cotangent (13 qubits, gate by gate) against the reference."""
    rng = np.random.default_rng(n * 10 + batch)
    ops, code, flat, offset = [], [], [], 0
    for i in range(chains):
        down = i % 3 != 2                     # every third chain runs upwards: not lane-local
        pairs = [(q, q + 1) if down else (q + 1, q) for q in range(n - 1)]
        for a, b in (pairs if down else pairs[::-1]):
            ops.append(("cx", a, b))
            code += _native.encode_step(_native.PERMUTATION, (b,), (a,), (1, 0))
        for w in range(n):
            u = random_unitary(rng, 1)
            ops.append(("u", w, u))
            code += _native.encode_step(_native.DENSE, (w,), (), None, offset)
            flat.append(u.reshape(-1))
            offset += 4
    ops.append(("cx", 0, n - 1))          # a lone CNOT (a permutation step) after the last layer
    code += _native.encode_step(_native.PERMUTATION, (n - 1,), (0,), (1, 0))
    code = tuple(code)
    coefs = np.concatenate(flat)
    c = jnp.asarray(coefs.astype(dtype))
    x = random_state(rng, n, np.complex128, (batch,))
    xs = jnp.asarray(x.astype(dtype))
    fwd, inv = jax.jit(lambda s, k: (_native.apply_program(s, k, code),
                                     _native.apply_program(s, k, code, inverse=True)))(xs, c)
    assert_close(fwd, _numpy_network(x, n, ops), dtype, scale=4)
    inverse = [op if op[0] == "cx" else ("u", op[1], op[2].conj().T) for op in ops[::-1]]
    assert_close(inv, _numpy_network(x, n, inverse), dtype, scale=4)
    g = random_state(rng, n, np.complex128, (batch,))
    x_back, g_x, ct = _native.program_adjoint(code, c, fwd, jnp.asarray(g.astype(dtype)))
    assert_close(x_back, x, dtype, scale=4)
    transpose = [op if op[0] == "cx" else ("u", op[1], op[2].T) for op in ops[::-1]]
    assert_close(g_x, _numpy_network(g, n, transpose), dtype, scale=4)
    if n != 13:
        return
    _assert_ct_as_reference(ct, code, coefs, xs, g, dtype)


def _special_one_qubit(rng, kind):
    """A one-qubit matrix of the given kind: unitaries whose entries' phases split as
    diag(l) Q diag(r) with Q real in different ways (the layer kernels run those as real
    products between phase tables), and a non-unitary one (they do not split)."""
    a, b = rng.uniform(0, 2 * np.pi, 2)
    ry = np.array([[np.cos(a / 2), -np.sin(a / 2)], [np.sin(a / 2), np.cos(a / 2)]])
    rz = np.diag([np.exp(-0.5j * b), np.exp(0.5j * b)])
    return {"u": random_unitary(rng, 1), "rzry": rz @ ry, "ryrz": ry @ rz, "ry": ry, "rz": rz,
            "x": np.array([[0, 1], [1, 0]], complex), "y": np.array([[0, -1j], [1j, 0]]),
            "h": np.array([[1, 1], [1, -1]]) / np.sqrt(2), "xphase": np.array([[0, np.exp(1j * a)], [1, 0]]),
            "general": rng.normal(size=(2, 2)) + 1j * rng.normal(size=(2, 2))}[kind]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n, batch, unitary", [(12, 2, True), (16, 1, True), (14, 3, True), (16, 1, False),
                                                 (18, 1, True)])
def test_layers_of_split_phases_against_numpy(dtype, n, batch, unitary):
    """Layers whose passes run over many tiles split each gate on a vector bit into phases and a
    real 2x2 (one table of phases per side and pass, the sums of the sweep rescaled): random
    unitaries (both sides), RZ RY and RY RZ (one side), real and diagonal gates, X, Y and a
    phased X (zeros in the matrix), and a non-unitary gate, whose pass keeps complex products.
    Forward (and, for unitaries, the inverse and the sweep's x, g_x and coefficient cotangent)
    against the gates applied one by one in numpy; one state (gate by gate over the threads)
    and a batch. The gates on lane bits split too (a real product across lanes, their phases
    a factor per lane); at 12 qubits a pass is one tile of the whole state. At 18 qubits the low pass takes 11 gates, so that the other 7 make one high
    pass instead of two."""
    rng = np.random.default_rng(n + 100 * batch + unitary)
    kinds = ["u", "rzry", "ryrz", "ry", "rz", "x", "y", "h", "xphase"]
    ops, code, flat, offset = [], [], [], 0
    for layer in range(3):
        for w in range(n):
            kind = "general" if (not unitary and w == n - 1 - layer) else (
                "rzry" if layer == 0 else kinds[int(rng.integers(len(kinds)))])
            u = _special_one_qubit(rng, kind)
            ops.append(("u", w, u))
            code += _native.encode_step(_native.DENSE, (w,), (), None, offset)
            flat.append(u.reshape(-1))
            offset += 4
        ops.append(("cx", layer, n - 1 - layer))
        code += _native.encode_step(_native.PERMUTATION, (n - 1 - layer,), (layer,), (1, 0))
    code = tuple(code)
    coefs = np.concatenate(flat)
    c = jnp.asarray(coefs.astype(dtype))
    x = random_state(rng, n, np.complex128, (batch,))
    xs = jnp.asarray(x.astype(dtype))
    fwd = jax.jit(lambda s, k: _native.apply_program(s, k, code))(xs, c)
    scale = 4 * max(1.0, float(np.abs(coefs).max()) ** 3)
    assert_close(fwd, _numpy_network(x, n, ops), dtype, scale=scale)
    transpose = [op if op[0] == "cx" else ("u", op[1], op[2].T) for op in ops[::-1]]
    tr = jax.jit(lambda s, k: _native.program(s, k, code, 2))(xs, c)
    assert_close(tr, _numpy_network(x, n, transpose), dtype, scale=scale)
    if not unitary:
        return
    inv = jax.jit(lambda s, k: _native.apply_program(s, k, code, inverse=True))(xs, c)
    inverse = [op if op[0] == "cx" else ("u", op[1], op[2].conj().T) for op in ops[::-1]]
    assert_close(inv, _numpy_network(x, n, inverse), dtype, scale=4)
    g = random_state(rng, n, np.complex128, (batch,))
    x_back, g_x, ct = _native.program_adjoint(code, c, fwd, jnp.asarray(g.astype(dtype)))
    assert_close(x_back, x, dtype, scale=4)
    assert_close(g_x, _numpy_network(g, n, transpose), dtype, scale=4)
    _assert_ct_as_reference(ct, code, coefs, xs, g, dtype)


def test_streaming_concrete_programs_run_unfused_when_that_makes_fewer_passes():
    """A concrete program (fused on the host into blocks) on a state that streams from memory runs
    gate by gate when that makes fewer passes: layers of rotations between CNOT chains do (the
    kernels merge them into layer passes and linear steps), a brickwork of two-qubit gates does
    not. Both give the pure-JAX kernels' state."""
    from qsim import _simulate

    n = 17
    w = np.random.default_rng(5).uniform(-1, 1, (2, 2, n))    # concrete angles

    def hea(c):
        for layer in range(2):
            for q in range(n):
                c.ry(q, w[layer, 0, q]).rz(q, w[layer, 1, q])
            for q in range(n - 1):
                c.cnot(q, q + 1)

    def brickwork(c):
        for layer in range(2):
            for start in (0, 1):
                for q in range(start, n - 1, 2):
                    c.rxx(q, q + 1, w[layer, 0, q]).crz(q, q + 1, w[layer, 1, q])

    for build, blocks in ((hea, False), (brickwork, True)):
        c, ref = qsim.Circuit(n, backend="native"), qsim.Circuit(n, backend="xla")
        build(c)
        build(ref)
        program, _, _ = _simulate._prepared(c)
        steps = [s for op in program for s in _native.steps.decode(op.code)]
        widest = max(len(s.targets) + len(s.controls) for s in steps)
        assert (widest > 2) == blocks, (build.__name__, widest)
        np.testing.assert_allclose(np.asarray(c.state()), np.asarray(ref.state()), atol=2e-5)


def test_backend_choice_is_per_circuit():
    """``Circuit(..., backend="xla")`` lowers to XLA ops only, even after qsim's own jitted
    functions have cached the native version (the backend is part of their static key)."""
    def f(a, backend):
        return qsim.Circuit(3, backend=backend).rx(0, a).cnot(0, 1).rz(2, a).expectation(qsim.Z(1))

    a = jnp.float32(0.3)
    native = jax.jit(lambda x: f(x, "native")).lower(a).as_text()
    v_native = float(jax.jit(lambda x: f(x, "native"))(a))
    pure = jax.jit(lambda x: f(x, "xla")).lower(a).as_text()
    v_pure = float(jax.jit(lambda x: f(x, "xla"))(a))
    assert "qsim_native" in native and "qsim_native" not in pure
    assert abs(v_pure - v_native) < 1e-6
