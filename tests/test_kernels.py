"""The pure-JAX kernels against dense ``np.kron`` operators on random states.

Each kernel application is compared with ``operator(n, U, wires) @ psi`` (see
`reference`), for n = 1..6 qubits and many wire placements: adjacent, reversed,
far apart, unsorted; the exhaustive sweep (every ordered choice of k = 1..3
wires out of n = 4, 5) is marked slow. XLA compiles each placement separately
(about 40 ms each on CPU), so the placements of one test are traced into one
jitted function and compiled together.
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qsim.backends import xla as _kernels
from reference import (DTYPES, TOL, controlled, operator, permutation_matrix, random_state,
                       random_unitary)

KINDS = ("dense", "diagonal", "permutation", "controlled_dense", "controlled_permutation")


def representative_placements(n):
    """A few choices of k = 1..3 wires out of n: last wire, adjacent reversed, far apart, unsorted, reversed."""
    out = [(n - 1,), (1, 0), (0, n - 1), (n - 2, 0, n - 1), (2, 1, 0)]
    return list(dict.fromkeys(p for p in out if len(set(p)) == len(p) and max(p) < n))


def permutation_of(kind, k, rng):
    """A permutation of 2^k basis states of the given kind (each kernel path: flip, bits, gather)."""
    d = 1 << k
    if kind == "flip":                                   # j -> j ^ mask
        mask = int(rng.integers(1, d))
        return tuple(j ^ mask for j in range(d))
    if kind == "bits":                                   # a permutation of the k bits (reversal)
        return tuple(int(format(j, f"0{k}b")[::-1], 2) for j in range(d))
    return tuple(int(x) for x in rng.permutation(d))     # general gather


def make_case(kind, wires, rng, i=0):
    """(kernel call ``f(state, block)``, block, reference k-wire matrix, wires it acts on, controls first)."""
    n_ctrl = 0
    if kind.startswith("controlled"):
        if len(wires) < 2:
            return None
        n_ctrl = 1 + (i % (len(wires) - 1))               # 1 .. len(wires)-1 controls
    ctrls, targets = tuple(wires[:n_ctrl]), tuple(wires[n_ctrl:])
    k = len(targets)
    if kind.endswith("dense"):
        u = random_unitary(rng, k)
        return (lambda s, b: _kernels.apply_dense(s, b, targets, ctrls)), u, controlled(u, n_ctrl), wires
    if kind == "diagonal":
        d = np.exp(1j * rng.uniform(-np.pi, np.pi, 1 << k)) * rng.uniform(0.5, 1.5, 1 << k)  # not unitary: fine
        return (lambda s, b: _kernels.apply_diagonal(s, b, targets)), d, np.diag(d), wires
    perm = permutation_of(("flip", "bits", "gather")[i % 3] if k > 1 else "flip", k, rng)
    p = permutation_matrix(perm)
    return (lambda s, b: _kernels.apply_permutation(s, perm, targets, ctrls)), np.zeros(()), controlled(p, n_ctrl), wires


def check(kinds, n, placements, dtype, rng):
    """Every kind of kernel on every placement, traced into one function, vs the dense reference."""
    cases = [(kind, c) for kind in kinds for i, w in enumerate(placements)
             if (c := make_case(kind, w, rng, i)) is not None]
    psi = random_state(rng, n, dtype)
    blocks = [jnp.asarray(b, dtype) for _, (_, b, _, _) in cases]

    def run(s, blocks):
        return [f(s, b) for (_, (f, _, _, _)), b in zip(cases, blocks)]

    outs = jax.jit(run)(jnp.asarray(psi), blocks)
    for (kind, (_, _, ref_u, wires)), out in zip(cases, outs):
        assert out.shape == (1 << n,) and out.dtype == dtype, (kind, wires)
        ref = operator(n, ref_u, wires) @ psi.astype(np.complex128)
        np.testing.assert_allclose(np.asarray(out), ref, atol=TOL[dtype], err_msg=f"{kind} on wires {wires}")


@pytest.mark.parametrize("n", range(1, 7))
def test_kernels_representative_placements_complex128(n, rng):
    check(KINDS, n, representative_placements(n), np.complex128, rng)


def test_kernels_complex64(rng):
    check(KINDS, 5, [(4, 2), (3, 0, 4)], np.complex64, rng)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", DTYPES, ids=["c64", "c128"])
@pytest.mark.parametrize("n,k", [(4, 1), (4, 2), (4, 3), (5, 1), (5, 2), (5, 3)])
def test_kernels_every_placement(n, k, dtype, rng):
    check(KINDS, n, list(itertools.permutations(range(n), k)), dtype, rng)


@pytest.mark.parametrize("kind", ("flip", "bits", "gather"))
@pytest.mark.parametrize("k", (2, 3))
def test_permutation_paths(kind, k, rng):
    """Each permutation path (flip / bit transpose / gather) on scattered, unsorted wires."""
    n = 5
    wires = (4, 1, 2)[:k] if k == 3 else (3, 0)
    perm = permutation_of(kind, k, rng)
    psi = random_state(rng, n)
    out = jax.jit(lambda s: _kernels.apply_permutation(s, perm, wires))(jnp.asarray(psi))
    np.testing.assert_allclose(out, operator(n, permutation_matrix(perm), wires) @ psi, atol=1e-12)


def test_kernels_preserve_input_and_identity(rng):
    """Kernels are pure (the input array is unchanged) and the identity block is a no-op."""
    psi = jnp.asarray(random_state(rng, 3))
    before = np.array(psi)
    out = jax.jit(lambda s: _kernels.apply_dense(s, jnp.eye(4, dtype=s.dtype), (2, 0), (1,)))(psi)
    np.testing.assert_array_equal(np.asarray(psi), before)
    np.testing.assert_allclose(out, before, atol=1e-14)


def test_vmap_over_states_equals_loop(rng):
    n, wires = 4, (2, 0, 3)
    batch = jnp.asarray(np.stack([random_state(rng, n) for _ in range(5)]))
    for i, kind in enumerate(KINDS):
        f, block, _, _ = make_case(kind, wires, rng, i)
        b = jnp.asarray(block, batch.dtype)
        got = jax.jit(jax.vmap(lambda s: f(s, b)))(batch)
        assert got.shape == batch.shape
        one = jax.jit(f)
        for j in range(batch.shape[0]):
            np.testing.assert_allclose(got[j], one(batch[j], b), atol=1e-12, err_msg=kind)


def test_vmap_over_matrices_equals_loop(rng):
    """Batched gate blocks (as under vmap over parameters) with a shared state."""
    n, wires = 4, (3, 1)
    psi = jnp.asarray(random_state(rng, n))
    us = jnp.asarray(np.stack([random_unitary(rng, 2) for _ in range(4)]))
    ds = jnp.asarray(np.exp(1j * rng.uniform(-3, 3, (4, 4))))
    got_u = jax.jit(jax.vmap(lambda u: _kernels.apply_dense(psi, u, wires, (0,))))(us)
    got_d = jax.jit(jax.vmap(lambda d: _kernels.apply_diagonal(psi, d, wires)))(ds)
    for i in range(4):
        ref_u = operator(n, controlled(np.asarray(us[i])), (0,) + wires) @ np.asarray(psi)
        ref_d = operator(n, np.diag(np.asarray(ds[i])), wires) @ np.asarray(psi)
        np.testing.assert_allclose(got_u[i], ref_u, atol=1e-12)
        np.testing.assert_allclose(got_d[i], ref_d, atol=1e-12)


def test_grad_through_dense_kernel(rng):
    """d/dt of a real function of the kernel output vs central finite differences (float64)."""
    n, wires = 3, (2, 0)
    psi = jnp.asarray(random_state(rng, n))
    gen = jnp.asarray(np.kron(np.array([[0, 1], [1, 0]]), np.array([[1, 0], [0, -1]])), jnp.complex128)

    def f(t):
        u = jnp.cos(t) * jnp.eye(4) - 1j * jnp.sin(t) * gen    # exp(-i t P), P^2 = I
        out = _kernels.apply_dense(psi, u, wires, (1,))
        return jnp.sum(jnp.abs(out[:4]) ** 2)

    t0, eps = 0.4, 1e-6
    fj = jax.jit(f)
    fd = (fj(t0 + eps) - fj(t0 - eps)) / (2 * eps)
    np.testing.assert_allclose(jax.jit(jax.grad(f))(t0), fd, atol=1e-8)
