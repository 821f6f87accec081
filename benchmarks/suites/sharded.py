"""Suite ``sharded``: a QCBM on a state sharded over D = 1, 2, 4, 8 CPU devices (``Circuit(n, mesh=...)``).

The QCBM of the ``circuits`` suite (Rx Rz on every wire, then L layers of a
CNOT chain and Rz Rx Rz on every wire), its layers written once with
``c.repeat`` and the angles traced; the cost is ``sum_i <Z_i>``. Each D runs in
its own process started with ``XLA_FLAGS=--xla_force_host_platform_device_count=D``
(the benchmark process itself has one device); D = 1 is the plain circuit.
Per row: compile time, time of the forward pass and per layer, memory per
device (the compiled program's own count: arguments, outputs and temporaries
of one device's partition: with the in-place chunked swap about 1/D of D = 1's,
plus two chunks), the process's peak RSS, and the swaps per layer that the
layout planner runs against the naive count (every global wire of a gate
swapped in and back out). ``vs D=1`` is the time over D = 1's.

On one CPU the D "devices" share its cores and memory bandwidth, so this
measures the cost of sharding (swaps, smaller kernels), not a speed-up.
"""

from __future__ import annotations

from ..context import SHORT_DTYPE, Case, row
from ..memory import run_isolated
from ..timing import block, compile_jit, measure

QUICK_QUBITS, FULL_QUBITS = (16,), (16, 20, 22)
DEVICES = (1, 2, 4, 8)
LAYERS = 9


def cases(cfg) -> list[Case]:
    out = []
    for dtype in cfg.dtype_list():
        for n in cfg.grid(QUICK_QUBITS, FULL_QUBITS):
            layers = cfg.depth_grid((LAYERS,), (LAYERS,))[0]
            name = f"qcbm n={n} L={layers} {SHORT_DTYPE[dtype]}"
            out.append(Case("sharded", name, _case_fn(cfg, name, n, layers, dtype)))
    return out


def qcbm_layer(c, w):
    """One QCBM layer: a CNOT chain, then Rz Rx Rz on every wire (``w``: ``(n, 3)``)."""
    n = c.n_qubits
    for q in range(n - 1):
        c.cnot(q, q + 1)
    for q in range(n):
        c.rz(q, w[q, 0]).rx(q, w[q, 1]).rz(q, w[q, 2])


def device_case(n: int, layers: int, devices: int, dtype: str, repeat: int) -> dict:
    """Compile and time the sharded QCBM on ``devices`` devices (run in a process that has them)."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    import qsim
    from jax.sharding import Mesh
    from qsim import _layout, _sharding

    from ..workloads import rng_for

    mesh = Mesh(np.array(jax.devices()[:devices]), ("devices",)) if devices > 1 else None
    obs = qsim.PauliSum.from_string(" + ".join(f"Z{i}" for i in range(n)))
    rng = rng_for("sharded", n, layers)
    real = jnp.finfo(dtype).dtype
    first, ws = jnp.asarray(rng.uniform(0, 6.3, (n, 2)), real), jnp.asarray(rng.uniform(0, 6.3, (layers, n, 3)), real)

    def circuit(first, ws):
        c = qsim.Circuit(n, dtype=dtype, mesh=mesh)
        for q in range(n):
            c.rx(q, first[q, 0]).rz(q, first[q, 1])
        return c.repeat(qcbm_layer, ws)

    compiled, times = compile_jit(lambda f, w: circuit(f, w).expectation(obs), first, ws)
    mem = compiled.memory_analysis()
    out = {"compile_s": times["compile_s"], **measure(lambda: block(compiled(first, ws)), repeat),
           "value": float(compiled(first, ws)), "devices_seen": len(jax.devices()),
           "device_mib": (mem.argument_size_in_bytes + mem.output_size_in_bytes + mem.temp_size_in_bytes
                          - mem.alias_size_in_bytes) / 2 ** 20}
    if mesh is not None:   # the steady state of the repeat plan, and one layer with a fixed layout
        plan = _sharding.layout_plan(circuit(first, ws))
        rp = next(item for item in plan.items if isinstance(item, _layout.RepeatPlan))
        period = rp.period or rp.prefix     # no period: every layer planned one by one (few layers)
        swaps = sum(isinstance(s.record, _layout.SwapOp) for layer in period for s in layer)
        one = qsim.Circuit(n)
        qcbm_layer(one, ws[0])
        out.update(swaps_per_layer=swaps / len(period), total_swaps=plan.swaps,
                   naive_per_layer=float(_layout.plan(one.program[0], n, mesh.size.bit_length() - 1).naive))
    return out


def _run_with_devices(devices: int, kwargs: dict, timeout: float = 900) -> dict:
    """``device_case(**kwargs)`` in a fresh process that sees ``devices`` CPU devices (and its peak RSS)."""
    return run_isolated("benchmarks.suites.sharded:device_case", kwargs, timeout=timeout,
                        env={"XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"})


def _note(r, base):
    if "error" in r:
        return r["error"]
    text = f"{r['vs_d1']:.2f}x D=1's time, " if r.get("vs_d1") and "swaps_per_layer" in r else ""
    text += f"{r['device_mib']:.2f} MiB/device"
    if base and base.get("device_mib"):
        text += f" ({r['device_mib'] / base['device_mib']:.2f} of D=1)"
    if "swaps_per_layer" in r:
        text += f", {r['swaps_per_layer']:.1f} swaps/layer (naive {r['naive_per_layer']:.1f})"
    return text


def _case_fn(cfg, name, n, layers, dtype):
    def run():
        rows, base = [], None
        for d in DEVICES:
            if d > 1 << (n - 1):
                continue
            r = _run_with_devices(d, dict(n=n, layers=layers, devices=d, dtype=dtype, repeat=cfg.repeat))
            if "time_s" in r:
                r["time_per_layer_s"] = r["time_s"] / layers
                base = base or (r if d == 1 else None)
                if base:
                    r["vs_d1"] = r["time_s"] / base["time_s"]
            rows.append(row("sharded", f"{name} D={d}", "qsim", n=n, depth=layers, dtype=dtype, devices=d,
                            note=_note(r, base), **r))
        cfg.note("sharded: the D CPU devices share this machine's cores and memory bandwidth, so the suite "
                 "shows the cost of sharding (swaps, smaller kernels), not a speed-up")
        return rows
    return run
