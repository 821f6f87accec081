"""Suite ``gradients``: value-and-grad of the hardware-efficient ansatz, time and peak memory.

Per layer: RY and RZ on every wire, then a CNOT chain (written once, with
``c.repeat(layer, weights)``); cost ``sum_i <Z_i>``. For each (n, L) and each
``diff`` (backprop, adjoint; parameter-shift at small sizes only) one fresh
process compiles (timed apart) and times value-and-grad (the first of each
(n, L), backprop, also the forward pass), and reports its peak memory (see
`benchmarks.memory`); ``ratio`` is value-and-grad over forward. PennyLane
lightning's adjoint and TensorCircuit-NG's jitted backprop run beside it, each
in its own process (checked against qsim's gradient first).
"""

from __future__ import annotations

import os

import numpy as np

from ..context import PURE_JAX, SHORT_DTYPE, Case, row, with_floor
from ..memory import baseline, run_isolated
from ..peers import check_same
from ..timing import block, compile_jit, measure
from ..workloads import hea_layer, hea_weights, n_gates_hea

QUICK_POINTS = ((12, 4), (12, 32))
FULL_POINTS = ((12, 10), (12, 40), (12, 160), (18, 10), (18, 40), (18, 160), (20, 10))
DIFFS = ("backprop", "adjoint", "parameter-shift")
SHIFT_MAX_PARAMS = 240     # parameter-shift runs 2 circuits per parameter: small cases only
CHECK_POINT = (4, 2)
MEMORY_FRACTION = 0.5      # skip a backprop case whose saved states would pass this share of RAM


def grid(cfg):
    """``(n, layers)`` points: the overrides' product, else the quick or full points."""
    if cfg.qubits or cfg.depths:
        qubits = cfg.qubits or sorted({n for n, _ in QUICK_POINTS})
        return [(n, d) for n in qubits for d in cfg.depth_grid((4, 32), (10, 40, 160))]
    return list(FULL_POINTS if cfg.full else QUICK_POINTS)


def diffs_for(cfg, n, layers):
    """Parameter-shift only for few parameters, and not in a quick run (it compiles for ~15 s)."""
    small = 2 * n * layers <= SHIFT_MAX_PARAMS and (cfg.full or cfg.qubits or cfg.depths)
    return DIFFS if small else DIFFS[:2]


def cases(cfg) -> list[Case]:
    out = []
    for dtype in cfg.dtype_list():
        for n, layers in grid(cfg):
            for diff in diffs_for(cfg, n, layers):
                name = f"hea n={n} L={layers} {diff} {SHORT_DTYPE[dtype]}"
                out.append(Case("gradients", name, _qsim_fn(cfg, name, n, layers, diff, dtype)))
            if cfg.native and (cfg.full or cfg.qubits or cfg.depths):   # XLA kernels beside native
                name = f"hea n={n} L={layers} adjoint {SHORT_DTYPE[dtype]}"
                out.append(Case("gradients", name + " (pure-JAX)",
                                _qsim_fn(cfg, name, n, layers, "adjoint", dtype, pure_jax=True)))
            if any(hasattr(p, "hea_value_and_grad") for p in cfg.peers):
                name = f"hea n={n} L={layers} adjoint {SHORT_DTYPE[dtype]}"   # the row's case: beside qsim's
                out.append(Case("gradients", name + " (peers)", _peers_fn(cfg, name, n, layers, dtype)))
    return out


def _cost(n, diff, backend="auto"):
    import qsim

    obs = qsim.PauliSum.from_string(" + ".join(f"Z{i}" for i in range(n)))

    def cost(w, dtype):
        c = qsim.Circuit(n, dtype=dtype, backend=backend)
        c.repeat(hea_layer, w)
        return c.expectation(obs, diff=diff)
    return cost


def qsim_case(n: int, layers: int, diff: str, dtype: str, repeat: int, forward: bool = True,
              pure_jax: bool = False) -> dict:
    """Compile and time value-and-grad (and, with ``forward``, the forward pass) of the HEA.

    Run in a fresh process; returns timings, compile times, the value and the first gradients.
    ``pure_jax``: trace with the XLA kernels even where the native ones are built.
    """
    import jax
    import jax.numpy as jnp

    cost = _cost(n, diff, "xla" if pure_jax else "auto")
    w = jnp.asarray(hea_weights(n, layers), jnp.finfo(dtype).dtype)
    vg, t_vg = compile_jit(jax.value_and_grad(lambda w: cost(w, dtype)), w)
    if forward:
        fwd, t_f = compile_jit(lambda w: cost(w, dtype), w)
    out = {"compile_s": t_vg["compile_s"], **measure(lambda: block(vg(w)), repeat)}
    if forward:
        out.update(forward_compile_s=t_f["compile_s"], forward_s=measure(lambda: block(fwd(w)), repeat)["time_s"])
    value, grad = vg(w)
    out.update(value=float(value), grad=np.asarray(grad).ravel().tolist()[:8])
    return out


def peer_case(peer: str, n: int, layers: int, dtype: str, repeat: int, threads: int) -> dict:
    """Time a peer's value-and-grad of the HEA (run in a fresh process): lightning's adjoint,
    TensorCircuit's jitted backprop (its compile time reported apart)."""
    from ..peers import load

    (p,), _ = load([peer], threads)
    vg = p.hea_value_and_grad(n, layers, dtype)
    w = hea_weights(n, layers)
    vg(w)   # warm-up
    out = measure(lambda: vg(w), repeat)
    if hasattr(vg, "compile_s"):
        out["compile_s"] = vg.compile_s
    value, grad = vg(w)
    out.update(value=value, grad=grad.ravel().tolist()[:8])
    return out


def _isolated(cfg, target, kwargs):
    if not cfg.isolate_memory:   # in this process: no peak memory
        return globals()[target.split(":")[1]](**kwargs)
    import jax

    x64 = bool(jax.config.jax_enable_x64)   # the child runs as this process does
    result = run_isolated(target, kwargs, x64=x64)
    if "peak_rss_mib" in result:
        key = ("memory baseline", x64)
        if key not in cfg.checks:
            cfg.checks[key] = baseline(x64=x64)
        if cfg.checks[key]:
            result["baseline_mib"] = cfg.checks[key]
            result["added_mib"] = result["peak_rss_mib"] - cfg.checks[key]
    return result


def _too_big(n, layers, dtype, diff, native=False):
    """Backprop saves a state per native call (one per layer) or, on the XLA kernels, per gate."""
    if diff != "backprop":
        return False
    saved = (layers if native else n_gates_hea(n, layers)) * (1 << n) * np.dtype(dtype).itemsize
    return saved > MEMORY_FRACTION * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _fields(cfg, n, layers, dtype, diff):
    gates = n_gates_hea(n, layers)
    return dict(n=n, depth=layers, dtype=dtype, diff=diff, params=2 * n * layers, gates=gates,
                floor_s=cfg.floor_s(n, dtype, passes=gates))


def _finish(suite_row, result, forward_s=None):
    suite_row.update({k: v for k, v in result.items() if k not in ("value", "grad")})
    forward_s = result.get("forward_s") or forward_s
    if forward_s and result.get("time_s"):
        suite_row.update(forward_s=forward_s, ratio=result["time_s"] / forward_s)
    if "error" in result:
        suite_row["note"] = result.pop("error")
    return with_floor(suite_row, suite_row.get("floor_s"))


def _qsim_fn(cfg, name, n, layers, diff, dtype, pure_jax=False):
    def run():
        fields = _fields(cfg, n, layers, dtype, diff)
        if _too_big(n, layers, dtype, diff, native=cfg.native and not pure_jax):
            return [row("gradients", name, "qsim", note="skipped: backprop would save more than half the RAM",
                        **fields)]
        key = ("hea forward", n, layers, dtype)   # the forward pass is timed once per (n, L), with backprop
        forward = key not in cfg.checks and not pure_jax
        kwargs = dict(n=n, layers=layers, diff=diff, dtype=dtype, repeat=cfg.repeat, forward=forward,
                      pure_jax=pure_jax)
        result = _isolated(cfg, "benchmarks.suites.gradients:qsim_case", kwargs)
        if result.get("forward_s"):
            cfg.checks[key] = result["forward_s"]
        impl = PURE_JAX if pure_jax else "qsim"
        forward_s = None if pure_jax else cfg.checks.get(key)   # ratio only against its own kernels
        return [_finish(row("gradients", name, impl, **fields), result, forward_s)]
    return run


def _check_peer(cfg, peer, dtype):
    """A peer's HEA value and gradient against qsim's adjoint on a small case (once per peer)."""
    key = (peer.name, "hea", dtype)
    if key not in cfg.checks:
        import jax
        import jax.numpy as jnp

        n, layers = CHECK_POINT
        cost = _cost(n, "adjoint")
        w = hea_weights(n, layers)
        ours = jax.value_and_grad(lambda w: cost(w, dtype))(jnp.asarray(w, jnp.finfo(dtype).dtype))
        theirs = peer.hea_value_and_grad(n, layers, dtype)(w)
        try:
            flat = lambda vg: np.concatenate([[vg[0]], np.ravel(vg[1])])
            check_same(flat(ours), flat(theirs), dtype, f"{peer.name} HEA value and gradient")
            cfg.checks[key] = None
        except AssertionError as err:
            cfg.checks[key] = f"NOT TIMED, {err}"
    return cfg.checks[key]


HEAVY_MAX_LAYERS = 10   # peers whose value-and-grad compile grows with depth (minutes at L=32)


def _peers_for(cfg, layers):
    """Peers with an HEA gradient; compile-heavy ones (TensorCircuit) only in explicit or
    --full runs and up to `HEAVY_MAX_LAYERS` layers."""
    out = []
    for p in cfg.peers:
        if not hasattr(p, "hea_value_and_grad"):
            continue
        if getattr(p, "hea_compile_heavy", False) and (
                layers > HEAVY_MAX_LAYERS or not (cfg.full or cfg.qubits or cfg.depths)):
            cfg.note(f"{p.name} gradients: skipped at L={layers} (its jit(value_and_grad) compiles "
                     f"for minutes; runs with --qubits/--depth or --full, L <= {HEAVY_MAX_LAYERS})")
            continue
        out.append(p)
    return out


def _peers_fn(cfg, name, n, layers, dtype):
    def run():
        rows = []
        for peer in _peers_for(cfg, layers):
            fields = _fields(cfg, n, layers, dtype, "adjoint")
            note = _check_peer(cfg, peer, dtype)
            if note:
                cfg.note(f"{peer.name} gradients: {note}")
                rows.append(row("gradients", name, peer.name, note=note, **fields))
                continue
            kwargs = dict(peer=peer.name, n=n, layers=layers, dtype=dtype, repeat=cfg.repeat,
                          threads=cfg.threads)
            result = _isolated(cfg, "benchmarks.suites.gradients:peer_case", kwargs)
            rows.append(_finish(row("gradients", name, peer.name, **fields), result))
        return rows
    return run
