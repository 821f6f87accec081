"""Suite ``compile``: jit compile time against depth, with `repeat` and unrolled.

For the HEA (see `gradients`) at n=12, ``jax.jit(f).lower(w).compile()`` is
timed for the forward pass and for value-and-grad with backprop and adjoint,
the layers written once with ``c.repeat(layer, weights)`` (L = 10, 50, 100,
200), and, for contrast, unrolled (a Python loop over the layers) at small L.
``ratio`` is the compile time over that of the smallest L of the same variant:
with `repeat` it should stay near 1 whatever the depth.
"""

from __future__ import annotations

from ..context import SHORT_DTYPE, Case, row
from ..timing import compile_jit
from ..workloads import hea_layer, hea_weights, n_gates_hea

QUICK_QUBITS, FULL_QUBITS = (12,), (12,)
QUICK_DEPTHS, FULL_DEPTHS = (10, 200), (10, 50, 100, 200)
QUICK_UNROLLED, FULL_UNROLLED = (1, 3), (2, 5, 10)
MODES = ("forward", "backprop", "adjoint")


def variants(cfg):
    """``(mode, written, layers)``: every mode with repeat; unrolled forward (every mode with --full)."""
    depths = cfg.depth_grid(QUICK_DEPTHS, FULL_DEPTHS)
    unrolled = [d for d in cfg.depth_grid(QUICK_UNROLLED, FULL_UNROLLED) if d <= FULL_UNROLLED[-1]]
    out = [(mode, "repeat", d) for mode in MODES for d in depths]
    modes = MODES if cfg.full else ("forward",)
    return out + [(mode, "unrolled", d) for mode in modes for d in unrolled]


def cases(cfg) -> list[Case]:
    out = []
    for dtype in cfg.dtype_list():
        for n in cfg.grid(QUICK_QUBITS, FULL_QUBITS):
            for mode, written, layers in variants(cfg):
                name = f"{mode} {written} n={n} L={layers} {SHORT_DTYPE[dtype]}"
                out.append(Case("compile", name, _case_fn(cfg, name, n, layers, mode, written, dtype)))
    return out


def hea_cost(n: int, mode: str, written: str, dtype: str):
    """``w (L, n, 2) -> sum_i <Z_i>`` (forward) or its value-and-grad (backprop/adjoint)."""
    import jax
    import qsim

    obs = qsim.PauliSum.from_string(" + ".join(f"Z{i}" for i in range(n)))
    diff = "backprop" if mode == "forward" else mode

    def cost(w):
        c = qsim.Circuit(n, dtype=dtype)
        if written == "repeat":
            c.repeat(hea_layer, w)
        else:
            for layer in range(w.shape[0]):
                hea_layer(c, w[layer])
        return c.expectation(obs, diff=diff)
    return cost if mode == "forward" else jax.value_and_grad(cost)


def _case_fn(cfg, name, n, layers, mode, written, dtype):
    def run():
        import jax.numpy as jnp

        w = jnp.asarray(hea_weights(n, layers), jnp.finfo(dtype).dtype)
        _, times = compile_jit(hea_cost(n, mode, written, dtype), w)
        return [row("compile", name, "qsim", n=n, depth=layers, dtype=dtype, mode=mode, written=written,
                    gates=n_gates_hea(n, layers), **times)]
    return run


def add_ratios(rows) -> None:
    """``ratio``: compile time over that of the smallest depth of the same (mode, written, n, dtype)."""
    groups = {}
    for r in rows:
        if r.get("suite") == "compile" and r.get("compile_s"):
            groups.setdefault((r["mode"], r["written"], r["n"], r["dtype"]), []).append(r)
    for group in groups.values():
        first = min(group, key=lambda r: r["depth"])
        for r in group:
            r["ratio"] = r["compile_s"] / first["compile_s"]
