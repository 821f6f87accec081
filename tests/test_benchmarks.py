"""The benchmark package: the CLI end to end at tiny sizes, the floor, the table, the peer check."""

import json

import jax
import numpy as np
import pytest

from benchmarks import cli, peers, report
from benchmarks.context import row
from benchmarks.floor import floor_seconds, measure_bandwidth
from benchmarks.memory import run_isolated
from benchmarks.ours import QsimRunner
from benchmarks.peers import PeerMismatch, check_same, verify
from benchmarks.peers._base import Peer
from benchmarks.workloads import Op, bit_reverse, brickwork, qcbm, random_state, rng_for

BELL = 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\ncreg c[2];\nh q[0];\ncx q[0],q[1];\nmeasure q -> c;\n'
META_KEYS = {"hostname", "cpu_model", "cpu_count", "threads", "jax_version", "jax_backend", "device_kind",
             "qsim_native_status", "peers", "bandwidth", "suites", "wall_s"}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """Every suite through the CLI at tiny sizes, in this process, with a one-program QASM corpus."""
    out = tmp_path_factory.mktemp("bench")
    (out / "qasm" / "small").mkdir(parents=True)
    (out / "qasm" / "small" / "bell_n2.qasm").write_text(BELL)
    x64 = jax.config.jax_enable_x64
    status = cli.main(["--qubits", "3", "--depth", "1", "--batch", "2", "--repeat", "1", "--peers", "none",
                       "--dtype", "complex64", "--out", str(out), "--floor-mib", "16", "--no-memory",
                       "--no-progress", "--qasm-dir", str(out / "qasm")])
    assert jax.config.jax_enable_x64 == x64, "the CLI must leave jax_enable_x64 as it found it"
    return status, out


def test_cli_runs_every_suite_and_writes_json_and_plots(tiny_run):
    status, out = tiny_run
    assert status == 0
    (path,) = out.glob("*.json")
    data = json.loads(path.read_text())
    assert META_KEYS <= set(data["meta"])
    assert data["meta"]["bandwidth"]["bytes_per_s"] > 0
    results = data["results"]
    assert {r["suite"] for r in results} == set(cli.SUITE_NAMES)
    for r in results:
        assert {"suite", "case", "impl"} <= set(r) and "FAILED" not in str(r.get("note", ""))
    timed = [r for r in results if r["suite"] != "compile"]
    assert all(r["time_s"] > 0 and r["time_min_s"] <= r["time_s"] <= r["time_max_s"] for r in timed)
    assert all(r["compile_s"] > 0 for r in results)
    gates = [r for r in results if r["suite"] == "gates"]
    assert {r["wire"] for r in gates} == {"top", "mid", "bottom"} and all(r["x_floor"] > 0 for r in gates)
    assert any(r.get("program") == "small/bell_n2" for r in results)
    for kind in ("gates", "circuits", "compile", "train"):
        assert (out / f"{path.stem}-{kind}.png").stat().st_size > 0


def test_default_out_is_in_the_working_directory():
    assert not cli.DEFAULT_OUT.is_absolute() and cli.DEFAULT_OUT.name == "benchmark-results"
    assert cli.build_parser().parse_args([]).out == cli.DEFAULT_OUT


def test_load_average_has_two_decimals():
    from benchmarks.machine import fmt_load

    assert fmt_load((3.36181640625, 2.83984375, 2.7)) == "3.36, 2.84, 2.70" and fmt_load(None) == "-"


def test_peer_summary_is_the_geometric_mean_against_the_fastest_peer():
    timed = lambda case, impl, t, **kw: row("gates", case, impl, time_s=t, **kw)  # noqa: E731
    rows = [timed("a", "qsim", 2.0), timed("a", "qulacs", 1.0), timed("a", "lightning", 4.0),
            timed("b", "qsim", 1.0), timed("b", "qsim pure-JAX", 0.1), timed("b", "lightning", 4.0),
            timed("b", "qulacs", 0.01, mismatch=True),
            timed("c", "qsim", 1.0), row("gates", "c", "qulacs", note="skipped"),
            row("train", "t", "qsim", time_s=1.0)]
    report.add_relative(rows)
    (line,) = report.peer_summary(rows)   # no peer ran in train: no line for it
    # a: 2/1 (qulacs), b: 1/4 (lightning; pure-JAX and the mismatched row left out) -> sqrt(0.5)
    assert line.startswith("gates: 0.71x (geometric mean over 2 cases")
    assert "lightning at 1" in line and "qulacs at 1" in line
    assert "cache" in report.FLOOR_NOTE and "bandwidth" in report.FLOOR_NOTE


def test_progress_without_a_terminal_is_one_line_per_case(capsys):
    from benchmarks.context import Case, Config

    cases = [Case("gates", f"h n={n}", lambda n=n: [row("gates", f"h n={n}", "qsim", time_s=1e-3)])
             for n in (3, 4)]
    rows = cli._run_cases(cases, Config(), progress=True)   # pytest's stderr is not a terminal
    err = capsys.readouterr().err
    assert len(rows) == 2 and "\r" not in err
    assert [line.split(" (")[0] for line in err.splitlines()] == ["[1/2] gates: h n=3", "[2/2] gates: h n=4"]


def test_parse_range():
    assert cli.parse_range("10:24:2") == [10, 12, 14, 16, 18, 20, 22, 24]
    assert cli.parse_range("4:6") == [4, 5, 6]
    assert cli.parse_range("12") == [12]
    assert cli.parse_range("8,12") == [8, 12]
    with pytest.raises(Exception, match="START:STOP"):
        cli.parse_range("a:b")


def test_floor_is_one_read_and_one_write_of_the_state():
    # PERF.md: at 56 GB/s a complex64 gate at n=24 costs 4.8 ms, n=26 complex128 38 ms
    assert floor_seconds(24, 8, 56e9) == pytest.approx(4.79e-3, rel=1e-2)
    assert floor_seconds(26, 16, 56e9) == pytest.approx(38.3e-3, rel=1e-2)
    assert floor_seconds(21, 16, 1e9) == 2 * floor_seconds(20, 16, 1e9)
    with pytest.raises(ValueError, match="bandwidth > 0"):
        floor_seconds(10, 8, 0)
    bw = measure_bandwidth(mib=8, threads=2, repeats=1, use_jax=False)
    assert 1e8 < bw.bytes_per_s < 1e13 and set(bw.kernels) == {"numpy copyto", "numpy scale in place"}


def test_table_formatting():
    rows = [row("gates", "h n=20 mid c64", "qsim", time_s=3e-3, time_min_s=2e-3, time_max_s=4e-3,
                compile_s=0.25, floor_s=2e-3, x_floor=1.5),
            row("gates", "h n=20 mid c64", "qulacs", time_s=6e-3, time_min_s=5e-3, time_max_s=7e-3),
            row("gradients", "hea n=4 L=2 adjoint c64", "qsim", time_s=2.0, ratio=2.5, peak_rss_mib=300.0,
                added_mib=20.0, note="a note")]
    report.add_relative(rows)
    assert rows[1]["rel"] == pytest.approx(2.0)
    table = report.format_table(rows)
    lines = table.splitlines()
    assert lines[0] == "== gates ==" and "== gradients ==" in lines
    assert "3 ms [2 ms, 4 ms]" in table and "1.50x" in table and "250 ms" in table and "2.00x" in table
    assert "300 (+20)" in table and "2.50x" in table and "a note" in table
    header = lines[1]
    assert header.index("impl") < header.index("compile") < header.index("x floor") < header.index("rel")
    assert [report.fmt_time(s) for s in (None, 3.4e-4, 0.0125, 2.5)] == ["-", "340 us", "12.5 ms", "2.5 s"]


class _ReferencePeer(Peer):
    """A fake peer that runs qsim itself, optionally with a deliberate bug in the circuit."""

    name = "fake"

    def __init__(self, bug=None):
        super().__init__(1)
        self.bug = bug

    def prepare(self, ops, n, dtype, init, *, fuse=None):
        if self.bug == "reversed wires":
            ops = [Op(op.name, tuple(n - 1 - w for w in op.wires), op.params) for op in ops]
        if self.bug == "angle sign":
            ops = [Op(op.name, op.wires, tuple(-p for p in op.params)) if op.name == "rz" else op for op in ops]
        return QsimRunner(ops, n, dtype, init)


# a small circuit with every op kind of the workloads, wires in both orders
MIXED_OPS = [Op("h", (0,)), Op("rz", (1,), (0.3,)), Op("cnot", (0, 2)), Op("u3", (2,), (0.1, 0.2, 0.3)),
             Op("rx", (1,), (0.7,)), Op("unitary", (2, 1), (np.kron(np.eye(2), [[0, 1], [1, 0]]) * 1j,))]


@pytest.mark.parametrize("bug", ["reversed wires", "angle sign"])
def test_peer_check_catches_a_wrong_circuit(bug):
    n, dtype = 3, "complex64"
    init = random_state(n, dtype, rng_for("test", "init"))
    assert verify(_ReferencePeer(), MIXED_OPS, n, dtype, init, "mixed", {}) is None
    note = verify(_ReferencePeer(bug), MIXED_OPS, n, dtype, init, "mixed", {})
    assert note is not None and note.startswith("NOT TIMED")


def test_workload_circuits():
    ops = qcbm(22, rng_for("t"))
    assert len(ops) == 827   # PERF.md: 827 gates at n=22
    assert all(op.name in ("rx", "rz", "cnot") for op in ops)
    bricks = brickwork(6, 4, rng_for("t"))
    assert [op.wires for op in bricks[:5]] == [(0, 1), (2, 3), (4, 5), (1, 2), (3, 4)]
    u = bricks[0].params[0]
    np.testing.assert_allclose(u @ u.conj().T, np.eye(4), atol=1e-12)


def test_check_same_tolerances():
    a = random_state(5, "complex128", rng_for("t"))
    assert check_same(a, a + 1e-12, "complex128", "same") < 1e-11
    with pytest.raises(PeerMismatch, match="max"):
        check_same(a, a + 1e-6, "complex128", "off by 1e-6")
    with pytest.raises(PeerMismatch, match="shapes"):
        check_same(a, a[:8], "complex64", "short")
    with pytest.raises(PeerMismatch):
        check_same(a, bit_reverse(a, 5), "complex64", "wire order")


def test_peer_names():
    assert peers.parse_names("none") == [] and peers.parse_names("all") == list(peers.ADAPTERS)
    with pytest.raises(ValueError, match="unknown peer"):
        peers.parse_names("qulacs,cirq")


@pytest.mark.parametrize("name", ["qulacs", "lightning", "aer"])
def test_installed_peer_agrees_with_qsim(name):
    found, notes = peers.load([name], threads=1)
    if not found:
        pytest.skip(notes[0])
    (peer,) = found
    dtype, n = peer.dtypes[-1], 3
    assert verify(peer, MIXED_OPS, n, dtype, random_state(n, dtype, rng_for("peer")), "mixed", {}) is None


def test_memory_case_runs_in_a_fresh_process():
    result = run_isolated("benchmarks.memory:idle", {})
    assert result["peak_rss_mib"] > 10
    assert "error" in run_isolated("benchmarks.memory:no_such_function", {})


def test_sync_dispatch_reaches_case_processes_and_refuses_late(monkeypatch):
    """--sync-dispatch: a case process started with the variable runs JAX's CPU calls inline, one
    without it keeps the default; in a process whose CPU client already ran, the request is
    refused with a note and the setting is left alone."""
    from benchmarks.machine import SYNC_DISPATCH_VAR, apply_dispatch

    assert run_isolated("benchmarks.machine:dispatch_record", {}, env={SYNC_DISPATCH_VAR: "1"}) \
        ["cpu_async_dispatch"] is False
    assert run_isolated("benchmarks.machine:dispatch_record", {})["cpu_async_dispatch"] is True
    jax.numpy.ones(2).block_until_ready()
    monkeypatch.setenv(SYNC_DISPATCH_VAR, "1")
    record = apply_dispatch()
    assert record["cpu_async_dispatch"] is True and "had started" in record["dispatch_note"]
    assert jax.config.read("jax_cpu_enable_async_dispatch") is True


# -- the train suite ------------------------------------------------------------------------------

from benchmarks.context import Config  # noqa: E402
from benchmarks.peers import _train as train_peers  # noqa: E402
from benchmarks.suites import train  # noqa: E402

TRAIN_POINT = (3, 2, 3)   # n, L, batch


@pytest.fixture(scope="module")
def train_run(tmp_path_factory):
    """The train suite alone through the CLI at a tiny point, with every installed peer."""
    out = tmp_path_factory.mktemp("train")
    n, layers, batch = TRAIN_POINT
    status = cli.main(["--suite", "train", "--qubits", str(n), "--depth", str(layers), "--batch", str(batch),
                       "--repeat", "1", "--peers", "tensorcircuit,pennylane", "--out", str(out),
                       "--floor-mib", "16", "--no-progress"])
    (path,) = out.glob("*.json")
    return status, out, path, json.loads(path.read_text())


def test_train_suite_runs_every_formulation(train_run):
    status, out, path, data = train_run
    assert status == 0
    rows = [r for r in data["results"] if r["suite"] == "train"]
    step = {r["impl"]: r for r in rows if r["mode"] == "step"}
    expected = {"qsim", "qsim adjoint", "qsim nnx", "qsim nnx adjoint", "qsim linen", "qsim linen adjoint"}
    if data["meta"]["qsim_native_status"].startswith("native"):
        expected |= {"qsim pure-JAX", "qsim pure-JAX adjoint"}
    assert expected <= set(step)
    for r in rows:
        assert r["time_s"] > 0 and r["compile_s"] > 0 and r["time_min_s"] <= r["time_s"] <= r["time_max_s"]
        assert r["case"] == train.case_name(r["mode"], *TRAIN_POINT) and r["dtype"] == "complex64"
        assert not r.get("mismatch") and r.get("max_rel_error", 0.0) <= train.TOLERANCE, r
    assert {r["impl"] for r in rows if r["mode"] == "forward"} >= {"qsim"}
    assert (out / f"{path.stem}-train.png").stat().st_size > 0


def test_train_suite_checks_and_ratios_peers(train_run):
    _, _, _, data = train_run
    rows = [r for r in data["results"] if r["suite"] == "train" and r["mode"] == "step"]
    peers = [r for r in rows if not r["impl"].startswith("qsim")]
    if not peers:
        pytest.skip("no train-suite peer installed")
    for r in peers:
        assert r["max_rel_error"] <= train.TOLERANCE   # loss and gradient checked against qsim's
    tc = [r for r in peers if r["impl"].startswith("tensorcircuit")]
    if tc:
        best = min(tc, key=lambda r: r["time_s"])
        assert best.get("tc_best") and sum(bool(r.get("tc_best")) for r in rows) == 1
        assert all(r["vs_tc"] == pytest.approx(r["time_s"] / best["time_s"]) for r in rows)
        assert any(line.startswith("train qsim step / TC figure") for line in data["notes"])


def _hand_wrong_program(n, w):
    """The model with the CNOT chain reversed (a peer with a wrong circuit)."""
    import jax
    import qsim

    obs = train.observable(n)

    def f(w, x):
        c = qsim.Circuit(n)
        for q in range(n):
            c.ry(q, x[q])
        for layer in range(w.shape[0]):
            for q in range(n):
                c.ry(q, w[layer, q, 0]).rz(q, w[layer, q, 1])
            for q in range(n - 1):
                c.cnot(q + 1, q)
        return c.expectation(obs)

    batched = jax.vmap(f, in_axes=(None, 0))
    step = jax.jit(jax.value_and_grad(lambda w, xs, ys: train.mse(batched(w, xs), ys)))
    return train.Program(step, jax.jit(batched), w)


def test_train_check_marks_a_wrong_peer():
    n, layers, batch = TRAIN_POINT
    cfg = Config(repeat=1)
    fields = train._fields(cfg, n, layers, batch, "wrong", "backprop")
    with train.single_precision():
        w, xs, ys = train.data(n, layers, batch)
        ref = train.time_program(train.plain_program(n, "backprop", w), xs, ys, 1)
        same = train.time_program(train.plain_program(n, "adjoint", w, backend="xla"), xs, ys, 1)
        wrong = train.time_program(_hand_wrong_program(n, w), xs, ys, 1)
    good_rows = train._rows(cfg, "same", TRAIN_POINT, fields, same, ref)
    assert all(not r.get("mismatch") for r in good_rows)
    bad_rows = train._rows(cfg, "wrong", TRAIN_POINT, fields, wrong, ref)
    assert [r["mode"] for r in bad_rows] == ["step", "forward"]
    assert all(r["mismatch"] and r["note"].startswith("MISMATCH") for r in bad_rows)
    rows = good_rows + [dict(r, impl="tensorcircuit state") for r in bad_rows]
    train.add_ratios(rows)   # a mismatched peer is never the ratio base
    assert not any("vs_tc" in r for r in rows)


@pytest.mark.parametrize("impl", list(train_peers.FORMULATIONS))
def test_train_peer_equals_qsim(impl):
    library = train_peers.FORMULATIONS[impl][0]
    if train_peers.available(library):
        pytest.skip(f"{library} not installed")
    n, layers, batch = TRAIN_POINT
    with train.single_precision():
        w, xs, ys = train.data(n, layers, batch)
        ours = train.time_program(train.plain_program(n, "backprop", w), xs, ys, 1)
        theirs = train.time_program(train.peer_program(impl, n, layers, w), xs, ys, 1)
    assert train.mismatch(ours["value"], theirs["value"]) < train.TOLERANCE
    assert theirs["grad"].shape == (layers, n, 2)
    assert train.mismatch(ours["grad"], theirs["grad"]) < train.TOLERANCE
    assert train.mismatch(ours["output"], theirs["output"]) < train.TOLERANCE


def test_train_step_compiles_once_with_traced_weights():
    import jax.numpy as jnp

    n, layers, batch = TRAIN_POINT
    with train.single_precision():
        w, xs, ys = train.data(n, layers, batch)
        prog = train.plain_program(n, "backprop", w)
        v1, g1 = prog.step(w, xs, ys)
        v2, g2 = prog.step(w + 0.5, xs, ys)   # new weights: same trace (they are an argument)
        assert prog.step._cache_size() == 1
    assert float(v1) != float(v2) and not jnp.allclose(g1, g2)


def test_train_kernel_choice_is_one_helper():
    import qsim

    assert qsim.Circuit(2, **train.qsim_kernels("xla")).backend.name == "xla"
    assert qsim.Circuit(2, **train.qsim_kernels("auto")).backend == qsim.Circuit(2).backend


class _Named:
    def __init__(self, name):
        self.name = name


def test_train_quick_plan():
    cfg = Config(peers=[_Named("tensorcircuit")], train_peers=["pennylane"], native=True)
    grid = train.points(cfg)
    assert grid[0] == train.FIXED_POINT and len(grid) == 3 * 2   # the fixed point is on the quick grid
    assert {n for n, _, _ in grid} == {4, 8, 12} and {b for _, _, b in grid} == {1, 32}
    plans = {p: [impl for impl, *_ in train.qsim_plan(cfg, p, grid)] for p in grid}
    assert all("qsim" in impls for impls in plans.values())
    assert [p for p, impls in plans.items() if "qsim nnx" in impls] == [train.QUICK_LAYER_POINT]
    assert "qsim nnx.jit" in plans[train.FIXED_POINT]
    assert train.peer_plan(cfg, train.FIXED_POINT) == ["tensorcircuit state", "pennylane default.qubit"]
    assert train.peer_plan(cfg, (4, 4, 32)) == ["tensorcircuit state"]
    assert train.peer_plan(cfg, (8, 4, 1)) == []
    explicit = Config(qubits=[6], batches=[2], peers=cfg.peers, train_peers=cfg.train_peers, native=True)
    assert train.points(explicit) == [(6, train.LAYERS, 2)]
    assert len(train.peer_plan(explicit, (6, train.LAYERS, 2))) == len(train_peers.FORMULATIONS)
    assert len(train.qsim_plan(explicit, (6, train.LAYERS, 2), [(6, train.LAYERS, 2)])) == 8


def test_train_memory_guard():
    assert not train.too_big("plain", "backprop", 12, 4, 256, native=True)
    assert train.too_big("peer", "backprop", 30, 4, 256, native=False)
    assert not train.too_big("plain", "adjoint", 12, 4, 256, native=True)


def test_split_peers():
    assert cli.split_peers("all") == ("all", ["pennylane"])
    assert cli.split_peers("pennylane") == ("none", ["pennylane"])
    assert cli.split_peers("qulacs, PennyLane") == ("qulacs", ["pennylane"])
    assert cli.split_peers("none") == ("none", [])


def test_hessian_suite_rows_agree_across_methods(monkeypatch):
    """The hessian suite's qsim rows (every method, and the metric tensor) run on a tiny grid and
    their Hessians agree (same checksum); the peers are only added when the grid is asked for."""
    from benchmarks.suites import hessian

    monkeypatch.setattr(hessian, "QUICK_QUBITS", (3,))
    monkeypatch.setattr(hessian, "LAYERS", 1)
    cfg = Config(repeat=1)
    found = hessian.cases(cfg)
    assert {c.name for c in found} == {"hessian n=3 L=1", "metric n=3 L=1"}
    rows = [r for c in found for r in c.run()]
    sums = {r["impl"]: r["checksum"] for r in rows if r["case"].startswith("hessian")}
    assert set(sums) == {"qsim backprop", "qsim adjoint", "qsim parameter-shift"}
    assert max(sums.values()) - min(sums.values()) < 1e-4 * max(sums.values())
    assert all(r["time_s"] > 0 and r["compile_s"] > 0 for r in rows)
