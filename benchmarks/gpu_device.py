"""One-shot GPU benchmark: gates and fused blocks against the HBM floor, circuits, 33 qubits in place.

``python -m benchmarks.gpu_device --out DIR`` on a GPU machine (sized for about six
minutes on an H200, an estimate: it has not run on a device yet). No case starts
after ``--budget-s`` seconds (default 420), and the JSON is rewritten after every
section, so a cut-short run still leaves its results.
``--smoke`` runs the same sections at tiny sizes on any platform (CI tests it).
In order:

1. ``gpu-fit``: 33 qubits complex64 (64 GiB) through `qsim.apply_inplace` on the
   ``"gpu"`` backend (H, CNOT chain, RZ: a closed-form state), with XLA's
   ``memory_analysis()`` (aliased and temporary bytes) and the device's peak bytes.
   It runs first, so the peak is its own.
2. ``floor``: the HBM bandwidth, in-place scale of a donated buffer (`floor.measure_bandwidth`).
3. ``gpu-gates``: one gate on a random state, jitted with the state donated, at
   n = 30, 28, 32 complex64 (and h / unitary2 at n = 30 complex128): h, rz, cnot, a
   random 2-qubit unitary, random 3/4/5-qubit blocks (what fusion emits), on the top,
   middle and bottom wires; the ``"gpu"`` backend beside the plain ``"xla"`` one; each
   as a multiple of the floor (``x_floor``).
4. ``gpu-variants``: the same at n = 30 with the other formulation and other chunk
   sizes (``chunk_qubits``; ``direct``: one pass, not in place) -> `gpu.FORMULATION`, `gpu.CHUNK_QUBITS`.
5. ``gpu-qcbm``: the QCBM (9 layers) at n = 24, 28, 30, ``x_gates_floor`` = time /
   (gates x floor) (target < 1), and ``gpu-fusion``: the QCBM at n = 30 for fusion
   widths 3..6 (-> ``DEFAULT_FUSION["gpu"]`` in `qsim._simulate`).
6. ``gpu-hea``: value-and-grad of <Z0> through ``repeat`` of HEA layers, n = 24, 28.

Each row is ``{"suite", "case", "impl", ...}`` as in the CPU suites; failures
(out of memory) become rows with an ``error``. Start states are made on the device
(``jax.random``), never on the host.
"""

from __future__ import annotations

import argparse
import gc
import os
import socket
import time
import traceback
from pathlib import Path

FULL = dict(fit=33, floor_mib=4096, gates=(30, 28, 32), c128_gates=30, variants=30,
            variant_kinds=("h", "rz", "cnot", "unitary2", "fused5"), chunks=(19, 23, 25),
            qcbm=(24, 28, 30), fusion=(3, 5, 6), hea=(24, 28), hea_layers=5, hea_diffs=("adjoint", "backprop"),
            fit_chunk=None, repeat=5, budget_s=420)
SMOKE = dict(fit=14, floor_mib=16, gates=(8,), c128_gates=8, variants=8, variant_kinds=("h", "fused5"),
             chunks=(2,), qcbm=(4,), fusion=(3,), hea=(4,), hea_layers=2, hea_diffs=("adjoint",),
             fit_chunk=6, repeat=1, budget_s=600)
GATE_KINDS = ("h", "rz", "cnot", "unitary2", "fused3", "fused4", "fused5")
WIRES = ("top", "mid", "bottom")
IMPLS = ("qsim gpu", "qsim xla")


def build_parser():
    p = argparse.ArgumentParser(prog="python -m benchmarks.gpu_device", description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=Path("benchmark-results"), help="folder for the JSON")
    p.add_argument("--smoke", action="store_true", help="tiny sizes, any platform (a CI check)")
    p.add_argument("--budget-s", type=float, default=None, help="start no new section after this many seconds")
    return p


class Run:
    """The run's settings, its rows and notes, and where the JSON goes."""

    def __init__(self, args, grid):
        self.grid, self.rows, self.notes = grid, [], []
        self.started = time.perf_counter()
        self.budget_s = args.budget_s if args.budget_s is not None else grid["budget_s"]
        self.path = args.out / f"{socket.gethostname()}-gpu-{time.strftime('%Y%m%d-%H%M%S')}.json"
        self.bandwidth = self.meta = None
        self.cut = False

    def over_budget(self, what):
        if time.perf_counter() - self.started <= self.budget_s:
            return False
        if not self.cut:
            self.cut = True
            self.notes.append(f"past the {self.budget_s:.0f} s budget at {what}: it and later cases skipped")
        return True

    def floor_s(self, n, dtype):
        """One read and one write of an ``n``-qubit state at the measured bandwidth."""
        import numpy as np

        return self.bandwidth.floor_s(n, np.dtype(dtype).itemsize)

    def case(self, suite, name, impl, fn, **fields):
        """Run ``fn() -> dict`` into one row; an exception becomes the row's ``error``."""
        from .context import row

        if self.over_budget(f"{suite} {name} {impl}"):
            return None
        t0 = time.perf_counter()
        try:
            out = fn()
        except Exception as e:   # an out-of-memory case must not end the run
            out = {"error": f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"}
            self.notes.append(f"{suite} {name} {impl}: {out['error']}")
            traceback.print_exc(limit=2)
        r = row(suite, name, impl, **fields, **out, case_wall_s=time.perf_counter() - t0)
        self.rows.append(r)
        print(_line(r), flush=True)
        return r

    def write(self):
        from .report import write_json

        meta = dict(self.meta or {}, wall_s=time.perf_counter() - self.started)
        return write_json(self.path, meta, self.rows, self.notes)


def _line(r):
    t = f"{r['time_s'] * 1e3:9.3f} ms" if r.get("time_s") else " " * 12
    x = f"{r['x_floor']:6.2f}x floor" if r.get("x_floor") else ""
    return f"{r['suite']:13s} {r['case']:28s} {r['impl']:10s} {t} {x} {r.get('error', '')}"


# ----------------------------------------------------------------- pieces ------------

def device_state(n, dtype, seed=0):
    """A normalised random state made on the device, shape ``(2**n,)``."""
    import jax
    import jax.numpy as jnp

    real = jnp.finfo(dtype).dtype

    @jax.jit
    def make(key):
        kr, ki = jax.random.split(key)
        v = jax.lax.complex(jax.random.normal(kr, (1 << n,), real), jax.random.normal(ki, (1 << n,), real))
        return v / jnp.linalg.norm(v)

    return make(jax.random.key(seed))


def gate_ops(kind, n, label):
    """The op list of one grid point: a named gate, or a random ``fusedK`` block on k wires."""
    from .suites.gates import wire_of
    from .workloads import Op, random_unitary, rng_for, single_gate

    rng = rng_for("gpu", kind, n, label)
    if not kind.startswith("fused"):
        return single_gate(kind, n, wire_of(label, n), rng)
    k = int(kind[len("fused"):])
    first = {"top": 0, "mid": n // 2 - k // 2, "bottom": n - k}[label]
    return [Op("unitary", tuple(range(first, first + k)), (random_unitary(k, rng),))]


class Donated:
    """``ops`` applied to a held state by a jitted step with the state donated (in place).

    ``diff`` only sets what qsim's memory guard budgets for the traced state (the step runs
    forwards either way): "backprop" counts one saved state per pass, "adjoint" four states.
    """

    def __init__(self, ops, n, dtype, state, backend, fuse=None, diff="backprop"):
        from .ours import fusion_arg
        from .timing import compile_jit
        from .workloads import to_circuit

        k = fusion_arg(fuse)

        def step(s):
            return to_circuit(ops, n, s, dtype=dtype, max_fused_qubits=k, backend=backend).state(diff)

        self.state = state
        self._step, times = compile_jit(step, state, donate=True)
        self.compile_s = times["compile_s"]

    def run(self):
        self.state = self._step(self.state)
        self.state.block_until_ready()


def _backend(impl):
    from qsim.backends import gpu

    return gpu.backend() if impl == "qsim gpu" else "xla"


def time_ops(run, ops, n, dtype, state, backend, fuse=None, diff="backprop"):
    """Time ``ops`` on ``state`` (donated); returns ``(fields, state after)``."""
    runner = Donated(ops, n, dtype, state, backend, fuse, diff)
    timing = _timed(run, runner.run)
    floor = run.floor_s(n, dtype)
    fields = dict(compile_s=runner.compile_s, floor_s=floor, x_floor=timing["time_s"] / floor, **timing)
    return fields, runner.state


def _timed(run, fn):
    """`timing.measure` (median of repeats after a warm-up); with ``--smoke`` one call after the warm-up."""
    from .timing import measure, now, summary

    if not run.smoke:
        return measure(fn, run.grid["repeat"])
    fn()
    t0 = now()
    fn()
    return summary([now() - t0])


# ----------------------------------------------------------------- sections ------------

def fit_section(run):
    """33 qubits complex64 in place: compile, memory analysis, one run, a closed-form check."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    import qsim
    from qsim import _inplace
    from qsim.backends import gpu

    n = run.grid["fit"]
    angles = np.linspace(0.1, 1.3, n)
    chunk = run.grid["fit_chunk"]
    backend = "gpu" if chunk is None else gpu.backend(chunk_qubits=chunk)

    def fn():
        c = qsim.Circuit(n, backend=backend)         # built before the state exists (memory guard)
        for w in range(n):
            c.h(w)
        for w in range(n - 1):
            c.cnot(w, w + 1)
        for w in range(n):
            c.rz(w, angles[w])
        state = jax.jit(lambda: jnp.zeros(1 << n, jnp.complex64).at[0].set(1))()
        args = _inplace._arguments(c, state, "gpu_device")
        t0 = time.perf_counter()
        compiled = _inplace._run_donated.lower(*args).compile()
        compile_s = time.perf_counter() - t0
        mem = compiled.memory_analysis()
        t0 = time.perf_counter()
        out = compiled(args[1], args[2]).block_until_ready()
        time_s = time.perf_counter() - t0
        # H on every wire, CNOTs (which keep |+...+>), RZ: amplitude b = 2^(-n/2) prod_w e^(-+i t_w/2)
        expect = [2 ** (-n / 2) * np.exp(-1j * np.sum(angles) / 2), 2 ** (-n / 2) * np.exp(1j * np.sum(angles) / 2)]
        got = [complex(out[0]), complex(out[-1])]
        norm = float(jnp.sum(jnp.abs(out) ** 2))
        err = max(abs(g - e) for g, e in zip(got, expect)) * 2 ** (n / 2)
        stats = jax.devices()[0].memory_stats() or {}
        del out
        return dict(n=n, dtype="complex64", n_gates=c.n_ops, compile_s=compile_s, time_s=time_s,
                    state_bytes=(1 << n) * 8, alias_bytes=mem.alias_size_in_bytes,
                    temp_bytes=mem.temp_size_in_bytes, peak_bytes=stats.get("peak_bytes_in_use"),
                    bytes_limit=stats.get("bytes_limit"), norm=norm, amplitude_rel_err=err,
                    ok=bool(abs(norm - 1) < 1e-3 and err < 1e-3))

    run.case("gpu-fit", f"inplace n={n} c64", "qsim gpu", fn)
    gc.collect()


def gates_section(run, n, dtype="complex64", kinds=GATE_KINDS, wires=WIRES, suite="gpu-gates"):
    """Every gate kind on every wire, both backends, sharing one donated state."""
    from .context import SHORT_DTYPE

    if run.over_budget(f"{suite} n={n}"):
        return
    holder = {"state": device_state(n, dtype)}
    for kind in kinds:
        for label in wires:
            ops = gate_ops(kind, n, label)
            for impl in IMPLS:
                def fn(ops=ops, impl=impl):
                    fields, holder["state"] = time_ops(run, ops, n, dtype, holder["state"], _backend(impl))
                    return fields

                run.case(suite, f"{kind} n={n} {label} {SHORT_DTYPE[dtype]}", impl, fn,
                         n=n, dtype=dtype, gate=kind, wire=label)
                if holder["state"].is_deleted():      # a failed case consumed it: make another
                    holder["state"] = device_state(n, dtype)
    del holder


def variants_section(run):
    """Other formulation and chunk sizes of the gpu kernels (``direct``: no chunk loop)."""
    from qsim.backends import gpu

    n = run.grid["variants"]
    if run.over_budget(f"gpu-variants n={n}"):
        return
    holder = {"state": device_state(n, "complex64")}
    variants = [("real", gpu.CHUNK_QUBITS)] + [("complex", c) for c in run.grid["chunks"]] + [("complex", n)]
    for kind in run.grid["variant_kinds"]:
        for label in ("top", "bottom"):
            ops = gate_ops(kind, n, label)
            for form, chunk in variants:
                impl = f"qsim gpu {form} " + ("direct" if chunk >= n else f"chunk {chunk}")

                def fn(ops=ops, form=form, chunk=chunk):
                    backend = gpu.backend(form, chunk)
                    fields, holder["state"] = time_ops(run, ops, n, "complex64", holder["state"], backend)
                    return fields

                run.case("gpu-variants", f"{kind} n={n} {label} c64", impl, fn, n=n, dtype="complex64",
                         gate=kind, wire=label, formulation=form, chunk_qubits=chunk)
                if holder["state"].is_deleted():
                    holder["state"] = device_state(n, "complex64")


def qcbm_row(run, suite, n, impl, fuse=None):
    from qsim import _fusion, _simulate

    from .workloads import qcbm, rng_for, to_circuit

    ops = qcbm(n, rng_for("qcbm", n))
    k = passes = None
    if impl == "qsim gpu":     # fused at trace time (the xla backend lowers it on the host, its own width)
        c = to_circuit(ops, n, backend=_backend(impl), max_fused_qubits=fuse)
        k = _simulate.fusion_width(c)
        passes = _fusion.count_passes(c.program[0], k)
        del c

    def fn():
        fields, _ = time_ops(run, ops, n, "complex64", device_state(n, "complex64"), _backend(impl), fuse,
                             diff="adjoint")   # a many-pass program: the guard would budget backprop's saved states
        fields["x_gates_floor"] = fields["x_floor"] / len(ops)
        if passes:
            fields["x_passes_floor"] = fields["x_floor"] / passes
        return fields

    name = f"qcbm n={n} c64" + (f" k={fuse}" if fuse is not None else "")
    run.case(suite, name, impl, fn, n=n, dtype="complex64", n_gates=len(ops), fusion=k, passes=passes)


def hea_section(run):
    """value-and-grad of <Z0> after L HEA layers (``repeat``), backprop and adjoint."""
    import jax
    import jax.numpy as jnp

    import qsim

    from .timing import block, compile_jit
    from .workloads import hea_layer, hea_weights

    layers = run.grid["hea_layers"]
    for n in run.grid["hea"]:
        for diff in run.grid["hea_diffs"]:
            for impl in IMPLS:
                def fn(n=n, diff=diff, impl=impl):
                    w = jnp.asarray(hea_weights(n, layers), jnp.float32)

                    def cost(w):
                        c = qsim.Circuit(n, backend=_backend(impl))
                        c.repeat(hea_layer, w)
                        return c.expectation(qsim.Z(0), diff=diff)

                    compiled, times = compile_jit(jax.value_and_grad(cost), w)
                    return dict(compile_s=times["compile_s"], **_timed(run, lambda: block(compiled(w))))

                run.case("gpu-hea", f"hea v&g n={n} L={layers} {diff}", impl, fn, n=n, layers=layers, diff=diff)


# ----------------------------------------------------------------- main ------------

def _environment(smoke):
    """Let one process use nearly all of the GPU's memory (n=33 needs 64 GiB plus a chunk)."""
    if not smoke:
        os.environ.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", "0.95")


def _meta(run):
    from qsim.backends import gpu
    from qsim import _simulate

    from .machine import describe

    meta = describe(run.threads_info, [], run.bandwidth)
    meta.update(suites=["gpu_device"], smoke=run.smoke, gpu_kernels={
        "formulation": gpu.FORMULATION, "chunk_qubits": gpu.CHUNK_QUBITS,
        "default_fusion": _simulate.DEFAULT_FUSION.get("gpu")},
        xla_python_client_mem_fraction=os.environ.get("XLA_PYTHON_CLIENT_MEM_FRACTION"))
    return meta


def main(argv=None) -> Path:
    """Run every section; returns the JSON's path."""
    args = build_parser().parse_args(argv)
    grid = SMOKE if args.smoke else FULL
    _environment(args.smoke)
    from .machine import pin_threads

    run = Run(args, grid)
    run.smoke = args.smoke
    run.threads_info = {"threads": None, "note": "smoke run: threads not pinned"} if args.smoke else pin_threads(None)
    import jax

    x64 = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)          # complex128 rows; restored at the end
    try:
        _sections(run)
    finally:
        jax.config.update("jax_enable_x64", x64)
    path = run.write()
    print(f"wrote {path}")
    return path


def _sections(run):
    from .floor import measure_bandwidth

    g = run.grid
    if g["fit"]:
        fit_section(run)                      # first: the device's peak memory is its own
    run.bandwidth = measure_bandwidth(mib=g["floor_mib"], threads=1, repeats=5)
    run.meta = _meta(run)
    run.write()
    steps = [("gates", lambda: gates_section(run, g["gates"][0])),
             ("variants", lambda: variants_section(run)),
             ("qcbm", lambda: [qcbm_row(run, "gpu-qcbm", n, impl) for n in g["qcbm"] for impl in IMPLS]),
             ("fusion", lambda: [qcbm_row(run, "gpu-fusion", max(g["qcbm"]), "qsim gpu", k) for k in g["fusion"]]),
             ("hea", lambda: hea_section(run)),
             ("c128", lambda: gates_section(run, g["c128_gates"], "complex128", ("h", "unitary2"), ("mid",)))]
    steps += [(f"gates n={n}", lambda n=n: gates_section(run, n)) for n in g["gates"][1:]]
    for _, step in steps:
        step()
        gc.collect()
        run.write()


if __name__ == "__main__":
    main()
