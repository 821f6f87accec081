"""Suite ``train``: one training step of a batched model with trainable weights, as a Flax/JAX user writes it.

The model, for one sample ``x`` (n features, one per wire): RY(x_q) on every wire q, then L
hardware-efficient layers (RY(w[l, q, 0]), RZ(w[l, q, 1]) on every wire, then CNOT (0, 1), (1, 2),
...) with trainable weights ``w`` of shape ``(L, n, 2)``, output ``f(x) = sum_q <Z_q>``; the loss is
the MSE ``mean_b (f(x_b) - y_b)^2`` over a batch. The step is ``jax.jit(jax.value_and_grad(loss))``
with the weights a traced ARGUMENT (never a constant closed over) and the samples batched with
``jax.vmap``; ``forward`` rows time the jitted, vmapped ``f`` alone (weights traced too).

qsim (complex64) in three formulations, each with ``diff="backprop"`` and ``"adjoint"``: the plain
function (``c.expectation(H, diff=...)``, impl ``qsim``), `qml.QuantumLayer` (NNX; ``nnx.split``
outside and ``nnx.merge`` inside ``jax.jit``; at the fixed-cost point also ``nnx.jit``, whose Python
work per call shows at small sizes) and `qml.linen.QuantumLayer` (``init`` / ``apply``). Where the
native CPU kernels are built, ``qsim pure-JAX`` rows time the plain function on the XLA kernels (see
`qsim_kernels`). Peers (`benchmarks.peers._train`): TensorCircuit-NG, two formulations (``vs TC`` is
a time over the faster one's on the same case, which is marked ``TC figure``), and PennyLane
default.qubit. A peer's loss and gradient (and forward output) are compared with qsim's plain
backprop ones at the same point (same weights, inputs, targets), from its first call, before it is
timed; a difference over `TOLERANCE` marks the row MISMATCH (it is still timed, never a ratio base).

Grid: n = 4, 6, ..., 18 with ``--full`` (quick: 4, 8, 12; ``--qubits``), batch 1, 32, 256 with
``--full`` (quick: 1, 32; ``--batch``), L = `LAYERS` = 4 at every n (``--depth``): n + L(3n - 1)
gates, 48 at n=4 and 230 at n=18, deep enough that a step is mostly gate work, shallow enough for
the peers to compile. With ``--qubits/--depth/--batch/--full`` every formulation runs at every point.
The quick run (about a minute on 2 cores) keeps: the plain function at every point (backprop and its
forward pass; adjoint at the largest batch), the layers and pure-JAX at `QUICK_LAYER_POINT`,
TensorCircuit-NG's state formulation at n <= `QUICK_PEER_MAX_QUBITS` and PennyLane at `FIXED_POINT`
(`QUICK_PEERS`; TensorCircuit-NG compiles a step for 4.5 s at n=4, 17 s at n=8, 35 s at n=12 and
minutes from n=14 here); a peer's compile expected
to be long is announced before it starts. The fixed cost of one small call is the step at
`FIXED_POINT` (n=4, L=4: 48 gates, batch 1; with ``nnx.jit`` too), summed up in a note.

``compile`` is the first call (trace, compile and one run); ``median [min, max]`` are later calls
after a warm-up, each blocked; ``x floor`` counts one pass over the state per gate per sample (the
states fit in cache here: a reference, not a bound). Every case runs with ``jax_enable_x64`` off in
its thread (PennyLane's default.qubit runs in complex128 otherwise), whatever the CLI set.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..context import PURE_JAX, Case, row, with_floor
from ..report import fmt_time
from ..timing import block, measure, now
from ..workloads import hea_layer, n_gates_hea, rng_for

SUITE = "train"
DTYPE = "complex64"
QUICK_QUBITS, FULL_QUBITS = (4, 8, 12), (4, 6, 8, 10, 12, 14, 16, 18)
QUICK_BATCHES, FULL_BATCHES = (1, 32), (1, 32, 256)
LAYERS = 4
DIFFS = ("backprop", "adjoint")
FIXED_POINT = (4, 4, 1)        # n, L, batch: the fixed cost of one small call (48 gates)
QUICK_LAYER_POINT = (8, 4, 32)  # the quick run times the NNX and Linen layers and pure-JAX here
QUICK_PEER_MAX_QUBITS = 4
QUICK_PEERS = {"tensorcircuit state": None, "pennylane default.qubit": FIXED_POINT}   # -> quick-run point

LONG_COMPILE_QUBITS = 10       # a peer's compile is announced from here (35 s at n=12, minutes at 14)
TOLERANCE = 1e-4               # max |ours - theirs| / max(1, max |ours|), float32
MEMORY_FRACTION = 0.5          # skip a case whose saved states would pass this share of RAM
TC_PREFIX = "tensorcircuit"


def qsim_kernels(backend: str) -> dict:
    """The `qsim.Circuit` keyword arguments that put a circuit on ``backend``: ``"auto"`` (native CPU
    kernels where built) or ``"xla"`` (qsim's pure-JAX kernels).

    The one place that knows how (before ``Circuit(n, backend=...)``, a private context around the
    trace did it).
    """
    return {"backend": backend}


# -- the model, as a user writes it ---------------------------------------------------------------

def observable(n: int):
    """``sum_q Z_q`` as one `qsim.PauliSum`."""
    import qsim

    return qsim.PauliSum.from_string(" + ".join(f"Z{q}" for q in range(n)))


def plain_model(n: int, diff: str, backend: str = "auto"):
    """``f(w, x)`` for one sample: the plain function (w ``(L, n, 2)``, x ``(n,)`` -> real scalar)."""
    import qsim

    kwargs = qsim_kernels(backend)
    obs = observable(n)

    def f(w, x):
        c = qsim.Circuit(n, **kwargs)
        for q in range(n):
            c.ry(q, x[q])
        c.repeat(hea_layer, w)
        return c.expectation(obs, diff=diff)
    return f


def layer_circuit(c, x, w):
    """The same circuit for `qml.QuantumLayer` / `qml.linen.QuantumLayer` (weights ``w["w"]``)."""
    import qml

    qml.templates.angle_embedding(c, x, rotation="Y")
    qml.templates.hardware_efficient(c, w["w"])


def mse(pred, ys):
    import jax.numpy as jnp

    return jnp.mean((pred - ys) ** 2)


@dataclass
class Program:
    """One formulation at one point: ``step(params, xs, ys) -> (loss, grads)``, ``forward(params, xs)``
    (None: not timed), ``params`` as it holds the weights, ``weights_of(grads) -> (L, n, 2)``."""

    step: Callable
    forward: Callable | None
    params: Any
    weights_of: Callable = lambda g: g


def _vmapped(f):
    import jax

    return jax.vmap(f, in_axes=(None, 0))


def plain_program(n, diff, w, backend="auto", forward=True) -> Program:
    import jax

    batched = _vmapped(plain_model(n, diff, backend))
    step = jax.jit(jax.value_and_grad(lambda w, xs, ys: mse(batched(w, xs), ys)))
    return Program(step, jax.jit(batched) if forward else None, w)


def _layer_args(n, layers, w):
    import jax.numpy as jnp

    init = lambda key, shape, dtype: jnp.asarray(w, dtype)  # noqa: E731  (the same weights as the others)
    return (layer_circuit, n, {"w": (layers, n, 2)}, observable(n)), init


def nnx_program(n, layers, diff, w) -> Program:
    """`qml.QuantumLayer`, its state split off and merged back inside ``jax.jit``."""
    import jax
    from flax import nnx

    import qml

    args, init = _layer_args(n, layers, w)
    graphdef, state = nnx.split(qml.QuantumLayer(*args, rngs=nnx.Rngs(0), diff=diff, init=init))
    step = jax.jit(jax.value_and_grad(lambda s, xs, ys: mse(nnx.merge(graphdef, s)(xs), ys)))
    return Program(step, None, state, weights_of=lambda g: jax.tree.leaves(g)[0])


def nnx_jit_program(n, layers, diff, w) -> Program:
    """`qml.QuantumLayer` stepped with ``nnx.jit`` + ``nnx.value_and_grad`` (the module an argument)."""
    import jax
    from flax import nnx

    import qml

    args, init = _layer_args(n, layers, w)
    model = qml.QuantumLayer(*args, rngs=nnx.Rngs(0), diff=diff, init=init)

    @nnx.jit
    def step(model, xs, ys):
        return nnx.value_and_grad(lambda m: mse(m(xs), ys))(model)
    return Program(step, None, model, weights_of=lambda g: jax.tree.leaves(g)[0])


def linen_program(n, layers, diff, w, xs) -> Program:
    """`qml.linen.QuantumLayer`: ``params = layer.init(key, xs)``, the step over ``layer.apply``."""
    import jax

    import qml

    args, init = _layer_args(n, layers, w)
    layer = qml.linen.QuantumLayer(*args, diff=diff, weight_init=init)
    params = layer.init(jax.random.key(0), xs)
    step = jax.jit(jax.value_and_grad(lambda p, xs, ys: mse(layer.apply(p, xs), ys)))
    return Program(step, None, params, weights_of=lambda g: g["params"]["w"])


def peer_program(impl, n, layers, w, forward=True) -> Program:
    import jax

    from ..peers import _train

    batched = _train.build(impl, n, layers)
    step = jax.jit(jax.value_and_grad(lambda w, xs, ys: mse(batched(w, xs), ys)))
    return Program(step, jax.jit(batched) if forward else None, w)


# -- the grid -------------------------------------------------------------------------------------

def data(n: int, layers: int, batch: int):
    """Weights ``(L, n, 2)``, inputs ``(B, n)`` and targets ``(B,)``, float32, seeded by the point."""
    import jax.numpy as jnp

    rng = rng_for("train", n, layers, batch)
    w = rng.uniform(0, 2 * np.pi, (layers, n, 2))
    xs = rng.uniform(0, np.pi, (batch, n))
    ys = rng.uniform(-1, 1, batch) * n / 2
    return tuple(jnp.asarray(a, jnp.float32) for a in (w, xs, ys))


def explicit(cfg) -> bool:
    return bool(cfg.full or cfg.qubits or cfg.depths or cfg.batches)


def points(cfg) -> list[tuple[int, int, int]]:
    """``(n, L, batch)``: the grid (quick: plus `FIXED_POINT`)."""
    batches = list(cfg.batches or (FULL_BATCHES if cfg.full else QUICK_BATCHES))
    out = [(n, layers, b) for n in cfg.grid(QUICK_QUBITS, FULL_QUBITS)
           for layers in cfg.depth_grid((LAYERS,), (LAYERS,)) for b in batches]
    if not (cfg.qubits or cfg.depths or cfg.batches) and FIXED_POINT not in out:
        out.insert(0, FIXED_POINT)
    return out


def case_name(mode: str, n: int, layers: int, batch: int) -> str:
    return f"{mode} n={n} L={layers} B={batch}"


def _impl(prefix: str, diff: str) -> str:
    return prefix if diff == "backprop" else f"{prefix} {diff}"


def qsim_plan(cfg, point, grid) -> list[tuple[str, str, str, bool]]:
    """``(impl, formulation, diff, with forward)`` of the qsim rows at ``point``.

    With ``--qubits/--depth/--batch/--full``: every formulation and diff (and the pure-JAX kernels where
    the native ones are built). The quick run: the plain function everywhere (backprop, its forward
    pass; adjoint at the largest batch), the layers and pure-JAX at `QUICK_LAYER_POINT`.
    """
    top = point[2] == max(b for _, _, b in grid)
    if explicit(cfg):
        out = [(_impl("qsim", d), "plain", d, d == "backprop") for d in DIFFS]
        out += [(_impl(f"qsim {kind}", d), kind, d, False) for kind in ("nnx", "linen") for d in DIFFS]
        out += [(_impl(PURE_JAX, d), "pure-JAX", d, d == "backprop") for d in DIFFS if cfg.native]
    else:
        out = [("qsim", "plain", "backprop", True)]
        out += [("qsim adjoint", "plain", "adjoint", False)] if top or point == FIXED_POINT else []
        if point == QUICK_LAYER_POINT:
            out += [("qsim nnx", "nnx", "backprop", False), ("qsim linen", "linen", "backprop", False)]
            out += [(PURE_JAX, "pure-JAX", "backprop", False)] if cfg.native else []
    if point == FIXED_POINT:
        out.append(("qsim nnx.jit", "nnx.jit", "backprop", False))
    return out


def peer_plan(cfg, point) -> list[str]:
    """The peer formulations timed at ``point``: all with ``--qubits/--depth/--batch/--full``, else
    `QUICK_PEERS` (at their point, or every point up to `QUICK_PEER_MAX_QUBITS`): their compiles take
    seconds to minutes."""
    from ..peers import _train

    libraries = _peer_libraries(cfg)
    impls = [impl for impl, (lib, _) in _train.FORMULATIONS.items() if lib in libraries]
    if explicit(cfg) or not impls:
        return impls
    cfg.note(f"train: the quick run times TensorCircuit-NG's state formulation at n <= {QUICK_PEER_MAX_QUBITS} "
             "and PennyLane at the fixed-cost point only (TensorCircuit-NG compiles a step for 4.5 s at n=4, "
             "17 s at n=8, 35 s at n=12, minutes from n=14 on 2 cores); --qubits/--batch/--full time every "
             "peer formulation at every point")
    return [impl for impl in impls if impl in QUICK_PEERS and QUICK_PEERS[impl] in (None, point)
            and point[0] <= QUICK_PEER_MAX_QUBITS]


def _peer_libraries(cfg) -> list[str]:
    """TensorCircuit-NG when its adapter is loaded; PennyLane default.qubit when asked for."""
    out = [p.name for p in cfg.peers if p.name == "tensorcircuit"]
    return out + [name for name in cfg.train_peers if name == "pennylane"]


def cases(cfg) -> list[Case]:
    from ..peers import _train

    for lib in _peer_libraries(cfg):
        note = _train.available(lib)
        cfg.note(note or _train.describe(lib))
    grid = points(cfg)
    out = []
    for n, layers, batch in grid:
        label = case_name("step", n, layers, batch)
        out.append(Case(SUITE, label, _qsim_fn(cfg, n, layers, batch, qsim_plan(cfg, (n, layers, batch), grid))))
        for impl in peer_plan(cfg, (n, layers, batch)):
            if _train.available(_train.FORMULATIONS[impl][0]) is None:
                out.append(Case(SUITE, f"{label} {impl}", _peer_fn(cfg, impl, n, layers, batch)))
    return out


# -- measuring ------------------------------------------------------------------------------------

def single_precision():
    """``jax_enable_x64`` off in this thread for the block (the CLI turns it on for complex128)."""
    import jax

    return jax.enable_x64(False)


def _saved_states(formulation: str, diff: str, n: int, layers: int, native: bool) -> int:
    """States a step keeps alive per sample: backprop saves one per native call (layer) or per gate."""
    gates = n + n_gates_hea(n, layers)
    if diff == "adjoint":
        return 4
    if formulation in ("plain", "nnx", "nnx.jit", "linen") and native:
        return layers + 3
    return gates + 2


def too_big(formulation, diff, n, layers, batch, native) -> bool:
    need = _saved_states(formulation, diff, n, layers, native) * batch * (1 << n) * np.dtype(DTYPE).itemsize
    return need > MEMORY_FRACTION * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def mismatch(ours, theirs) -> float:
    """``max |ours - theirs| / max(1, max |ours|)`` over the flattened arrays (inf if shapes differ)."""
    a, b = np.ravel(np.asarray(ours, np.float64)), np.ravel(np.asarray(theirs, np.float64))
    if a.shape != b.shape:
        return float("inf")
    err = float(np.max(np.abs(a - b))) / max(1.0, float(np.max(np.abs(a))))
    return err if np.isfinite(err) else float("inf")


def _first_call(fn, args):
    t0 = now()
    out = block(fn(*args))
    return out, now() - t0


def time_program(prog: Program, xs, ys, repeat: int) -> dict:
    """First calls (compile) and medians of the step and, if any, the forward pass.

    Returns:
      ``{"step": timing, "forward": timing or None, "value", "grad" (L, n, 2), "output" (B,) or None}``.
    """
    (value, grads), first = _first_call(prog.step, (prog.params, xs, ys))
    out = {"step": dict(compile_s=first, **measure(lambda: block(prog.step(prog.params, xs, ys)), repeat)),
           "value": np.asarray(value), "grad": np.asarray(prog.weights_of(grads)), "forward": None,
           "output": None}
    if prog.forward is not None:
        output, first = _first_call(prog.forward, (prog.params, xs))
        out["forward"] = dict(compile_s=first, **measure(lambda: block(prog.forward(prog.params, xs)), repeat))
        out["output"] = np.asarray(output)
    return out


def _fields(cfg, n, layers, batch, formulation, diff):
    gates = n + n_gates_hea(n, layers)
    return dict(n=n, depth=layers, batch=batch, dtype=DTYPE, formulation=formulation, diff=diff, gates=gates,
                params=2 * n * layers, floor_s=cfg.floor_s(n, DTYPE, passes=gates * batch))


def _rows(cfg, impl, point, fields, result, reference):
    """The step row (and the forward row) of one formulation, checked against ``reference``."""
    n, layers, batch = point
    out = []
    for mode in ("step", "forward"):
        timing = result.get(mode)
        if timing is None:
            continue
        r = row(SUITE, case_name(mode, n, layers, batch), impl, mode=mode, **fields, **timing)
        if reference is not None:
            err = _error(mode, result, reference)
            r["max_rel_error"] = err
            if err > TOLERANCE:
                r.update(mismatch=True, note=f"MISMATCH vs qsim: {err:.2g} > {TOLERANCE:g}")
        out.append(with_floor(r, fields["floor_s"]))
    return out


def _error(mode, result, reference):
    if mode == "forward":
        return mismatch(reference["output"], result["output"]) if reference.get("output") is not None else 0.0
    return max(mismatch(reference["value"], result["value"]), mismatch(reference["grad"], result["grad"]))


def _reference(cfg, n, layers, batch):
    """qsim's plain backprop loss, gradient and forward output at a point (computed once)."""
    key = ("train reference", n, layers, batch)
    if key not in cfg.checks:
        w, xs, ys = data(n, layers, batch)
        diff = "adjoint" if too_big("plain", "backprop", n, layers, batch, cfg.native) else "backprop"
        cfg.checks[key] = time_program(plain_program(n, diff, w), xs, ys, 1)
    return cfg.checks[key]


def _program(formulation, n, layers, diff, w, xs, forward):
    if formulation == "plain":
        return plain_program(n, diff, w, forward=forward)
    if formulation == "pure-JAX":
        return plain_program(n, diff, w, backend="xla", forward=forward)
    if formulation == "nnx":
        return nnx_program(n, layers, diff, w)
    if formulation == "nnx.jit":
        return nnx_jit_program(n, layers, diff, w)
    return linen_program(n, layers, diff, w, xs)


def _qsim_fn(cfg, n, layers, batch, plan):
    def run():
        rows = []
        with single_precision():
            w, xs, ys = data(n, layers, batch)
            for impl, formulation, diff, forward in plan:
                fields = _fields(cfg, n, layers, batch, formulation, diff)
                if too_big(formulation, diff, n, layers, batch, cfg.native and formulation != "pure-JAX"):
                    rows.append(row(SUITE, case_name("step", n, layers, batch), impl, mode="step", **fields,
                                    note=f"skipped: would keep more than {MEMORY_FRACTION:.0%} of the RAM"))
                    continue
                result = time_program(_program(formulation, n, layers, diff, w, xs, forward), xs, ys, cfg.repeat)
                key = ("train reference", n, layers, batch)
                if impl == "qsim":
                    cfg.checks.setdefault(key, result)
                rows += _rows(cfg, impl, (n, layers, batch), fields, result,
                              None if impl == "qsim" else _reference(cfg, n, layers, batch))
        return rows
    return run


def announce(text: str) -> None:
    """A line on stderr above the progress bar."""
    try:
        from tqdm import tqdm

        tqdm.write(text, file=sys.stderr)
    except ImportError:
        print(text, file=sys.stderr, flush=True)


def _peer_fn(cfg, impl, n, layers, batch):
    def run():
        fields = _fields(cfg, n, layers, batch, impl.split(" ", 1)[1], "backprop")
        name = case_name("step", n, layers, batch)
        if too_big("peer", "backprop", n, layers, batch, False):
            return [row(SUITE, name, impl, mode="step", **fields,
                        note=f"skipped: backprop would keep more than {MEMORY_FRACTION:.0%} of the RAM")]
        reference = _reference(cfg, n, layers, batch)
        if n >= LONG_COMPILE_QUBITS:
            announce(f"train: compiling {impl} at n={n} L={layers} B={batch}: expect a long compile "
                     "(TensorCircuit-NG: 35 s at n=12, minutes from n=14 on 2 cores; PennyLane similar)")
        with single_precision():
            w, xs, ys = data(n, layers, batch)
            result = time_program(peer_program(impl, n, layers, w, forward=explicit(cfg)), xs, ys, cfg.repeat)
        return _rows(cfg, impl, (n, layers, batch), fields, result, reference)
    return run


# -- after the run --------------------------------------------------------------------------------

def add_ratios(rows) -> None:
    """``vs_tc``: median time over the faster TensorCircuit-NG formulation's on the same case (the
    TC figure, marked ``tc_best``); mismatched rows are never the base."""
    best = {}
    for r in rows:
        tc = r.get("suite") == SUITE and r["impl"].startswith(TC_PREFIX)
        if tc and r.get("time_s") and not r.get("mismatch"):
            if r["case"] not in best or r["time_s"] < best[r["case"]]["time_s"]:
                best[r["case"]] = r
    for r in rows:
        base = best.get(r["case"]) if r.get("suite") == SUITE else None
        if base is not None and r.get("time_s"):
            r["vs_tc"] = r["time_s"] / base["time_s"]
    for r in best.values():
        r["tc_best"] = True
        r["note"] = (r.get("note", "") + " TC figure (faster formulation)").strip()


def _ratio_range(rows, impl, key):
    vals = [r[key] for r in rows if r["impl"] == impl and r.get(key) and r["mode"] == "step"]
    return f"{min(vals):.2f}-{max(vals):.2f}x over {len(vals)} cases" if vals else None


def summary(rows) -> list[str]:
    """Notes after the table: the fixed cost of one small call, qsim against the TC figure, layers
    against the plain function, which TC formulation was faster."""
    rows = [r for r in rows if r.get("suite") == SUITE and r.get("mode")]
    out = []
    n, layers, batch = FIXED_POINT
    fixed = [r for r in rows if r["case"] == case_name("step", n, layers, batch) and r.get("time_s")]
    if fixed:
        forward = [r for r in rows if r["case"] == case_name("forward", n, layers, batch) and r.get("time_s")]
        cells = lambda rs: ", ".join(f"{r['impl']} {fmt_time(r['time_s'])}" for r in rs)  # noqa: E731
        out.append(f"train fixed cost of one small call (n={n}, L={layers}: {fixed[0]['gates']} gates, batch "
                   f"{batch}): step {cells(fixed)}" + (f"; forward {cells(forward)}" if forward else ""))
    for impl in ("qsim", "qsim adjoint", PURE_JAX):
        text = _ratio_range(rows, impl, "vs_tc")
        if text:
            out.append(f"train {impl} step / TC figure: {text}")
    for impl in ("qsim nnx", "qsim linen", "qsim nnx adjoint", "qsim linen adjoint", "qsim nnx.jit"):
        text = _ratio_range(rows, impl, "rel")
        if text:
            out.append(f"train {impl} step / plain function (qsim): {text}")
    steps = [r for r in rows if r["mode"] == "step" and r["impl"].startswith(TC_PREFIX) and r.get("time_s")]
    if steps:
        best = [r for r in steps if r.get("tc_best")]
        counts = {f: sum(r["impl"].endswith(f) for r in best) for f in ("state", "expectation_ps")}
        out.append(f"train TC figure (faster TensorCircuit-NG step formulation): state at {counts['state']}, "
                   f"expectation_ps at {counts['expectation_ps']} of {len(best)} cases")
    return out
