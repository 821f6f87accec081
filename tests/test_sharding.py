"""Sharded states (``Circuit(n, mesh=mesh)``) and data-parallel training.

The pytest process sees one CPU device, so the multi-device checks run in ONE
subprocess with ``XLA_FLAGS=--xla_force_host_platform_device_count=8``
(`tests/sharding_checks.py`, against single-device runs) and the data-parallel
example runs in its own processes (forced devices, and two processes joined by
`jax.distributed` on loopback). Here: the layout planner against a brute-force
optimum and a dense emulation, a one-device mesh, and the argument checks.
"""

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh

import qsim
from qsim import _layout

ROOT = Path(__file__).resolve().parents[1]
STATE_TOL, GRAD_TOL = 1e-5, 1e-4     # complex64 states and gradients, as the issue asks


# ------------------------------------------------------------ the planner (pure Python) ------

def _random_program(n, n_gates, rng):
    names = ("h", "rx", "rz", "cnot", "cz", "swap", "rxx", "toffoli", "crx")
    c = qsim.Circuit(n)
    for _ in range(n_gates):
        name = names[rng.integers(len(names))]
        k = qsim.GATES[name].n_wires
        wires = [int(w) for w in rng.choice(n, k, replace=False)]
        getattr(c, name)(*wires, *([0.3] * qsim.GATES[name].n_params))
    return c.program[0]


def _optimal_swaps(program, n, g):
    """Fewest swaps of any schedule (not only on demand): dynamic programming over the set of
    global wires before each gate; one swap exchanges one global and one local wire."""
    sets = [frozenset(s) for s in itertools.combinations(range(n), g)]
    cost = {s: (0 if s == frozenset(range(g)) else float("inf")) for s in sets}
    for op in program:
        need = set(() if op.gate.structure == "diagonal" else op.targets)
        cost = {t: (min(c + len(s - t) for s, c in cost.items()) if not need & t else float("inf")) for t in sets}
    return min(cost.values())


@pytest.mark.parametrize("n, g", [(4, 1), (5, 2), (6, 3)])
def test_planner_needs_the_fewest_swaps(n, g, rng):
    for _ in range(6):
        program = _random_program(n, 14, rng)
        plan = _layout.plan(program, n, g)
        assert plan.swaps == _optimal_swaps(program, n, g) <= plan.naive


def _emulate(plan_items, n, g, state):
    """Run a plan's swaps on a dense state (gates skipped): a swap exchanges two bit axes."""
    t = state.reshape((2,) * n)
    for step in plan_items:
        t = np.swapaxes(t, step.global_pos, g + step.local_wire)
    return t


def test_undo_brings_every_wire_home(rng):
    n, g = 7, 3
    psi = rng.standard_normal(1 << n)
    for _ in range(20):
        pos = tuple(int(p) for p in rng.permutation(n))
        physical = np.transpose(psi.reshape((2,) * n), np.argsort(pos))   # axis p holds the wire at p
        swaps, axes = _layout.undo(pos, n, g)
        t = _emulate(swaps, n, g, physical)
        local = np.transpose(t.reshape((1 << g,) + (2,) * (n - g)), (0,) + tuple(1 + a for a in axes))
        np.testing.assert_array_equal(local.reshape(-1), psi)


def test_plan_swaps_move_wires_to_the_final_layout(rng):
    n, g = 6, 2
    program = _random_program(n, 30, rng)
    plan = _layout.plan(program, n, g)
    swaps = [s.record for s in plan.items if isinstance(s.record, _layout.SwapOp)]
    psi = rng.standard_normal(1 << n)
    t = _emulate(swaps, n, g, psi)
    np.testing.assert_array_equal(t, np.transpose(psi.reshape((2,) * n), np.argsort(plan.final)))
    for step in plan.items:                  # every gate record acts on local wires only
        if isinstance(step.record, qsim._ir.GateOp):
            assert all(0 <= w < n - g for w in step.record.wires)


def test_repeat_plan_is_periodic_and_compiles_once():
    n, g = 8, 2

    def layer(c, w):
        for q in range(n):
            c.ry(q, w[q, 0]).rz(q, w[q, 1])
        for q in range(n - 1):
            c.cnot(q, q + 1)

    plans = [_layout.plan(qsim.Circuit(n).repeat(layer, jnp.zeros((L, n, 2))).program[0], n, g) for L in (40, 200)]
    assert plans[0].compiled_swaps == plans[1].compiled_swaps          # a scan body, whatever the depth
    assert plans[1].swaps > plans[0].swaps and plans[1].swaps < plans[1].naive / 2
    (rp,) = plans[1].items
    assert rp.n_periods > 0 and len(rp.prefix) + len(rp.period) <= 4


# ------------------------------------------------------------ in this process (one device) ------

def test_one_device_mesh_equals_the_plain_circuit():
    mesh = Mesh(np.array(jax.devices()[:1]), ("d",))
    H = qsim.X(0) @ qsim.Z(2) + 0.5 * qsim.Y(1)

    def f(t, m):
        return qsim.Circuit(3, mesh=m).h(0).rx(1, t[0]).cnot(0, 2).crz(2, 1, t[1]).expectation(H)

    t = jnp.array([0.4, 1.3], jnp.float32)
    np.testing.assert_allclose(jax.grad(f)(t, mesh), jax.grad(f)(t, None), atol=GRAD_TOL)
    c = qsim.Circuit(3, mesh=mesh).h(0).cnot(0, 2)
    np.testing.assert_allclose(c.state(), qsim.Circuit(3).h(0).cnot(0, 2).state(), atol=STATE_TOL)


def test_mesh_argument_errors():
    with pytest.raises(TypeError, match="mesh must be a jax.sharding.Mesh"):
        qsim.Circuit(3, mesh="devices")
    two_axes = Mesh(np.array(jax.devices()[:1]).reshape(1, 1), ("a", "b"))
    with pytest.raises(ValueError, match="exactly one axis"):
        qsim.Circuit(3, mesh=two_axes)


# ------------------------------------------------------------ 8 forced CPU devices (subprocess) ------

@pytest.fixture(scope="module")
def checks():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8")
    out = subprocess.run([sys.executable, str(ROOT / "tests" / "sharding_checks.py")], env=env, cwd=str(ROOT),
                         capture_output=True, text=True, timeout=900)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("SHARDING-CHECKS ")), None)
    assert line is not None, out.stderr[-3000:]
    return json.loads(line[len("SHARDING-CHECKS "):])


def _picked(checks, *words):
    found = {k: v for k, v in checks.items() if all(w in k for w in words)}
    assert found, words
    return found


@pytest.mark.parametrize("d", [2, 4, 8])
def test_every_gate_kind_on_every_placement(checks, d):
    """Every kind of gate at every D; at D=8 (3 global, 3 local wires) on every placement."""
    assert checks[f"D={d} kinds"] == len(qsim.GATES) + 7
    every = sum(2 ** g.n_wires for g in qsim.GATES.values()) + 2 + 4 * 4 + 8 * 2   # + user kinds of 1, 2, 3 wires
    assert checks[f"D={d} gates"] == (every if d == 8 else len(qsim.GATES) + 7)
    assert checks[f"D={d} state"] < STATE_TOL


@pytest.mark.parametrize("d", [2, 4, 8])
def test_values_and_gradients_of_every_method(checks, d):
    for name, value in _picked(checks, f"D={d} ", "value").items():
        assert value < STATE_TOL, name
    for name, value in _picked(checks, f"D={d} ", "gradient").items():
        assert value < GRAD_TOL, name


def test_repeat_runs_as_a_scan_with_equal_gradients(checks):
    assert checks["D=8 repeat state"] < STATE_TOL and checks["D=8 repeat runs as a scan"]
    for name, value in _picked(checks, "repeat gradient").items():
        assert value < GRAD_TOL, name


def test_swap_collectives_in_the_program_are_the_planned_ones(swap_checks, checks):
    """One ``ppermute`` per planned swap in the lowered program (it runs once per chunk in a
    loop, but is written once), on every gate kind and placement and in a repeat's scan body."""
    for name, (in_hlo, planned) in _picked(swap_checks, "collective_permute").items():
        assert in_hlo == planned and planned > 0, name
    assert all(_picked(checks, "swaps planned <= naive").values())


def test_probs_marginals_sample_vmap(checks):
    for name, value in _picked(checks, "D=8 ", "marginal").items():
        assert value < STATE_TOL, name
    assert checks["D=8 probs"] < STATE_TOL and checks["D=8 vmap"] < STATE_TOL
    # the same key gives the same bits (up to float rounding of the CDF at a boundary)
    assert checks["D=8 sample None same bits"] > 0.99 and checks["D=8 sample (3, 0) same bits"] > 0.99
    assert checks["D=8 sample frequencies"] < 0.02       # 20000 shots: a few standard errors


def test_sharded_errors_and_memory_guard(checks):
    assert checks["error two axes"].startswith("ValueError") and "one axis" in checks["error two axes"]
    assert checks["error six devices"].startswith("ValueError") and "power of 2" in checks["error six devices"]
    assert "use at most 4 devices" in checks["error too many devices"]
    assert checks["error not a mesh"].startswith("TypeError")
    assert "needs 2 local wires" in checks["error targets"]
    assert "MeasureOp" in checks["error measure"] and "shots=" in checks["error shots"]
    assert checks["memory 34 qubits on 8 devices"] == "no error"       # 2 x 16 GiB per 80 GiB device
    assert checks["memory 34 qubits on 1 device"].startswith("StateTooLargeError")
    assert "per device" in checks["memory 37 qubits on 8 devices"]


# ------------------------------------------------------------ the in-place swap (subprocess) ------

def _swap_checks():
    """The chunked in-place swap, in a process with 8 CPU devices (run by `swap_checks`): the
    collectives it writes, multi-chunk results against one device (the chunk floor lowered so
    that small states take many chunks, every local wire of the swaps), and the compiled
    per-device memory of a forward pass with the real chunk size. Prints ``SWAP-CHECKS {json}``."""
    jax.config.update("jax_enable_x64", True)        # complex128 below; explicit dtypes elsewhere
    sys.path.insert(0, str(ROOT / "tests"))
    import sharding_checks as sc
    from qsim import _sharding

    out = {}
    rng = np.random.default_rng(29)
    zs = qsim.Z(0) @ qsim.Z(3) + 0.5 * qsim.Z(5) - 0.3 * qsim.Z(1)   # no readout ppermute
    count = lambda f, *a: jax.jit(f).lower(*a).as_text().count("stablehlo.collective_permute")  # noqa: E731
    for d in (2, 4, 8):
        g, mesh = d.bit_length() - 1, sc.mesh_of(d)
        recipe, n_angles = sc.placements(g, rng, every=d == 8)
        theta = jnp.asarray(rng.uniform(-np.pi, np.pi, n_angles), jnp.float32)
        psi = sc._random_state(rng)
        plans = []

        def circ(t):       # the plan of the program as traced (traced matrices are never taken as diagonal)
            c = sc.build(qsim.Circuit(sc.N, psi, mesh=mesh), recipe, t)  # noqa: B023
            plans.append(_sharding.layout_plan(c))
            return c
        in_hlo = count(lambda t: circ(t).expectation(zs), theta)
        out[f"D={d} collective_permute expectation"] = (in_hlo, plans[-1].compiled_swaps)
        in_hlo = count(lambda t: circ(t).state(), theta)
        undo = len(_layout.undo(plans[-1].final, sc.N, g)[0])
        out[f"D={d} collective_permute state"] = (in_hlo, plans[-1].compiled_swaps + undo)
    w = jnp.asarray(rng.uniform(-np.pi, np.pi, (64, sc.N, 2)), jnp.float32)   # a scan (short repeats are unrolled)
    rep = lambda w: qsim.Circuit(sc.N, mesh=sc.mesh_of(8)).h(2).repeat(sc.hea_layer, w).expectation(zs)  # noqa: E731
    out["D=8 repeat collective_permute"] = (count(rep, w), _sharding.layout_plan(
        qsim.Circuit(sc.N, mesh=sc.mesh_of(8)).h(2).repeat(sc.hea_layer, w)).compiled_swaps)

    n = 10                     # 2**(10 - g) amplitudes per shard: 8 chunks of 1/16 each at D = 8
    floor, _sharding._CHUNK_FLOOR = _sharding._CHUNK_FLOOR, 0
    out["D=8 n=10 chunks per swap"] = (1 << (n - 3 - 1)) // _sharding.chunk_amplitudes(n - 3, 8)
    obs = qsim.X(0) @ qsim.X(7) + 0.5 * qsim.Z(2) + 0.3 * qsim.Y(9) @ qsim.Y(4) - 0.2 * qsim.Z(8) @ qsim.Z(1)

    def layer(c, w):
        for q in range(n):
            c.ry(q, w[q, 0]).rz(q, w[q, 1])
        for q in range(n - 1):
            c.cnot(q, (q + 3) % n)

    for d in (2, 8):
        mesh = sc.mesh_of(d)
        for dtype in ("complex64", "complex128"):
            real = jnp.finfo(dtype).dtype
            w = jnp.asarray(rng.uniform(-np.pi, np.pi, (3, n, 2)), real)

            def circ(w, m, dtype=dtype):
                return qsim.Circuit(n, dtype=dtype, mesh=m).h(0).repeat(layer, w).crx(9, 0, w[0, 0, 0])
            out[f"D={d} {dtype} chunked state"] = sc.err(circ(w, mesh).state(), circ(w, None).state())
            flat, _sharding._FLAT_MAX = _sharding._FLAT_MAX, 0      # the path of shards past int32 offsets
            out[f"D={d} {dtype} chunked state, rows of chunks"] = sc.err(circ(w, mesh).state(), circ(w, None).state())
            _sharding._FLAT_MAX = flat
            if dtype == "complex128":
                continue

            def layers(w):      # written out, so that every swap is in the program once
                c = qsim.Circuit(n, mesh=mesh).h(0)  # noqa: B023
                for t in range(w.shape[0]):
                    layer(c, w[t])
                return c
            z3 = lambda w: layers(w).expectation(qsim.Z(3))  # noqa: E731,B023
            out[f"D={d} loop collective_permute"] = (count(z3, w), _sharding.layout_plan(layers(w)).compiled_swaps)
            ref = jax.jit(jax.grad(lambda w: circ(w, None).expectation(obs)))(w)
            for diff in ("backprop", "adjoint"):
                got = jax.jit(jax.grad(lambda w: circ(w, mesh).expectation(obs, diff=diff)))(w)  # noqa: B023
                out[f"D={d} chunked gradient {diff}"] = sc.err(got, ref)
            ws = jnp.stack([w, 0.5 * w])
            f = lambda w, m: circ(w, m).expectation(obs)  # noqa: E731
            out[f"D={d} chunked vmap"] = sc.err(jax.vmap(lambda w: f(w, mesh))(ws),  # noqa: B023
                                                jax.vmap(lambda w: f(w, None))(ws))
    _sharding._CHUNK_FLOOR = floor

    n = 20                     # the real chunk size: 2**17 amplitudes (1 MiB) per device, chunks of 1/16

    def forward_bytes(n, mesh):
        def layer(c, w):
            for q in range(n - 1):
                c.cnot(q, q + 1)
            for q in range(n):
                c.rx(q, w[q, 0]).rz(q, w[q, 1])

        def f(w):
            zsum = qsim.PauliSum.from_string(" + ".join(f"Z{i}" for i in range(n)))
            return qsim.Circuit(n, mesh=mesh).h(0).repeat(layer, w).expectation(zsum)
        m = jax.jit(f).lower(jnp.zeros((4, n, 2), jnp.float32)).compile().memory_analysis()
        return m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes - m.alias_size_in_bytes

    out["native"] = qsim.backends.resolve("auto") == qsim.backends.NATIVE
    out["memory D=8"] = forward_bytes(n, sc.mesh_of(8))
    out["memory one device, shard size"] = forward_bytes(n - 3, None)
    out["memory D=8 swap buffers"] = _sharding.swap_buffer_bytes(n - 3, 8)
    out["memory D=8 shard"] = (1 << (n - 3)) * 8
    print("SWAP-CHECKS " + json.dumps(out), flush=True)


@pytest.fixture(scope="module")
def swap_checks():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8")
    code = "from tests.test_sharding import _swap_checks; _swap_checks()"
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=str(ROOT), capture_output=True, text=True,
                         timeout=900)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("SWAP-CHECKS ")), None)
    assert line is not None, out.stderr[-3000:]
    return json.loads(line[len("SWAP-CHECKS "):])


def test_chunked_swaps_equal_one_device(swap_checks):
    """Many chunks per swap (every chunk shape: whole rows below the swapped wire, or several
    rows above it): states in both precisions, gradients of backprop and the adjoint walk, vmap."""
    assert swap_checks["D=8 n=10 chunks per swap"] == 8
    for name, value in _picked(swap_checks, "chunked").items():
        assert value < (1e-12 if "complex128" in name else GRAD_TOL if "gradient" in name else STATE_TOL), name


def test_forward_pass_holds_one_shard_and_the_swap_chunks(swap_checks):
    """The issue: per device 1/D of a state and the swaps' two exchange chunks (and a few KiB of
    small values), where the single all_to_all held three shards. That is with the native
    kernels, which update the state in place; the XLA kernels (``QSIM_DISABLE_NATIVE=1``) hold
    two or three states of their own (2 on one device at 15 qubits, 3 inside the shard_map)."""
    eight, local = swap_checks["memory D=8"], swap_checks["memory one device, shard size"]
    shard, chunks = swap_checks["memory D=8 shard"], swap_checks["memory D=8 swap buffers"]
    assert chunks <= shard / 8                       # two chunks of 1/16 of the shard
    kernels = shard if swap_checks["native"] else max(local, 3 * shard)
    assert eight <= kernels + chunks + shard / 16, (eight, local, shard, chunks)


# ------------------------------------------------------------ data-parallel training ------

def _example(*args, devices=None):
    env = dict(os.environ)
    env.pop("XLA_FLAGS", None)
    if devices:
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    out = subprocess.run([sys.executable, "-m", "qml.examples.data_parallel", "--fast", "--no-progress", *args],
                         env=env, cwd=str(ROOT), capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("DATA-PARALLEL "))
    return json.loads(line[len("DATA-PARALLEL "):])


@pytest.mark.slow   # ~15 s alone, 30-40 s on a loaded 2-core machine: five processes start JAX
def test_data_parallel_training_on_devices_and_processes():
    one = _example()
    four = _example(devices=4)
    two_processes = _example("--processes", "2")
    assert (one["devices"], four["devices"], two_processes["processes"], two_processes["devices"]) == (1, 4, 2, 2)
    np.testing.assert_allclose(four["losses"], one["losses"], rtol=1e-5)
    np.testing.assert_allclose(two_processes["losses"], one["losses"], rtol=1e-5)
    assert one["final_loss"] < 0.6 * one["first_loss"]
    for run in (one, four, two_processes):       # a state sharded over every device of every process
        np.testing.assert_allclose(run["sharded_expectation"], 1 + np.sin(0.3), atol=STATE_TOL)
