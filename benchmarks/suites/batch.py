"""Suite ``batch``: a vmapped forward pass over a batch of inputs, samples per second.

One sample: angle embedding (RY(x_q) on every wire q), then L HEA layers
(see `gradients`) with fixed weights, output ``sum_q <Z_q>``; n=10, L=5;
``jax.jit(jax.vmap(f))`` compiled apart, timed for batch sizes 1, 16, 64, 256.
TensorCircuit-NG's vmap runs beside it (checked on a small batch first).
The floor is one pass per gate per sample.
"""

from __future__ import annotations

import numpy as np

from ..context import SHORT_DTYPE, Case, row, with_floor
from ..peers import check_same
from ..timing import block, compile_jit, measure
from ..workloads import hea_layer, hea_weights, n_gates_hea, rng_for

QUICK_QUBITS, FULL_QUBITS = (10,), (10,)
QUICK_DEPTHS, FULL_DEPTHS = (5,), (5,)
BATCHES = (1, 16, 64, 256)
CHECK = (4, 2, 3)   # n, layers, batch of the peer check


def cases(cfg) -> list[Case]:
    out = []
    for dtype in cfg.dtype_list():
        for n in cfg.grid(QUICK_QUBITS, FULL_QUBITS):
            for layers in cfg.depth_grid(QUICK_DEPTHS, FULL_DEPTHS):
                for batch in BATCHES:
                    name = f"batch={batch} n={n} L={layers} {SHORT_DTYPE[dtype]}"
                    out.append(Case("batch", name, _case_fn(cfg, name, n, layers, batch, dtype)))
    return out


def qsim_forward(n: int, layers: int, weights, dtype: str):
    """``xs (B, n) -> (B,)``: vmapped angle embedding + HEA, ``sum_q <Z_q>``."""
    import jax
    import jax.numpy as jnp
    import qsim

    obs = qsim.PauliSum.from_string(" + ".join(f"Z{i}" for i in range(n)))
    w = jnp.asarray(weights, jnp.finfo(dtype).dtype)

    def one(x):
        c = qsim.Circuit(n, dtype=dtype)
        for q in range(n):
            c.ry(q, x[q])
        c.repeat(hea_layer, w)
        return c.expectation(obs)
    return jax.vmap(one)


def inputs(n: int, batch: int, dtype: str) -> np.ndarray:
    return rng_for("inputs", n, batch).uniform(0, np.pi, (batch, n)).astype(np.finfo(dtype).dtype)


def _time(fn, xs, cfg):
    compiled, times = compile_jit(fn, xs)
    timing = measure(lambda: block(compiled(xs)), cfg.repeat)
    return dict(compile_s=times["compile_s"], **timing, samples_per_s=xs.shape[0] / timing["time_s"])


def _check(cfg, peer, dtype):
    key = (peer.name, "batch", dtype)
    if key not in cfg.checks:
        n, layers, batch = CHECK
        w, xs = hea_weights(n, layers, "batch"), inputs(n, batch, dtype)
        try:
            check_same(qsim_forward(n, layers, w, dtype)(xs), peer.batch_forward(n, layers, w, dtype)(xs),
                       dtype, f"{peer.name} batch forward")
            cfg.checks[key] = None
        except AssertionError as err:
            cfg.checks[key] = f"NOT TIMED, {err}"
    return cfg.checks[key]


def _case_fn(cfg, name, n, layers, batch, dtype):
    def run():
        w, xs = hea_weights(n, layers, "batch"), inputs(n, batch, dtype)
        gates = n + n_gates_hea(n, layers)
        fields = dict(n=n, depth=layers, dtype=dtype, batch=batch, floor_s=cfg.floor_s(n, dtype, gates * batch))
        rows = [row("batch", name, "qsim", **fields, **_time(qsim_forward(n, layers, w, dtype), xs, cfg))]
        for peer in [p for p in cfg.peers if hasattr(p, "batch_forward")]:
            note = _check(cfg, peer, dtype)
            timing = {"note": note} if note else _time(peer.batch_forward(n, layers, w, dtype), xs, cfg)
            rows.append(row("batch", name, peer.name, **fields, **timing))
        return [with_floor(r, fields["floor_s"]) for r in rows]
    return run
