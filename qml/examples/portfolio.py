"""Mean-variance portfolio selection as an Ising problem, solved with QAOA and by brute force.

Choose ``x`` in {0, 1}^n (buy asset i or not) minimising
``f(x) = q x^T S x - mu^T x + lam (sum_i x_i - B)^2``: risk (covariance ``S``,
risk aversion ``q``) minus expected return ``mu``, plus a penalty that enforces
a budget of exactly ``B`` assets. `qml.qaoa.qubo_hamiltonian` turns ``f`` into a
Z-only Hamiltonian (``x_i = (1 - Z_i)/2``), which is rescaled to unit largest
coefficient for QAOA. The final state is sampled (``--shots``) and the best
sampled portfolio is compared with the optimum found by enumerating all 2^n
portfolios. Returns and covariances are synthetic (seeded), from a
one-factor market model.

    python -m qml.examples.portfolio [--fast] [--assets N] [--depth P] [--out DIR]
"""

from __future__ import annotations

import numpy as np

from qml import qaoa

from . import _common


def market(n, rng):
    """Expected returns ``mu`` (n,) and covariance ``S`` (n, n) of a one-factor model."""
    beta = rng.uniform(0.5, 1.5, n)
    idio = rng.uniform(0.05, 0.15, n)
    S = 0.04 * np.outer(beta, beta) + np.diag(idio ** 2)
    mu = 0.02 + 0.06 * beta + rng.normal(0, 0.02, n)
    return mu, S


def main(argv=None):
    p = _common.parser(__doc__.splitlines()[0], steps=200, fast_steps=100)
    p.add_argument("--assets", type=int, default=None, help="number of assets (default 8; 5 with --fast)")
    p.add_argument("--depth", type=int, default=4, help="QAOA layers")
    p.add_argument("--risk", type=float, default=1.0, help="risk aversion q")
    p.add_argument("--shots", type=int, default=1000, help="samples drawn from the final QAOA state")
    args = p.parse_args(argv)
    n = args.assets or (5 if args.fast else 8)
    depth = args.depth
    budget = n // 2
    mu, S = market(n, np.random.default_rng(args.seed))
    lam = np.abs(mu).max() + args.risk * np.abs(S).sum(1).max()     # penalty >= any one-asset gain
    h = qaoa.qubo_hamiltonian(args.risk * S + lam * np.ones((n, n)), -mu - 2 * lam * budget, lam * budget ** 2)
    scale = float(np.abs(np.asarray(h.coeffs)[1:]).max())

    costs = qaoa.diagonal(h, n)                      # brute force, all 2^n portfolios
    bits = (np.arange(1 << n)[:, None] >> np.arange(n - 1, -1, -1)) & 1
    feasible = bits.sum(1) == budget
    optimum = int(np.argmin(np.where(feasible, costs, np.inf)))
    with _common.progress(_common.steps(args), args, "portfolio qaoa") as bar:
        res = qaoa.optimize((1 / scale) * h, n, depth, steps=_common.steps(args),
                            callback=lambda i, prm, e: bar.update())
    probs = np.asarray(res.probs, np.float64)
    most_likely = int(np.argmax(probs))
    samples = np.random.default_rng(args.seed).choice(1 << n, size=args.shots, p=probs / probs.sum())
    best_sampled = int(samples[np.argmin(costs[samples])])
    ranks = np.argsort(costs)

    plt = _common.pyplot()
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 4))
    top = ranks[:12]
    labels = ["".join(map(str, bits[i])) for i in top]
    ax0.bar(range(len(top)), probs[top], color=["tab:green" if i == optimum else "tab:purple" for i in top])
    ax0.axhline(1 / (1 << n), color="gray", ls="--", label="uniform")
    ax0.set_xticks(range(len(top)), labels, rotation=70, fontsize=7)
    ax0.set(title="QAOA probability of the 12 cheapest portfolios", ylabel="probability")
    ax0.legend()
    ax1.plot(res.history * scale)
    ax1.axhline(costs[optimum], color="tab:green", ls="--", label="optimum (brute force)")
    ax1.set(title=f"<f> during optimisation (p = {depth})", xlabel="step", ylabel="cost")
    ax1.legend()
    path = _common.save(fig, args, "portfolio")
    return _common.report("portfolio", {
        "assets": n, "budget": budget, "depth": depth,
        "optimum": "".join(map(str, bits[optimum])), "optimum_cost": float(costs[optimum]),
        "qaoa_most_likely": "".join(map(str, bits[most_likely])), "qaoa_most_likely_cost": float(costs[most_likely]),
        "best_sampled": "".join(map(str, bits[best_sampled])), "best_sampled_cost": float(costs[best_sampled]),
        "p_optimum": float(probs[optimum]), "p_optimum_uniform": 1 / (1 << n),
        "p_feasible": float(probs[feasible].sum()), "p_feasible_uniform": float(feasible.mean()),
        "plot": str(path)})


if __name__ == "__main__":
    main()
