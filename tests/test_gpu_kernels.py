"""The GPU backend on CPU: slice-and-combine kernels, chunked in-place updates, donation, device script.

The kernels are plain JAX, so everything here runs on any platform: each kernel
application is compared with ``operator(n, U, wires) @ psi`` (`reference`) for every
kind of wire placement (top, middle, bottom, adjacent, far apart, reversed) and
k = 1..5 target qubits, with and without controls, for both formulations and for
three chunk sizes (one direct pass; a loop over chunks; the smallest chunk, one
partner group per iteration). Whole circuits through ``Circuit(..., backend=<gpu
backend>)`` are compared with the XLA backend (state, expectation, gradients of each
method, vmap). Placements of one test are traced into one jitted function (one
compile). The GPU-only behaviour (speed, memory at 33 qubits) is measured by
``python -m benchmarks.gpu_device`` on a device; its ``--smoke`` run is tested here.
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import qsim
from qsim import _inplace, _simulate
from qsim.backends import GPU, XLA, Backend, gpu, resolve
from reference import (DTYPES, TOL, controlled, operator, permutation_matrix, random_state,
                       random_unitary)

N = 6
# (controls, targets): top, middle, bottom, adjacent, far apart, reversed, unsorted; k = 1..5
DENSE_PLACEMENTS = [
    ((), (0,)), ((), (3,)), ((), (5,)),
    ((), (0, 1)), ((), (1, 0)), ((), (4, 5)), ((), (0, 5)), ((), (5, 2)),
    ((), (0, 1, 2)), ((), (3, 4, 5)), ((), (5, 3, 1)), ((), (2, 0, 4)),
    ((), (0, 1, 2, 3)), ((), (2, 3, 4, 5)), ((), (5, 4, 1, 0)),
    ((), (0, 1, 2, 3, 4)), ((), (1, 2, 3, 4, 5)), ((), (4, 0, 3, 1, 5)),
    ((0,), (5,)), ((5,), (0,)), ((2,), (3, 1)), ((0, 5), (2,)), ((1, 4), (3, 0, 5)), ((3,), (5, 4, 2, 1, 0)),
]
PERM_PLACEMENTS = [((), (0,), (1, 0)), ((), (5,), (1, 0)), ((0,), (5,), (1, 0)), ((5, 1), (3,), (1, 0)),
                   ((), (4, 1), (0, 2, 1, 3)), ((2,), (5, 0), (0, 2, 1, 3)), ((), (3, 0, 5), (7, 3, 5, 1, 6, 2, 4, 0))]
DIAG_PLACEMENTS = [(0,), (5,), (3, 1), (0, 2, 5)]
CHUNKS = (gpu.CHUNK_QUBITS, 3, 0)     # one direct pass; a loop over 2^3-amplitude chunks; one group per chunk


# a few placements for the other paths (the loop path gets every placement)
FEW = [DENSE_PLACEMENTS[i] for i in (0, 7, 11, 17, 22, 23)]


def check_dense(cases_by_config, dtype, rng):
    """Every ``(formulation, chunk_qubits) -> placements`` case traced into one function, vs kron."""
    psi = random_state(rng, N, dtype)
    cases = [(cfg, c, t, random_unitary(rng, len(t))) for cfg, places in cases_by_config.items()
             for c, t in places]

    def run(s, us):
        return [gpu.apply_dense(s, u, t, c, formulation=f, chunk_qubits=chunk)
                for ((f, chunk), c, t, _), u in zip(cases, us)]

    outs = jax.jit(run)(jnp.asarray(psi), [jnp.asarray(u, dtype) for *_, u in cases])
    for (cfg, c, t, u), out in zip(cases, outs):
        assert out.dtype == dtype and out.shape == (1 << N,)
        ref = operator(N, controlled(u, len(c)), c + t) @ psi.astype(np.complex128)
        np.testing.assert_allclose(np.asarray(out), ref, atol=TOL[dtype], err_msg=f"{cfg}: controls {c} targets {t}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_dense_matches_kron_reference_everywhere(dtype, rng):
    """Every placement through the chunk loop; a few through one direct pass, one partner group
    per chunk, and the real-plane formulation."""
    check_dense({("complex", 3): DENSE_PLACEMENTS, ("complex", gpu.CHUNK_QUBITS): FEW,
                 ("complex", 0): FEW[:3], ("real", 3): FEW}, dtype, rng)


@pytest.mark.slow
@pytest.mark.parametrize("formulation", gpu.FORMULATIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_dense_matches_kron_reference_every_configuration(formulation, dtype, rng):
    check_dense({(formulation, chunk): DENSE_PLACEMENTS for chunk in CHUNKS}, dtype, rng)


@pytest.mark.parametrize("dtype", DTYPES)
def test_permutation_and_diagonal_match_kron_reference(dtype, rng):
    psi = random_state(rng, N, dtype)
    diags = [np.exp(1j * rng.uniform(-np.pi, np.pi, 1 << len(w))) for w in DIAG_PLACEMENTS]

    def run(s, ds):
        perms = [[gpu.apply_permutation(s, p, t, c, chunk_qubits=chunk) for c, t, p in PERM_PLACEMENTS]
                 for chunk in CHUNKS]
        diag = [gpu.Kernels(chunk_qubits=chunk).apply_diagonal(s, d, w)
                for chunk in CHUNKS for d, w in zip(ds, DIAG_PLACEMENTS)]
        return perms, diag

    perms, diag = jax.jit(run)(jnp.asarray(psi), [jnp.asarray(d, dtype) for d in diags])
    for row in perms:
        for (c, t, p), out in zip(PERM_PLACEMENTS, row):
            ref = operator(N, controlled(permutation_matrix(p), len(c)), c + t) @ psi
            np.testing.assert_allclose(np.asarray(out), ref, atol=TOL[dtype], err_msg=f"{c} {t} {p}")
    for out, (d, w) in zip(diag, [(d, w) for _ in CHUNKS for d, w in zip(diags, DIAG_PLACEMENTS)]):
        np.testing.assert_allclose(np.asarray(out), operator(N, np.diag(d), w) @ psi, atol=TOL[dtype])


def test_plan_chunks_hold_every_partner_and_loop_over_the_top_free_wires():
    shape, axis_of, loops = gpu.plan(10, (3,), (7,), chunk_qubits=4)
    assert shape == (8, 2, 4, 2, 2, 4) and axis_of == {3: 1, 7: 4} and loops == ((0, 3), (2, 2))
    chunk = np.prod(shape) // (2 * 8 * 4)          # control fixed at 1, loop axes indexed
    assert chunk == 1 << 4
    assert gpu.plan(10, (0, 9), (), chunk_qubits=40)[2] == ()          # small state: no loop
    assert gpu.plan(4, (1,), (), chunk_qubits=0)[2] == ((0, 1), (2, 2))  # chunk = the partner pair


def test_dense_steps_contain_no_dot():
    """The point of the formulation: no dot_general (cuBLAS GEMM, TF32 on Hopper) anywhere."""
    u = jnp.asarray(random_unitary(np.random.default_rng(1), 3), jnp.complex64)
    for kernels in (gpu.Kernels(), gpu.Kernels("real", 2)):
        text = jax.jit(lambda s: kernels.apply_dense(s, u, (4, 0, 2), (1,))).lower(
            jnp.zeros(1 << N, jnp.complex64)).as_text()
        assert "dot_general" not in text and "convolution" not in text
    assert "dot_general" in jax.jit(lambda s: XLA.apply_dense(s, u, (4, 0, 2))).lower(
        jnp.zeros(1 << N, jnp.complex64)).as_text()


# ------------------------------------------------------------------ circuits ------------

def _layer(c, w):
    n = c.n_qubits
    for q in range(n):
        c.ry(q, w[q, 0]).rz(q, w[q, 1])
    for q in range(n - 1):
        c.cnot(q, q + 1)
    c.crx(n - 1, 0, w[0, 0]).toffoli(0, 2, 1)


def _circuit(params, backend, n=5, fuse=None):
    c = qsim.Circuit(n, backend=backend, max_fused_qubits=fuse)
    c.h(0).u3(2, params[0, 0, 0], 0.3, -0.2).cnot(4, 1).swap(0, 3).cz(1, 2)
    c.unitary(jnp.asarray(random_unitary(np.random.default_rng(5), 3)), (3, 0, 4))
    c.repeat(_layer, params)
    return c


H = 0.7 * qsim.Z(0) @ qsim.Z(1) - 0.4 * qsim.X(2) + 0.2 * qsim.Y(3) @ qsim.X(4)
SMALL_CHUNKS = gpu.backend(chunk_qubits=2)


@pytest.mark.parametrize("backend, fuse", [(GPU, 5), (SMALL_CHUNKS, 0), (SMALL_CHUNKS, 4),
                                           (gpu.backend("real", 1), 3)], ids=str)
def test_circuit_state_and_expectation_match_xla(backend, fuse):
    params = jnp.asarray(np.random.default_rng(3).uniform(-np.pi, np.pi, (2, 5, 2)), jnp.float32)
    ours, ref = _circuit(params, backend, fuse=fuse), _circuit(params, "xla", fuse=fuse)
    np.testing.assert_allclose(np.asarray(ours.state()), np.asarray(ref.state()), atol=1e-5)
    np.testing.assert_allclose(float(ours.expectation(H)), float(ref.expectation(H)), atol=1e-5)


def _small(params, backend):
    c = qsim.Circuit(4, dtype=jnp.complex128, backend=backend, max_fused_qubits=3)
    c.h(0).rx(1, params[0, 0, 0]).cnot(1, 3).crz(3, 0, params[0, 2, 1])
    c.repeat(_layer, params)
    return c


H4 = 0.7 * qsim.Z(0) @ qsim.Z(1) - 0.4 * qsim.X(2) + 0.2 * qsim.Y(3)


@pytest.mark.parametrize("diff", ["backprop", "adjoint"])   # parameter-shift only runs the forward kernels
def test_gradients_match_xla_complex128(diff):
    params = jnp.asarray(np.random.default_rng(4).uniform(-np.pi, np.pi, (1, 4, 2)))
    grad = lambda backend: jax.jit(jax.grad(lambda p: _small(p, backend).expectation(H4, diff=diff)))  # noqa: E731
    np.testing.assert_allclose(np.asarray(grad(SMALL_CHUNKS)(params)), np.asarray(grad("xla")(params)), atol=1e-10)


def test_vmap_over_parameters_and_jacfwd_match_xla():
    params = jnp.asarray(np.random.default_rng(6).uniform(-np.pi, np.pi, (3, 1, 4, 2)))
    f = lambda backend: jax.vmap(lambda p: _small(p, backend).expectation(H4))  # noqa: E731
    np.testing.assert_allclose(np.asarray(f(SMALL_CHUNKS)(params)), np.asarray(f("xla")(params)), atol=1e-10)
    j = lambda backend: jax.jacfwd(lambda p: _small(p, backend).probs())(params[0])  # noqa: E731
    np.testing.assert_allclose(np.asarray(j(SMALL_CHUNKS)), np.asarray(j("xla")), atol=1e-10)


# ---------------------------------------------------------------- in place ------------

def _big_circuit(n, backend, state=None):
    c = qsim.Circuit(n, state=state, backend=backend)
    for w in range(n):
        c.h(w)
    c.rz(3, 0.4).cnot(0, n - 1).unitary(jnp.asarray(random_unitary(np.random.default_rng(2), 2)), (n - 1, 2))
    return c.toffoli(1, 5, 0).rx(n // 2, 0.3).cz(2, 7).swap(4, n - 2)


def test_inplace_run_aliases_the_donated_state_with_small_temporaries():
    n = 14
    backend = gpu.backend(chunk_qubits=8)
    psi = jnp.asarray(random_state(np.random.default_rng(0), n, np.complex64))
    mem = _inplace.lower_inplace(_big_circuit(n, backend), psi).memory_analysis()
    assert mem.alias_size_in_bytes == psi.nbytes            # the output is written into the input
    assert mem.temp_size_in_bytes < psi.nbytes / 8          # chunks, not states
    expected = np.asarray(_big_circuit(n, "xla", state=psi).state())
    out = qsim.apply_inplace(_big_circuit(n, backend), psi)
    assert psi.is_deleted()
    np.testing.assert_allclose(np.asarray(out), expected, atol=1e-5)


def test_long_concrete_programs_run_unrolled_on_the_gpu_backend():
    """A `lax.switch` over steps copies the state each step (XLA conditionals): the GPU backend
    runs the fused program unrolled instead, with no full-state copy."""
    assert XLA.scan_concrete and not GPU.scan_concrete and not SMALL_CHUNKS.scan_concrete
    def build(backend):
        c = qsim.Circuit(8, backend=backend)
        for _ in range(10):
            for w in range(8):
                c.rx(w, 0.1 * w).cnot(w, (w + 1) % 8)
        return c

    c = build(SMALL_CHUNKS)
    program, _, k = _simulate._prepared(c)
    assert k == _simulate.DEFAULT_FUSION["gpu"] and len(program) == c.n_ops     # fused in the jit, not lowered
    assert len(_simulate._prepared(build("xla"))[0]) < c.n_ops                  # lowered to one scan
    np.testing.assert_allclose(np.asarray(c.state()), np.asarray(build("xla").state()), atol=1e-5)


def test_apply_inplace_rejects_bad_input():
    c = qsim.Circuit(3, backend="gpu").h(0)
    good = jnp.zeros(8, jnp.complex64).at[0].set(1)
    with pytest.raises(TypeError, match="circuit must be a qsim.Circuit"):
        qsim.apply_inplace("h 0", good)
    with pytest.raises(TypeError, match="state must be a jax.Array"):
        qsim.apply_inplace(c, np.zeros(8, np.complex64))
    with pytest.raises(ValueError, match=r"shape \(8,\) and dtype complex64"):
        qsim.apply_inplace(c, jnp.zeros(16, jnp.complex64))
    with pytest.raises(ValueError, match=r"shape \(8,\) and dtype complex64"):
        qsim.apply_inplace(c, jnp.zeros(8, jnp.complex128))
    with pytest.raises(ValueError, match="already has an initial state"):
        qsim.apply_inplace(qsim.Circuit(3, state=good), jnp.zeros(8, jnp.complex64))
    with pytest.raises(ValueError, match="only gate circuits run in place"):
        qsim.apply_inplace(qsim.Circuit(3).h(0).measure(0).x(0), good)


# ---------------------------------------------------------------- selection ------------

def test_backend_names_and_configured_backends_resolve():
    assert resolve("gpu") is GPU and GPU.kernels == gpu.DEFAULT and gpu.backend() == GPU
    assert resolve("auto") != GPU                      # these tests run on a CPU
    custom = gpu.backend("real", 5)
    assert resolve(custom) is custom and custom != GPU and custom == gpu.backend("real", 5)
    assert qsim.Circuit(2, backend=custom).backend is custom
    assert _simulate.fusion_width(qsim.Circuit(2, backend="gpu")) == _simulate.DEFAULT_FUSION["gpu"]
    assert isinstance(custom, Backend)


def test_bad_kernel_options_are_rejected():
    with pytest.raises(ValueError, match="formulation must be one of"):
        gpu.Kernels("tf32")
    with pytest.raises(ValueError, match="chunk_qubits must be an int >= 0"):
        gpu.backend(chunk_qubits=-1)
    with pytest.raises(ValueError, match="chunk_qubits must be an int >= 0"):
        gpu.Kernels(chunk_qubits=2.5)


def test_device_script_smoke_run_writes_json(tmp_path):
    from benchmarks import gpu_device

    x64 = jax.config.jax_enable_x64
    path = gpu_device.main(["--smoke", "--out", str(tmp_path)])
    assert jax.config.jax_enable_x64 == x64
    data = json.loads(path.read_text())
    assert {"meta", "notes", "results"} <= set(data)
    assert data["meta"]["bandwidth"]["bytes_per_s"] > 0 and data["meta"]["jax_backend"] == "cpu"
    rows = data["results"]
    assert all("error" not in r for r in rows), [r for r in rows if "error" in r]
    kinds = {r["suite"] for r in rows}
    assert {"gpu-gates", "gpu-variants", "gpu-qcbm", "gpu-hea", "gpu-fit", "gpu-fusion"} <= kinds
    gates = [r for r in rows if r["suite"] == "gpu-gates"]
    assert {r["impl"] for r in gates} == {"qsim gpu", "qsim xla"}
    assert {r["wire"] for r in gates} == {"top", "mid", "bottom"}
    assert {r["gate"] for r in gates} >= {"h", "rz", "cnot", "unitary2", "fused3", "fused4", "fused5"}
    assert all(r["time_s"] > 0 and r["x_floor"] > 0 for r in gates)
    (fit,) = [r for r in rows if r["suite"] == "gpu-fit"]
    assert fit["alias_bytes"] == fit["state_bytes"] and fit["temp_bytes"] < fit["state_bytes"] / 4 and fit["ok"]
