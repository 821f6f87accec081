"""Noise-aware training: the two-moons re-uploading classifier under depolarizing noise.

The classifier of `qml.examples.moons` (two qubits, data re-uploading, logit
``a <Z_0> + b``) is trained twice per noise strength p: without noise and then
evaluated on the noisy device (noise-unaware), and trained with the noise in the
loop (noise-aware: ``qml.QuantumLayer(..., noise=model)``, exact density matrices).
The noise model is ``qsim.NoiseModel().after("all", "depolarizing", p=p)``: a
depolarizing channel on every wire of every gate. Noise pulls ``<Z_0>`` towards 0,
so a noise-unaware model's logits shrink (its loss grows, its accuracy holds until
the signal drowns); the noise-aware model learns a larger scale ``a`` and keeps a
lower loss. One noise-aware model is also trained on sampled trajectories
(``noise_method="trajectories"``) to show the unbiased Monte-Carlo path. The plot
shows test accuracy and test loss against p.

    python -m qml.examples.noisy_classifier [--fast] [--out DIR]
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import optax
import qsim
from flax import nnx

import qml

from . import _common
from .moons import circuit, two_moons


class Classifier(nnx.Module):
    """Re-uploading circuit -> ``<Z_0>`` (under ``noise``, if any) -> logit ``a <Z_0> + b``."""

    def __init__(self, n_layers, *, rngs, noise=None, noise_method="density_matrix", trajectories=None):
        self.quantum = qml.QuantumLayer(circuit, 2, {"layers": (n_layers, 2, 3)}, qsim.Z(0), rngs=rngs, n_inputs=2,
                                        noise=noise, noise_method=noise_method, trajectories=trajectories)
        self.scale = nnx.Param(jnp.array([3.0, 0.0]))

    def __call__(self, x):
        return self.scale[0] * self.quantum(x) + self.scale[1]


def depolarizing(p):
    return qsim.NoiseModel().after("all", "depolarizing", p=p) if p > 0 else None


def bce(logits, labels):
    return float(jnp.mean(optax.sigmoid_binary_cross_entropy(logits, labels)))


def evaluate(model, n_layers, p, x, y, seed):
    """Test accuracy and loss of ``model``'s weights on the device with depolarizing strength ``p``."""
    device = Classifier(n_layers, rngs=nnx.Rngs(seed), noise=depolarizing(p))
    nnx.update(device, nnx.state(model, nnx.Param))
    logits = np.asarray(nnx.jit(lambda m, x: m(x))(device, jnp.asarray(x)))
    return _common.accuracy(logits > 0, y), bce(logits, jnp.asarray(y, jnp.float32))


def train(n_layers, data, steps, args, p, desc, **noise_options):
    model = Classifier(n_layers, rngs=nnx.Rngs(args.seed), noise=depolarizing(p), **noise_options)

    def loss_fn(model, x, t):
        return jnp.mean(optax.sigmoid_binary_cross_entropy(model(x), t))

    _common.train(model, loss_fn, data, steps, 0.05, args, desc)
    return model


def main(argv=None):
    args = _common.parser(__doc__.splitlines()[0], steps=300, fast_steps=100).parse_args(argv)
    rng = np.random.default_rng(args.seed)
    X, y = two_moons(120 if args.fast else 300, 0.1, rng)
    X = (X - X.mean(0)) / X.std(0)
    Xtr, Xte, ytr, yte = _common.split(X, y, 0.25, args.seed)
    data = (jnp.asarray(Xtr), jnp.asarray(ytr, jnp.float32))
    n_layers, steps = (3 if args.fast else 5), _common.steps(args)
    levels = (0.0, 0.05, 0.15) if args.fast else (0.0, 0.01, 0.03, 0.06, 0.1, 0.15, 0.2)

    clean = train(n_layers, data, steps, args, 0.0, "noiseless")
    unaware = [evaluate(clean, n_layers, p, Xte, yte, args.seed) for p in levels]
    aware = [unaware[0]] + [evaluate(train(n_layers, data, steps, args, p, f"p={p}"), n_layers, p, Xte, yte,
                                     args.seed) for p in levels[1:]]
    p_traj = levels[len(levels) // 2]
    sampled = train(n_layers, data, steps, args, p_traj, "trajectories", noise_method="trajectories",
                    trajectories=16 if args.fast else 64)
    traj_acc, traj_loss = evaluate(sampled, n_layers, p_traj, Xte, yte, args.seed)

    plt = _common.pyplot()
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 4))
    for curve, label in ((unaware, "trained noiseless, run noisy"), (aware, "trained under the noise")):
        ax0.plot(levels, [a for a, _ in curve], "o-", label=label)
        ax1.plot(levels, [lo for _, lo in curve], "o-", label=label)
    ax0.plot([p_traj], [traj_acc], "k*", ms=12, label="trained on trajectories")
    ax1.plot([p_traj], [traj_loss], "k*", ms=12, label="trained on trajectories")
    ax0.set(title="test accuracy vs depolarizing p", xlabel="p (after every gate, every wire)", ylabel="accuracy")
    ax1.set(title="test loss (BCE) vs depolarizing p", xlabel="p", ylabel="loss")
    ax0.legend(loc="lower left")
    path = _common.save(fig, args, "noisy_classifier")
    metrics = {f"unaware_accuracy_p={p}": a for p, (a, _) in zip(levels, unaware)}
    metrics.update({f"aware_accuracy_p={p}": a for p, (a, _) in zip(levels, aware)})
    metrics.update({f"unaware_loss_p={p}": lo for p, (_, lo) in zip(levels, unaware)})
    metrics.update({f"aware_loss_p={p}": lo for p, (_, lo) in zip(levels, aware)})
    metrics.update({"trajectories_p": p_traj, "trajectories_accuracy": traj_acc, "trajectories_loss": traj_loss,
                    "plot": str(path)})
    return _common.report("noisy_classifier", metrics)


if __name__ == "__main__":
    main()
