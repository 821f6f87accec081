"""Handwritten digits (scikit-learn's 8x8 ``load_digits``): hybrid classical -> quantum -> classical model.

Hybrid: ``Linear(64 -> 4)``, ``tanh`` scaled to ``[-pi, pi]``, a 4-qubit
`qml.QuantumLayer` (angle embedding + strongly entangling layers, ``<Z_i>``
for i = 0..3), ``Linear(4 -> 10)``. Baseline: a classical MLP
``Linear(64 -> h) -> relu -> Linear(h -> 10)`` with h chosen so that it has
at least as many parameters. Both are trained the same way; test accuracies
are reported.

    python -m qml.examples.digits [--fast] [--out DIR]
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import qsim
from flax import nnx

import qml

from . import _common

N_QUBITS = 4


def circuit(c, x, w):
    qml.templates.angle_embedding(c, x, rotation="Y")
    qml.templates.strongly_entangling(c, w["layers"])


class Hybrid(nnx.Module):
    def __init__(self, n_layers, *, rngs):
        self.encode = nnx.Linear(64, N_QUBITS, rngs=rngs)
        self.quantum = qml.QuantumLayer(circuit, N_QUBITS, {"layers": (n_layers, N_QUBITS, 3)},
                                        [qsim.Z(i) for i in range(N_QUBITS)], rngs=rngs)
        self.decode = nnx.Linear(N_QUBITS, 10, rngs=rngs)

    def __call__(self, x):
        return self.decode(self.quantum(jnp.pi * jnp.tanh(self.encode(x))))


class Classical(nnx.Module):
    def __init__(self, hidden, *, rngs):
        self.hidden = nnx.Linear(64, hidden, rngs=rngs)
        self.out = nnx.Linear(hidden, 10, rngs=rngs)

    def __call__(self, x):
        return self.out(nnx.relu(self.hidden(x)))


def main(argv=None):
    args = _common.parser(__doc__.splitlines()[0], steps=400, fast_steps=150).parse_args(argv)
    from sklearn.datasets import load_digits
    data = load_digits()
    X, y = (data.data / 16.0).astype(np.float32), data.target
    Xtr, Xte, ytr, yte = _common.split(X, y, 0.25, args.seed)
    hybrid = Hybrid(2, rngs=nnx.Rngs(args.seed))
    budget = _common.n_params(hybrid)
    hidden = int(np.ceil((budget - 10) / 75))                 # 64h + h + 10h + 10 >= budget
    classical = Classical(hidden, rngs=nnx.Rngs(args.seed))

    def loss_fn(model, x, labels):
        return _common.softmax_xent(model(x), labels)

    data_tr, n_steps, results, histories = (jnp.asarray(Xtr), jnp.asarray(ytr)), _common.steps(args), {}, {}
    for name, model in (("hybrid", hybrid), ("classical", classical)):
        histories[name] = _common.train(model, loss_fn, data_tr, n_steps, 0.02, args, name, batch_size=256,
                                        seed=args.seed)
        logits = nnx.jit(lambda m, x: m(x))(model, jnp.asarray(Xte))
        results[name] = _common.accuracy(np.argmax(np.asarray(logits), 1), yte)

    plt = _common.pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, h in histories.items():
        ax.plot(h, label=f"{name} ({_common.n_params(hybrid if name == 'hybrid' else classical)} params, "
                         f"test acc {results[name]:.3f})")
    ax.set(title="digits: training loss", xlabel="step", ylabel="cross-entropy", yscale="log")
    ax.legend()
    path = _common.save(fig, args, "digits")
    return _common.report("digits", {"hybrid_test_accuracy": results["hybrid"],
                                     "classical_test_accuracy": results["classical"],
                                     "hybrid_params": budget, "classical_params": _common.n_params(classical),
                                     "plot": str(path)})


if __name__ == "__main__":
    main()
