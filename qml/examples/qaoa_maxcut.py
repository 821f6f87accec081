"""MaxCut with QAOA (`qml.qaoa`) on a random graph, compared with brute force.

A random graph (``--nodes`` vertices, each edge present with probability 0.5)
is cut by a depth-p QAOA whose angles are optimised with adam. The final state
is sampled; the best sampled cut and the most likely bitstring's cut are
compared with the maximum cut found by enumerating all 2^n partitions.

    python -m qml.examples.qaoa_maxcut [--fast] [--nodes N] [--depth P] [--out DIR]
"""

from __future__ import annotations

import numpy as np

from qml import qaoa

from . import _common


def random_graph(n, rng):
    """Edges of a connected-ish G(n, 1/2) graph (a ring is added so no vertex is isolated)."""
    edges = {(i, (i + 1) % n) for i in range(n)}
    edges |= {(i, j) for i in range(n) for j in range(i + 2, n) if rng.random() < 0.5 and (j, i) not in edges}
    return sorted((min(e), max(e)) for e in edges)


def main(argv=None):
    p = _common.parser(__doc__.splitlines()[0], steps=200, fast_steps=100)
    p.add_argument("--nodes", type=int, default=None, help="graph size (default 8; 6 with --fast)")
    p.add_argument("--depth", type=int, default=None, help="QAOA layers p (default 4; 3 with --fast)")
    p.add_argument("--shots", type=int, default=1000)
    args = p.parse_args(argv)
    n = args.nodes or (6 if args.fast else 8)
    depth = args.depth or (3 if args.fast else 4)
    edges = random_graph(n, np.random.default_rng(args.seed))
    h = qaoa.maxcut_hamiltonian(edges)
    cuts = qaoa.cut_values(edges, n)
    with _common.progress(_common.steps(args), args, "qaoa") as bar:
        res = qaoa.optimize(h, n, depth, steps=_common.steps(args),
                            callback=lambda i, prm, e: bar.update())
    probs = np.asarray(res.probs, np.float64)
    samples = np.random.default_rng(args.seed).choice(1 << n, size=args.shots, p=probs / probs.sum())
    best_sampled = float(cuts[samples].max())
    most_likely = int(np.argmax(probs))
    max_cut = float(cuts.max())

    plt = _common.pyplot()
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 4))
    angle = 2 * np.pi * np.arange(n) / n
    xy = np.stack([np.cos(angle), np.sin(angle)], 1)
    side = (most_likely >> (n - 1 - np.arange(n))) & 1
    for i, j in edges:
        cut = side[i] != side[j]
        ax0.plot(*xy[[i, j]].T, color="tab:red" if cut else "lightgray", lw=2 if cut else 1, zorder=0)
    ax0.scatter(*xy.T, c=side, cmap="coolwarm", s=300, edgecolors="k")
    for i in range(n):
        ax0.annotate(str(i), xy[i], ha="center", va="center")
    ax0.set(title=f"most likely cut {cuts[most_likely]:.0f} (max {max_cut:.0f})", aspect="equal")
    ax0.axis("off")
    values = np.unique(cuts)
    ax1.bar(values, [probs[cuts == v].sum() for v in values], color="tab:purple", label="QAOA")
    ax1.bar(values, [np.mean(cuts == v) for v in values], color="gray", alpha=0.5, label="uniform")
    ax1.set(title=f"probability of each cut value (p = {depth})", xlabel="cut value", ylabel="probability")
    ax1.legend()
    path = _common.save(fig, args, "qaoa_maxcut")
    return _common.report("qaoa_maxcut", {
        "nodes": n, "edges": len(edges), "depth": depth, "max_cut": max_cut,
        "best_sampled_cut": best_sampled, "most_likely_cut": float(cuts[most_likely]),
        "expected_cut": float(-res.energy), "approximation_ratio": float(-res.energy) / max_cut,
        "p_max_cut": float(probs[cuts == max_cut].sum()), "plot": str(path)})


if __name__ == "__main__":
    main()
