"""Suite ``circuits``: whole circuits, qsim fused (default) and unfused, beside the peers.

QCBM: Rx Rz on every wire, then 9 times (``--depth`` overrides) a CNOT chain
(i, i+1) and Rz Rx Rz on every wire, random angles. Brick-work: layers of
random 2-qubit unitaries on (0,1),(2,3),.. then (1,2),(3,4),... Each run is
the whole circuit applied in place to the held state (jit compile reported
apart); unfused only at the largest n of a quick run; the floor is one pass per gate, so ``x floor`` below 1 means fusion
does several gates per pass. Peers run at their defaults (Aer fuses). Where the
native CPU kernels are built, ``qsim pure-JAX`` (fused, XLA kernels) runs beside
them wherever the unfused row does.
"""

from __future__ import annotations

from ..context import PURE_JAX, SHORT_DTYPE, Case, peer_dtype, row, with_floor
from ..ours import QsimRunner
from ..peers import verify
from ..timing import measure
from ..workloads import QCBM_LAYERS, brickwork, qcbm, rng_for, zero_state

QUICK_QUBITS, FULL_QUBITS = (8, 12), (10, 12, 14, 16, 18, 20, 22, 24)
BRICK_DEPTH = 10
CHECK_QUBITS = 6


def families(cfg):
    """``(family, depth, builder(n, depth))`` for each circuit family and depth."""
    qcbm_depths = cfg.depth_grid((QCBM_LAYERS,), (QCBM_LAYERS,))
    brick_depths = cfg.depth_grid((BRICK_DEPTH,), (BRICK_DEPTH,))
    out = [("qcbm", d, lambda n, d: qcbm(n, rng_for("qcbm", n, d), d)) for d in qcbm_depths]
    return out + [("brickwork", d, lambda n, d: brickwork(n, d, rng_for("brick", n, d))) for d in brick_depths]


def cases(cfg) -> list[Case]:
    out = []
    for dtype in cfg.dtype_list():
        for family, depth, build in families(cfg):
            for n in cfg.grid(QUICK_QUBITS, FULL_QUBITS):
                name = f"{family} L={depth} n={n} {SHORT_DTYPE[dtype]}"
                out.append(Case("circuits", name, _case_fn(cfg, name, family, depth, build, n, dtype)))
    return out


def _case_fn(cfg, name, family, depth, build, n, dtype):
    def run():
        ops = build(n, depth)
        fields = dict(n=n, dtype=dtype, family=family, depth=depth, gates=len(ops))
        # unfused: every n with --full, else the largest (each compile costs seconds)
        unfused = cfg.full or n == max(cfg.grid(QUICK_QUBITS, FULL_QUBITS))
        rows = [_time_qsim(cfg, name, ops, fields, fuse) for fuse in ((None, False) if unfused else (None,))]
        if cfg.native and unfused:   # the XLA kernels (fused) beside the native ones
            rows.append(_time_qsim(cfg, name, ops, fields, None, pure_jax=True))
        for peer in cfg.peers:
            rows.append(_time_peer(cfg, peer, name, ops, build, fields))
        return rows
    return run


def _floor(cfg, n, dtype, ops):
    return cfg.floor_s(n, dtype, passes=len(ops))


def _time_qsim(cfg, name, ops, fields, fuse, pure_jax=False):
    n, dtype = fields["n"], fields["dtype"]
    runner = QsimRunner(ops, n, dtype, zero_state(n, dtype), fuse=fuse, pure_jax=pure_jax)
    impl = PURE_JAX if pure_jax else ("qsim" if fuse is None else "qsim unfused")
    r = row("circuits", name, impl, compile_s=runner.compile_s, **fields, **measure(runner.run, cfg.repeat))
    return with_floor(r, _floor(cfg, n, dtype, ops))


def _time_peer(cfg, peer, name, ops, build, fields):
    n, dtype = fields["n"], peer_dtype(peer, fields["dtype"])
    fields = dict(fields, dtype=dtype)
    small = CHECK_QUBITS
    note = verify(peer, build(small, fields["depth"]), small, dtype, zero_state(small, dtype),
                  f"{fields['family']} L={fields['depth']}", cfg.checks)
    if note:
        cfg.note(f"{peer.name} {fields['family']}: {note}")
        return row("circuits", name, peer.name, note=note, **fields)
    runner = peer.prepare(ops, n, dtype, zero_state(n, dtype))
    r = row("circuits", name, peer.name, compile_s=runner.compile_s, **fields, **measure(runner.run, cfg.repeat))
    return with_floor(r, _floor(cfg, n, dtype, ops))
