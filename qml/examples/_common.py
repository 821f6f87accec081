"""Shared plumbing for the examples: arguments, output folder, plots, progress, an NNX training loop.

scikit-learn, matplotlib and tqdm are the ``examples`` extra; they are imported
here lazily, only when an example runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx


def parser(description, steps=None, fast_steps=None):
    """An argparse parser with ``--fast``, ``--out``, ``--seed``, ``--no-progress`` (and ``--steps`` if given)."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--fast", action="store_true", help="small setting that runs in seconds (used by the tests)")
    if steps is not None:
        p.add_argument("--steps", type=int, default=None,
                       help=f"optimisation steps (default {steps}; {fast_steps} with --fast)")
    p.add_argument("--out", default="out", help="folder for the plot PNG (default ./out)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(default_steps=(steps, fast_steps))
    return p


def steps(args):
    return args.steps if args.steps is not None else args.default_steps[1 if args.fast else 0]


def pyplot():
    """matplotlib.pyplot on the non-interactive Agg backend."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save(fig, args, name):
    """Save ``fig`` as ``<out>/<name>.png`` and return the path."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.png"
    fig.savefig(path, dpi=100, bbox_inches="tight")
    pyplot().close(fig)
    return path


def progress(total, args, desc):
    """A tqdm progress bar (disabled by ``--no-progress``)."""
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, disable=args.no_progress, leave=False)


def report(name, metrics):
    """Print the final metrics, one per line, and return them."""
    print(f"[{name}]")
    for k, v in metrics.items():
        print(f"  {k}: {v:.6g}" if isinstance(v, float) else f"  {k}: {v}")
    return metrics


def train(model, loss_fn, data, n_steps, lr, args, desc, batch_size=None, seed=0):
    """Train an NNX model with ``nnx.Optimizer(model, optax.adam(lr), wrt=nnx.Param)``.

    ``loss_fn(model, *batch)`` returns a scalar; ``data`` is a tuple of arrays with a
    shared leading axis, used whole or in random minibatches of ``batch_size``.
    Returns the loss history, numpy ``(n_steps,)``.
    """
    optimizer = nnx.Optimizer(model, optax.adam(lr), wrt=nnx.Param)

    @nnx.jit
    def step(model, optimizer, *batch):
        loss, grads = nnx.value_and_grad(loss_fn)(model, *batch)
        optimizer.update(model, grads)
        return loss

    n = data[0].shape[0]
    rng = np.random.default_rng(seed)
    history = []
    with progress(n_steps, args, desc) as bar:
        for _ in range(n_steps):
            idx = rng.choice(n, batch_size, replace=False) if batch_size and batch_size < n else slice(None)
            history.append(step(model, optimizer, *(d[idx] for d in data)))
            bar.update()
            if len(history) % 10 == 0:
                bar.set_postfix(loss=float(history[-1]))
    return np.asarray(jnp.stack(history))


def accuracy(pred, labels):
    return float(np.mean(np.asarray(pred) == np.asarray(labels)))


def softmax_xent(logits, labels):
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels))


def split(X, y, test_fraction, seed):
    """Shuffled train/test split (numpy)."""
    idx = np.random.default_rng(seed).permutation(len(X))
    n_test = int(round(test_fraction * len(X)))
    return X[idx[n_test:]], X[idx[:n_test]], y[idx[n_test:]], y[idx[:n_test]]


def n_params(model):
    return int(sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param))))
