"""Sentence sentiment: hashed bag-of-words -> a few features -> quantum layer, against logistic regression.

The data set (160 short labelled sentences, ``data/sentences.tsv``) ships with
the package. Each sentence becomes a hashed bag-of-words vector (CRC32 of each
lower-case word modulo ``--buckets``, counts scaled by ``log1p``). The model
compresses it with ``Linear(buckets -> 3)``, ``tanh`` scaled to ``[-pi, pi]``,
runs a 3-qubit `qml.QuantumLayer` (angle embedding + strongly entangling
layers, ``<Z_i>``) and reads a logit with ``Linear(3 -> 1)``. The baseline is
scikit-learn's ``LogisticRegression`` on the same hashed features.

    python -m qml.examples.text [--fast] [--out DIR]
"""

from __future__ import annotations

import re
import zlib
from importlib import resources

import jax.numpy as jnp
import numpy as np
import optax
import qsim
from flax import nnx

import qml

from . import _common

N_QUBITS = 3


def load_sentences():
    """The shipped data set: (list of sentences, int labels ``(n,)``)."""
    text = resources.files("qml.examples").joinpath("data", "sentences.tsv").read_text(encoding="utf-8")
    rows = [line.split("\t", 1) for line in text.splitlines() if line and not line.startswith("#")][1:]
    return [s for _, s in rows], np.array([int(label) for label, _ in rows])


def hashed_bow(sentences, buckets):
    """``log1p`` word counts hashed into ``buckets`` bins, float32 ``(n, buckets)``."""
    X = np.zeros((len(sentences), buckets), np.float32)
    for i, s in enumerate(sentences):
        for word in re.findall(r"[a-z']+", s.lower()):
            X[i, zlib.crc32(word.encode()) % buckets] += 1
    return np.log1p(X)


def circuit(c, x, w):
    qml.templates.angle_embedding(c, x, rotation="Y")
    qml.templates.strongly_entangling(c, w["layers"])


class Model(nnx.Module):
    def __init__(self, buckets, *, rngs):
        self.compress = nnx.Linear(buckets, N_QUBITS, rngs=rngs)
        self.quantum = qml.QuantumLayer(circuit, N_QUBITS, {"layers": (2, N_QUBITS, 3)},
                                        [qsim.Z(i) for i in range(N_QUBITS)], rngs=rngs)
        self.readout = nnx.Linear(N_QUBITS, 1, rngs=rngs)

    def __call__(self, x):
        return self.readout(self.quantum(jnp.pi * jnp.tanh(self.compress(x))))[:, 0]


def main(argv=None):
    p = _common.parser(__doc__.splitlines()[0], steps=300, fast_steps=150)
    p.add_argument("--buckets", type=int, default=1024, help="hashed bag-of-words size (default 1024)")
    args = p.parse_args(argv)
    from sklearn.linear_model import LogisticRegression
    sentences, y = load_sentences()
    X = hashed_bow(sentences, args.buckets)
    Xtr, Xte, ytr, yte = _common.split(X, y, 0.25, args.seed)

    model = Model(args.buckets, rngs=nnx.Rngs(args.seed))

    def loss_fn(model, x, t):
        return jnp.mean(optax.sigmoid_binary_cross_entropy(model(x), t))

    history = _common.train(model, loss_fn, (jnp.asarray(Xtr), jnp.asarray(ytr, jnp.float32)),
                            _common.steps(args), 0.03, args, "text")
    logits = np.asarray(nnx.jit(lambda m, x: m(x))(model, jnp.asarray(np.concatenate([Xtr, Xte]))))
    q_train = _common.accuracy(logits[:len(Xtr)] > 0, ytr)
    q_test = _common.accuracy(logits[len(Xtr):] > 0, yte)
    baseline = LogisticRegression(max_iter=1000).fit(Xtr, ytr)
    lr_test = _common.accuracy(baseline.predict(Xte), yte)

    plt = _common.pyplot()
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(9, 3.5))
    ax0.plot(history)
    ax0.set(title="quantum model: training loss", xlabel="step", ylabel="BCE")
    ax1.bar(["quantum", "logistic regression"], [q_test, lr_test], color=["tab:purple", "tab:gray"])
    ax1.set(title=f"test accuracy ({len(yte)} sentences)", ylim=(0, 1))
    path = _common.save(fig, args, "text")
    return _common.report("text", {"quantum_train_accuracy": q_train, "quantum_test_accuracy": q_test,
                                   "logreg_test_accuracy": lr_test, "n_sentences": len(y), "plot": str(path)})


if __name__ == "__main__":
    main()
