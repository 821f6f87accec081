"""Two moons with a data re-uploading classifier (`qml.templates.data_reuploading`).

The two interleaving half circles are generated here with numpy (no
scikit-learn). Each point ``(x0, x1)``, standardised, is uploaded L times on
two qubits, alternating with trainable rotations and a CZ; the class is the
sign of ``<Z_0>``. Trained with binary cross-entropy on ``sigmoid(a <Z_0> + b)``
where ``a``, ``b`` are two classical parameters.

    python -m qml.examples.moons [--fast] [--out DIR]
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import optax
import qsim
from flax import nnx

import qml

from . import _common


def two_moons(n, noise, rng):
    """``n`` points (float32 ``(n, 2)``) and labels (``(n,)`` in {0, 1}) on two interleaved half circles."""
    n0 = n // 2
    t0, t1 = rng.uniform(0, np.pi, n0), rng.uniform(0, np.pi, n - n0)
    upper = np.stack([np.cos(t0), np.sin(t0)], 1)
    lower = np.stack([1 - np.cos(t1), 0.5 - np.sin(t1)], 1)
    X = np.concatenate([upper, lower]) + rng.normal(0, noise, (n, 2))
    return X.astype(np.float32), np.concatenate([np.zeros(n0, int), np.ones(n - n0, int)])


def circuit(c, x, w):
    qml.templates.data_reuploading(c, x, w["layers"], rotation="Y")


class Classifier(nnx.Module):
    """Re-uploading circuit -> ``<Z_0>`` -> logit ``a <Z_0> + b``."""

    def __init__(self, n_layers, *, rngs):
        self.quantum = qml.QuantumLayer(circuit, 2, {"layers": (n_layers, 2, 3)}, qsim.Z(0), rngs=rngs,
                                        n_inputs=2)
        self.scale = nnx.Param(jnp.array([3.0, 0.0]))

    def __call__(self, x):
        return self.scale[0] * self.quantum(x) + self.scale[1]


def main(argv=None):
    args = _common.parser(__doc__.splitlines()[0], steps=300, fast_steps=120).parse_args(argv)
    rng = np.random.default_rng(args.seed)
    X, y = two_moons(160 if args.fast else 400, 0.1, rng)
    mean, std = X.mean(0), X.std(0)
    X = (X - mean) / std
    Xtr, Xte, ytr, yte = _common.split(X, y, 0.25, args.seed)
    model = Classifier(3 if args.fast else 5, rngs=nnx.Rngs(args.seed))

    def loss_fn(model, x, t):
        return jnp.mean(optax.sigmoid_binary_cross_entropy(model(x), t))

    history = _common.train(model, loss_fn, (jnp.asarray(Xtr), jnp.asarray(ytr, jnp.float32)),
                            _common.steps(args), 0.05, args, "moons")
    g0 = g1 = np.linspace(-2.5, 2.5, 50, dtype=np.float32)
    grid = np.stack(np.meshgrid(g0, g1), -1).reshape(-1, 2)
    logits = np.asarray(nnx.jit(lambda m, x: m(x))(model, jnp.asarray(np.concatenate([Xtr, Xte, grid]))))
    train_acc = _common.accuracy(logits[:len(Xtr)] > 0, ytr)                  # one compiled call for all
    test_acc = _common.accuracy(logits[len(Xtr):len(Xtr) + len(Xte)] > 0, yte)
    z = 1 / (1 + np.exp(-logits[len(Xtr) + len(Xte):].reshape(50, 50)))

    plt = _common.pyplot()
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 4))
    ax0.contourf(g0, g1, z, levels=20, cmap="RdBu_r", alpha=0.8)
    ax0.scatter(Xtr[:, 0], Xtr[:, 1], c=ytr, cmap="bwr", edgecolors="k", s=20, label="train")
    ax0.scatter(Xte[:, 0], Xte[:, 1], c=yte, cmap="bwr", marker="^", edgecolors="k", s=30, label="test")
    ax0.set(title=f"data re-uploading, test accuracy {test_acc:.2f}", xlabel="x0 (standardised)", ylabel="x1")
    ax0.legend(loc="lower left")
    ax1.plot(history)
    ax1.set(title="training loss (BCE)", xlabel="step")
    path = _common.save(fig, args, "moons")
    return _common.report("moons", {"train_accuracy": train_acc, "test_accuracy": test_acc,
                                    "final_loss": float(history[-1]), "plot": str(path)})


if __name__ == "__main__":
    main()
