"""Suite ``gates``: the time of one gate against the bandwidth floor.

Each case applies one gate, jitted with the state donated
(``jax.jit(state -> Circuit(n, state=state).h(w).state(), donate_argnums=0)``),
to a random normalised state (not ``|0...0>``, whose untouched pages flatter),
and reports the median time as a multiple of ``floor = 2 * bytes(state) /
bandwidth``. Gates: a single-qubit dense gate (``h``; also a random ``u3`` with
``--full``), a diagonal (``rz``), ``cnot`` and a random dense 2-qubit unitary,
on the top (0), middle (n//2) and bottom (n-1) wires, complex64 and
complex128. Peers run the same gate on the same state. Where the native CPU
kernels are built, ``qsim pure-JAX`` rows time the XLA kernels beside them.
"""

from __future__ import annotations

import functools

from ..context import PURE_JAX, SHORT_DTYPE, Case, row, with_floor
from ..ours import QsimRunner
from ..peers import verify
from ..timing import measure
from ..workloads import random_state, rng_for, single_gate

QUICK_QUBITS, FULL_QUBITS = (12, 20), (10, 12, 14, 16, 18, 20, 22, 24, 26)
QUICK_KINDS, FULL_KINDS = ("h", "rz", "cnot", "unitary2"), ("h", "u3", "rz", "cnot", "unitary2")
CHECK_QUBITS = 5


def wire_of(label: str, n: int) -> int:
    """``top`` -> 0, ``mid`` -> n // 2, ``bottom`` -> n - 1."""
    return {"top": 0, "mid": n // 2, "bottom": n - 1}[label]


def grid_points(cfg):
    """``(n, dtype, kind, wire label, with_peers)``: every wire at the largest n (all n with --full), else mid."""
    qubits = cfg.grid(QUICK_QUBITS, FULL_QUBITS)
    kinds = FULL_KINDS if cfg.full else QUICK_KINDS
    for dtype in cfg.dtype_list(("complex64", "complex128")):
        for n in qubits:
            labels = ("top", "mid", "bottom") if (cfg.full or n == max(qubits)) else ("mid",)
            for kind in kinds:
                for label in labels:
                    yield n, dtype, kind, label, cfg.full or label == "mid"


def cases(cfg) -> list[Case]:
    out = []
    for n, dtype, kind, label, peers in grid_points(cfg):
        name = f"{kind} n={n} {label} {SHORT_DTYPE[dtype]}"
        out.append(Case("gates", name, _case_fn(cfg, name, n, dtype, kind, label, peers)))
    return out


@functools.lru_cache(maxsize=1)
def _random_state(n, dtype):
    """The start state of every case of one (n, dtype): made once (seconds at n=30)."""
    state = random_state(n, dtype, rng_for("state", n))
    state.flags.writeable = False
    return state


def _case_fn(cfg, name, n, dtype, kind, label, with_peers):
    def run():
        ops = single_gate(kind, n, wire_of(label, n), rng_for("gate", kind, n, label))
        init = _random_state(n, dtype)
        fields = dict(n=n, dtype=dtype, gate=kind, wire=label, floor_s=cfg.floor_s(n, dtype))
        rows = [_time_qsim(cfg, name, ops, n, dtype, init, fields)]
        if cfg.native:   # the XLA kernels beside the native ones
            rows.append(_time_qsim(cfg, name, ops, n, dtype, init, fields, pure_jax=True))
        for peer in (cfg.peers if with_peers else ()):
            if dtype in peer.dtypes:
                rows.append(_time_peer(cfg, peer, name, ops, n, dtype, init, fields))
        return rows
    return run


def _time_qsim(cfg, name, ops, n, dtype, init, fields, pure_jax=False):
    runner = QsimRunner(ops, n, dtype, init, pure_jax=pure_jax)
    r = row("gates", name, PURE_JAX if pure_jax else "qsim", compile_s=runner.compile_s, **fields, **measure(runner.run, cfg.repeat))
    return with_floor(r, fields["floor_s"])


def _check(cfg, peer, kind, label, dtype):
    """Verify the peer on the same gate and wire position at a small size."""
    n = CHECK_QUBITS
    ops = single_gate(kind, n, wire_of(label, n), rng_for("check", kind, label)) * peer.gate_batch
    return verify(peer, ops, n, dtype, random_state(n, dtype, rng_for("check", n)),
                  f"gate {kind} {label}", cfg.checks)


def _time_peer(cfg, peer, name, ops, n, dtype, init, fields):
    note = _check(cfg, peer, fields["gate"], fields["wire"], dtype)
    if note:
        cfg.note(f"{peer.name} {fields['gate']}: {note}")
        return row("gates", name, peer.name, note=note, **fields)
    k = peer.gate_batch
    runner = peer.prepare(ops * k, n, dtype, init, fuse=False)
    timing = measure(runner.run, cfg.repeat)
    if k > 1:  # a fixed per-run overhead: subtract a run of no gates, divide by the copies
        base = measure(peer.prepare([], n, dtype, init, fuse=False).run, cfg.repeat)
        timing = {key: (timing[key] - base["time_s"]) / k if key.startswith("time") else timing[key]
                  for key in timing}
        timing["note"] = f"({k} gates - 0 gates) / {k}"
    r = row("gates", name, peer.name, compile_s=runner.compile_s, **fields, **timing)
    return with_floor(r, fields["floor_s"])
