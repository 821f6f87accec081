"""XOR with a two-qubit quantum neural network (`qml.QuantumLayer` trained with nnx.Optimizer + optax).

Inputs ``x`` in {0, 1}^2 are angle-encoded as ``ry(pi x_i)``, followed by two
strongly entangling layers; the output is ``<Z_1>`` in [-1, 1] and the label is
``<Z_1> < 0``. XOR is not linearly separable, so it needs the entangling gates.
Training uses the four corners plus noisy copies of them.

    python -m qml.examples.xor [--fast] [--out DIR]
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import qsim
from flax import nnx

import qml

from . import _common


def circuit(c, x, w):
    qml.templates.angle_embedding(c, jnp.pi * x, rotation="Y")
    qml.templates.strongly_entangling(c, w["layers"])


def main(argv=None):
    args = _common.parser(__doc__.splitlines()[0], steps=150, fast_steps=80).parse_args(argv)
    rng = np.random.default_rng(args.seed)
    corners = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
    labels = np.array([0, 1, 1, 0])
    noisy = np.repeat(corners, 8, axis=0) + rng.normal(0, 0.1, (32, 2)).astype(np.float32)
    X, y = np.concatenate([corners, noisy]), np.concatenate([labels, np.repeat(labels, 8)])
    target = 1.0 - 2.0 * y                                  # label 0 -> +1, label 1 -> -1

    model = qml.QuantumLayer(circuit, 2, {"layers": (2, 2, 3)}, qsim.Z(1), rngs=nnx.Rngs(args.seed), n_inputs=2)

    def loss_fn(model, x, t):
        return jnp.mean((model(x) - t) ** 2)

    history = _common.train(model, loss_fn, (jnp.asarray(X), jnp.asarray(target, jnp.float32)),
                            _common.steps(args), 0.1, args, "xor")
    g = np.linspace(-0.25, 1.25, 41, dtype=np.float32)
    grid = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    values = np.asarray(nnx.jit(lambda m, x: m(x))(model, jnp.asarray(np.concatenate([corners, grid]))))
    out, z = values[:4], values[4:].reshape(41, 41)           # one compiled call for both
    acc = _common.accuracy(out < 0, labels)

    plt = _common.pyplot()
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    im = ax0.contourf(g, g, z, levels=20, cmap="RdBu")
    ax0.scatter(corners[:, 0], corners[:, 1], c=labels, cmap="bwr", edgecolors="k", s=120)   # 0: blue (+1)
    fig.colorbar(im, ax=ax0, label="<Z_1>")
    ax0.set(title=f"XOR, accuracy {acc:.2f}", xlabel="x0", ylabel="x1")
    ax1.semilogy(history)
    ax1.set(title="training loss (MSE)", xlabel="step")
    path = _common.save(fig, args, "xor")
    return _common.report("xor", {"accuracy": acc, "final_loss": float(history[-1]),
                                  "outputs": np.round(out, 3).tolist(), "plot": str(path)})


if __name__ == "__main__":
    main()
