"""PNG plots of the result rows (matplotlib, Agg backend).

Each function draws one figure from the rows it understands and returns False
when there is nothing to draw: time vs qubits for one gate (log scale, the
bandwidth floor drawn), time vs qubits for whole circuits, peak memory vs
depth for gradients, compile time vs depth, training step time vs qubits.
"""

from __future__ import annotations

import numpy as np

DASH = {"complex64": "-", "complex128": "--"}
IMPLS = ("qsim", "qsim unfused", "qulacs", "lightning", "aer", "tensorcircuit", "qujax")


def color(impl: str) -> str:
    """One colour per implementation, the same in every plot."""
    return f"C{IMPLS.index(impl) if impl in IMPLS else len(IMPLS)}"


def _depth_ticks(ax, rows, key="depth"):
    """Plain tick labels at the measured depths of a log x axis."""
    from matplotlib.ticker import NullFormatter

    ticks = sorted({r[key] for r in rows if r.get(key) is not None})
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.xaxis.set_minor_formatter(NullFormatter())


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _series(rows, key, x, y):
    """``{key(row): sorted [(x, y)]}`` over rows with both values."""
    out = {}
    for r in rows:
        if r.get(x) is not None and r.get(y) is not None:
            out.setdefault(key(r), []).append((r[x], r[y]))
    return {k: sorted(v) for k, v in out.items()}


def _floor_line(ax, rows, bandwidth, passes=lambda r: 1):
    """The floor: ``passes * 2 * 2**n * itemsize / bandwidth`` per dtype, in black."""
    if bandwidth is None:
        return
    for dtype, style in DASH.items():
        pts = sorted({(r["n"], passes(r)) for r in rows if r.get("dtype") == dtype})
        if pts:
            ns = [n for n, _ in pts]
            ys = [p * bandwidth.floor_s(n, np.dtype(dtype).itemsize) for n, p in pts]
            ax.plot(ns, ys, style, color="black", lw=2, label=f"floor {dtype}")


def _save(fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    _pyplot().close(fig)
    return True


def _panels(plt, keys, title):
    fig, axes = plt.subplots(1, len(keys), figsize=(4.5 * len(keys), 4), squeeze=False)
    fig.suptitle(title)
    return fig, dict(zip(keys, axes[0]))


def gates_plot(rows, path, bandwidth) -> bool:
    """Median time of one gate (middle wire) vs qubits, per gate kind, with the floor."""
    rows = [r for r in rows if r["suite"] == "gates" and r.get("wire") == "mid" and r.get("time_s")]
    if not rows:
        return False
    plt = _pyplot()
    fig, axes = _panels(plt, list(dict.fromkeys(r["gate"] for r in rows)), "one gate, middle wire")
    for gate, ax in axes.items():
        sub = [r for r in rows if r["gate"] == gate]
        for (impl, dtype), pts in _series(sub, lambda r: (r["impl"], r["dtype"]), "n", "time_s").items():
            ax.plot(*zip(*pts), DASH[dtype], marker="o", color=color(impl), label=f"{impl} {dtype}")
        _floor_line(ax, sub, bandwidth)
        ax.set(title=gate, xlabel="qubits", ylabel="time (s)", yscale="log")
        ax.legend(fontsize=6)
    return _save(fig, path)


def circuits_plot(rows, path, bandwidth) -> bool:
    """Median run time vs qubits per circuit family, with the per-gate floor (gates x one pass)."""
    rows = [r for r in rows if r["suite"] == "circuits" and r.get("time_s")]
    if not rows:
        return False
    plt = _pyplot()
    fig, axes = _panels(plt, list(dict.fromkeys((r["family"], r["depth"]) for r in rows)), "whole circuits")
    for (family, depth), ax in axes.items():
        sub = [r for r in rows if (r["family"], r["depth"]) == (family, depth)]
        for (impl, dtype), pts in _series(sub, lambda r: (r["impl"], r["dtype"]), "n", "time_s").items():
            ax.plot(*zip(*pts), DASH[dtype], marker="o", color=color(impl), label=f"{impl} {dtype}")
        _floor_line(ax, sub, bandwidth, passes=lambda r: r["gates"])
        ax.set(title=f"{family} L={depth}", xlabel="qubits", ylabel="time (s)", yscale="log")
        ax.legend(fontsize=6)
    return _save(fig, path)


def memory_plot(rows, path, bandwidth) -> bool:
    """Peak resident memory vs depth for value-and-grad, per (impl, diff, n)."""
    rows = [r for r in rows if r["suite"] == "gradients" and r.get("peak_rss_mib")]
    if not rows:
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    key = lambda r: f"{r['impl']} {r['diff']} n={r['n']}"
    for label, pts in _series(rows, key, "depth", "peak_rss_mib").items():
        ax.plot(*zip(*pts), marker="o", label=label)
    base = [r["baseline_mib"] for r in rows if r.get("baseline_mib")]
    if base:
        ax.axhline(base[0], color="black", lw=1, ls=":", label="import jax + qsim")
    ax.set(title="value-and-grad peak memory (fresh process)", xlabel="layers L", ylabel="peak RSS (MiB)",
           xscale="log")
    _depth_ticks(ax, rows)
    ax.legend(fontsize=6)
    return _save(fig, path)


def compile_plot(rows, path, bandwidth) -> bool:
    """jit compile time vs depth, per (mode, repeat/unrolled)."""
    rows = [r for r in rows if r["suite"] == "compile" and r.get("compile_s")]
    if not rows:
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    key = lambda r: f"{r['mode']} {r['written']} n={r['n']}"
    for label, pts in _series(rows, key, "depth", "compile_s").items():
        ax.plot(*zip(*pts), ls="-" if "repeat" in label else ":", marker="o", label=label)
    ax.set(title="jit compile time", xlabel="layers L", ylabel="compile (s)", xscale="log")
    _depth_ticks(ax, rows)
    ax.legend(fontsize=6)
    return _save(fig, path)


def train_plot(rows, path, bandwidth) -> bool:
    """Training step: median step time (top) and first-call compile time (bottom) vs qubits, per
    library and formulation, one column per batch size."""
    rows = [r for r in rows if r["suite"] == "train" and r.get("mode") == "step" and r.get("time_s")]
    if not rows:
        return False
    plt = _pyplot()
    batches = sorted({r["batch"] for r in rows})
    impls = list(dict.fromkeys(r["impl"] for r in rows))
    fig, axes = plt.subplots(2, len(batches), figsize=(5 * len(batches), 7.5), squeeze=False)
    depths = "/".join(str(d) for d in sorted({r["depth"] for r in rows}))
    fig.suptitle(f"training step (value and grad), L={depths}")
    for col, batch in enumerate(batches):
        sub = [r for r in rows if r["batch"] == batch]
        for top, key, label in ((0, "time_s", "step time (s)"), (1, "compile_s", "first call (s)")):
            ax = axes[top][col]
            for impl, pts in _series(sub, lambda r: r["impl"], "n", key).items():
                i = impls.index(impl)   # colour and marker: the same impl looks the same in every panel
                ax.plot(*zip(*pts), "--" if "adjoint" in impl else "-", marker="os^"[i // 10 % 3],
                        color=f"C{i % 10}", label=impl)
            ax.set(title=f"batch {batch}", xlabel="qubits", ylabel=label, yscale="log",
                   xticks=sorted({r["n"] for r in rows}))
            ax.legend(fontsize=6)
    return _save(fig, path)


PLOTS = {"gates": gates_plot, "circuits": circuits_plot, "memory": memory_plot, "compile": compile_plot,
         "train": train_plot}
