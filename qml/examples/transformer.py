"""Sentence sentiment with a small transformer whose classification head is a quantum circuit.

The shipped sentences (``data/sentences.tsv``, see `qml.examples.text`) are split into lower-case
words; the vocabulary is the training split's words (others map to ``<unk>``), each sentence padded
to `MAX_LEN` tokens. The encoder: token embedding + learned positional embedding, ``--blocks``
pre-norm blocks (``nnx.MultiHeadAttention`` over the non-padding tokens, then a GELU MLP, each with
a residual), mean-pooled over the non-padding tokens to ``(batch, d_model)``.

Two heads on the same encoder (same initial weights):
- quantum: ``Linear(d_model -> n_qubits)``, ``pi * tanh``, a `qml.QuantumLayer` (angle embedding on
  RY, ``--layers`` strongly entangling layers, ``<Z_i>`` for every wire), ``Linear(n_qubits -> 2)``;
- classical: ``Linear(d_model -> h) -> tanh -> Linear(h -> 2)``, h chosen so that its parameter
  count is the nearest to the quantum head's (both printed).
Both are trained end to end with ``nnx.Optimizer(model, optax.adam(lr), wrt=nnx.Param)`` on random
minibatches; the first step's time (it compiles) and the median of the others are reported with
the test accuracy. With PennyLane installed (and no ``--no-pennylane``), the quantum model is also
stepped with its circuit computed by PennyLane's ``default.qubit`` (``interface="jax"``,
backprop, broadcasting over the batch) in place of qsim, from the same weights: its logits are
compared with qsim's and its step timed (``--pennylane-steps`` steps; it is not trained to the end).

    python -m qml.examples.transformer [--fast] [--out DIR] [--no-pennylane]
"""

from __future__ import annotations

import functools
import re
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import qsim
from flax import nnx

import qml

from . import _common
from .text import load_sentences

MAX_LEN = 12            # the longest shipped sentence has 10 words
PAD, UNK = 0, 1
N_CLASSES = 2


# -- data -----------------------------------------------------------------------------------------

def words(sentence):
    return re.findall(r"[a-z']+", sentence.lower())


def build_vocab(sentences):
    """``word -> id`` over ``sentences`` (ids from 2, most frequent first; 0 is padding, 1 unknown)."""
    counts = {}
    for s in sentences:
        for w in words(s):
            counts[w] = counts.get(w, 0) + 1
    ranked = sorted(counts, key=lambda w: (-counts[w], w))
    return {w: i + 2 for i, w in enumerate(ranked)}


def encode(sentences, vocab, max_len=MAX_LEN):
    """Token ids, int32 ``(n, max_len)``, padded with `PAD` (longer sentences cut)."""
    out = np.full((len(sentences), max_len), PAD, np.int32)
    for i, s in enumerate(sentences):
        ids = [vocab.get(w, UNK) for w in words(s)][:max_len]
        out[i, :len(ids)] = ids
    return out


# -- model ----------------------------------------------------------------------------------------

class Block(nnx.Module):
    """Pre-norm transformer block: ``h + attn(norm(h))``, then ``h + mlp(norm(h))``."""

    def __init__(self, d_model, n_heads, *, rngs):
        self.norm1 = nnx.LayerNorm(d_model, rngs=rngs)
        self.attn = nnx.MultiHeadAttention(n_heads, d_model, decode=False, rngs=rngs)
        self.norm2 = nnx.LayerNorm(d_model, rngs=rngs)
        self.up = nnx.Linear(d_model, 2 * d_model, rngs=rngs)
        self.down = nnx.Linear(2 * d_model, d_model, rngs=rngs)

    def __call__(self, h, mask):
        h = h + self.attn(self.norm1(h), mask=mask)
        return h + self.down(nnx.gelu(self.up(self.norm2(h))))


class Encoder(nnx.Module):
    """Token ids ``(batch, MAX_LEN)`` -> mean of the non-padding token states, ``(batch, d_model)``."""

    def __init__(self, vocab_size, d_model, n_heads, n_blocks, *, rngs):
        self.tokens = nnx.Embed(vocab_size, d_model, rngs=rngs)
        self.positions = nnx.Embed(MAX_LEN, d_model, rngs=rngs)
        self.blocks = nnx.List([Block(d_model, n_heads, rngs=rngs) for _ in range(n_blocks)])
        self.norm = nnx.LayerNorm(d_model, rngs=rngs)

    def __call__(self, ids):
        keep = ids != PAD
        h = self.tokens(ids) + self.positions(jnp.arange(ids.shape[-1]))
        mask = nnx.make_attention_mask(keep, keep)
        for block in self.blocks:
            h = block(h, mask)
        h = self.norm(h)
        w = keep[..., None].astype(h.dtype)
        return jnp.sum(h * w, axis=-2) / jnp.maximum(jnp.sum(w, axis=-2), 1.0)


def head_circuit(c, x, w):
    """The quantum head's circuit for one sample: RY angle embedding, strongly entangling layers."""
    qml.templates.angle_embedding(c, x, rotation="Y")
    qml.templates.strongly_entangling(c, w["layers"])


class QuantumHead(nnx.Module):
    """``Linear(d -> n)``, ``pi * tanh``, the circuit's ``<Z_i>`` (qsim), ``Linear(n -> 2)``."""

    def __init__(self, d_model, n_qubits, n_layers, *, rngs):
        self.project = nnx.Linear(d_model, n_qubits, rngs=rngs)
        self.quantum = qml.QuantumLayer(head_circuit, n_qubits, {"layers": (n_layers, n_qubits, 3)},
                                        [qsim.Z(i) for i in range(n_qubits)], rngs=rngs)
        self.readout = nnx.Linear(n_qubits, N_CLASSES, rngs=rngs)

    def angles(self, h):
        """The circuit's input angles, ``(batch, n_qubits)`` in ``(-pi, pi)``."""
        return jnp.pi * jnp.tanh(self.project(h))

    def expectations(self, h):
        return self.quantum(self.angles(h))

    def __call__(self, h):
        return self.readout(self.expectations(h))


@functools.lru_cache(maxsize=None)
def pennylane_circuit(n_qubits):
    """The head's circuit on PennyLane ``default.qubit``: ``(x (B, n), w (L, n, 3)) -> (B, n)``."""
    import pennylane

    @pennylane.qnode(pennylane.device("default.qubit", wires=n_qubits), interface="jax", diff_method="backprop")
    def circuit(x, w):
        pennylane.AngleEmbedding(x, wires=range(n_qubits), rotation="Y")
        pennylane.StronglyEntanglingLayers(w, wires=range(n_qubits))
        return [pennylane.expval(pennylane.Z(i)) for i in range(n_qubits)]

    return lambda x, w: jnp.stack(circuit(x, w), axis=-1).reshape(x.shape[0], n_qubits)


class PennyLaneHead(QuantumHead):
    """`QuantumHead` with the circuit computed by PennyLane (same weights, same numbers)."""

    def expectations(self, h):
        w = self.quantum.weights["layers"][...]
        out = pennylane_circuit(w.shape[1])(self.angles(h), w)
        return out.astype(h.dtype)


class ClassicalHead(nnx.Module):
    """``Linear(d -> hidden) -> tanh -> Linear(hidden -> 2)``."""

    def __init__(self, d_model, hidden, *, rngs):
        self.hidden = nnx.Linear(d_model, hidden, rngs=rngs)
        self.out = nnx.Linear(hidden, N_CLASSES, rngs=rngs)

    def __call__(self, h):
        return self.out(jnp.tanh(self.hidden(h)))


def matching_hidden(d_model, budget):
    """The hidden width whose `ClassicalHead` has the parameter count nearest ``budget``."""
    count = lambda h: d_model * h + h + h * N_CLASSES + N_CLASSES  # noqa: E731
    return min(range(1, budget + 1), key=lambda h: (abs(count(h) - budget), h))


class Classifier(nnx.Module):
    """Encoder, then a head: token ids ``(batch, MAX_LEN)`` -> logits ``(batch, 2)``."""

    def __init__(self, encoder, head):
        self.encoder = encoder
        self.head = head

    def __call__(self, ids):
        return self.head(self.encoder(ids))


def build(kind, vocab_size, args, seed):
    """A `Classifier` with a ``"quantum"``, ``"pennylane"`` or ``"classical"`` head; the encoder's
    weights depend on ``seed`` only (the same in every kind), and so do the quantum heads'."""
    encoder = Encoder(vocab_size, args.d_model, args.heads, args.blocks, rngs=nnx.Rngs(seed))
    rngs = nnx.Rngs(seed + 1)
    if kind == "classical":
        budget = _common.n_params(QuantumHead(args.d_model, args.qubits, args.layers, rngs=nnx.Rngs(0)))
        return Classifier(encoder, ClassicalHead(args.d_model, matching_hidden(args.d_model, budget), rngs=rngs))
    head = PennyLaneHead if kind == "pennylane" else QuantumHead
    return Classifier(encoder, head(args.d_model, args.qubits, args.layers, rngs=rngs))


# -- training -------------------------------------------------------------------------------------

def loss_fn(model, ids, labels):
    return _common.softmax_xent(model(ids), labels)


def fit(model, ids, labels, n_steps, args, desc):
    """Adam on random minibatches; returns ``(loss history, {"compile_s", "step_ms"})``: the first
    step's time (it traces and compiles) and the median of the others (each blocked)."""
    optimizer = nnx.Optimizer(model, optax.adam(args.lr), wrt=nnx.Param)

    @nnx.jit
    def step(model, optimizer, ids, labels):
        loss, grads = nnx.value_and_grad(loss_fn)(model, ids, labels)
        optimizer.update(model, grads)
        return loss

    rng = np.random.default_rng(args.seed)
    batch = min(args.batch_size, len(ids))
    history, times = [], []
    with _common.progress(n_steps, args, desc) as bar:
        for _ in range(n_steps):
            idx = rng.choice(len(ids), batch, replace=False)
            t0 = time.perf_counter()
            loss = jax.block_until_ready(step(model, optimizer, ids[idx], labels[idx]))
            times.append(time.perf_counter() - t0)
            history.append(float(loss))
            bar.update()
    step_ms = 1e3 * float(np.median(times[1:])) if len(times) > 1 else float("nan")
    return np.asarray(history), {"compile_s": times[0], "step_ms": step_ms}


def logits_of(model, ids):
    return np.asarray(nnx.jit(lambda m, x: m(x))(model, ids))


def pennylane_run(vocab_size, args, ids, labels, test_ids, reference_logits):
    """The quantum model with PennyLane's circuit: max |logits - qsim's| at the start, step timings."""
    try:
        import pennylane  # noqa: F401
    except ImportError:
        return {}
    model = build("pennylane", vocab_size, args, args.seed)
    with warnings.catch_warnings():   # default.qubit asks for complex128: complex64 without x64, as meant
        warnings.filterwarnings("ignore", "Explicitly requested dtype complex128", UserWarning)
        diff = float(np.max(np.abs(logits_of(model, test_ids) - reference_logits)))
        _, timing = fit(model, ids, labels, args.pennylane_steps, args, "pennylane head")
    return {"pennylane_max_abs_logit_diff": diff, "pennylane_compile_s": timing["compile_s"],
            "pennylane_step_ms": timing["step_ms"]}


def parser():
    p = _common.parser(__doc__.splitlines()[0], steps=200, fast_steps=40)
    p.add_argument("--qubits", type=int, default=4, help="qubits of the quantum head (default 4)")
    p.add_argument("--layers", type=int, default=2, help="strongly entangling layers (default 2)")
    p.add_argument("--d-model", type=int, default=None, help="model width (default 16; 8 with --fast)")
    p.add_argument("--heads", type=int, default=2, help="attention heads (default 2)")
    p.add_argument("--blocks", type=int, default=None, help="transformer blocks (default 2; 1 with --fast)")
    p.add_argument("--batch-size", type=int, default=32, help="minibatch size (default 32)")
    p.add_argument("--lr", type=float, default=0.01, help="Adam learning rate (default 0.01)")
    p.add_argument("--no-pennylane", action="store_true", help="skip the PennyLane default.qubit head")
    p.add_argument("--pennylane-steps", type=int, default=None,
                   help="steps timed with the PennyLane head (default 30; 5 with --fast)")
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    args.d_model = args.d_model or (8 if args.fast else 16)
    args.blocks = args.blocks or (1 if args.fast else 2)
    args.pennylane_steps = args.pennylane_steps or (5 if args.fast else 30)
    sentences, y = load_sentences()
    order = np.random.default_rng(args.seed).permutation(len(y))
    n_test = len(y) // 4
    train_idx, test_idx = order[n_test:], order[:n_test]
    vocab = build_vocab([sentences[i] for i in train_idx])
    X = encode(sentences, vocab)
    ids, labels = jnp.asarray(X[train_idx]), jnp.asarray(y[train_idx])
    test_ids, test_labels = jnp.asarray(X[test_idx]), y[test_idx]
    vocab_size = len(vocab) + 2

    metrics, histories = {}, {}
    for kind in ("quantum", "classical"):
        model = build(kind, vocab_size, args, args.seed)
        if kind == "quantum":
            start_logits = logits_of(model, test_ids)
        histories[kind], timing = fit(model, ids, labels, _common.steps(args), args, f"{kind} head")
        train_accuracy = _common.accuracy(np.argmax(logits_of(model, ids), -1), np.asarray(labels))
        accuracy = _common.accuracy(np.argmax(logits_of(model, test_ids), -1), test_labels)
        metrics.update({f"{kind}_train_accuracy": train_accuracy, f"{kind}_test_accuracy": accuracy,
                        f"{kind}_final_loss": float(np.mean(histories[kind][-10:])),
                        f"{kind}_head_params": _common.n_params(model.head),
                        f"{kind}_model_params": _common.n_params(model),
                        f"{kind}_compile_s": timing["compile_s"], f"{kind}_step_ms": timing["step_ms"]})
    if not args.no_pennylane:
        metrics.update(pennylane_run(vocab_size, args, ids, labels, test_ids, start_logits))
    metrics["vocabulary"] = vocab_size

    plt = _common.pyplot()
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 3.8))
    for kind, h in histories.items():
        ax0.plot(h, label=f"{kind} head ({metrics[f'{kind}_head_params']} head params)")
    ax0.set(title="transformer: training loss", xlabel="step", ylabel="cross-entropy")
    ax0.legend()
    accuracies = [metrics["quantum_test_accuracy"], metrics["classical_test_accuracy"]]
    ax1.bar(["quantum head", "classical head"], accuracies, color=["tab:purple", "tab:gray"])
    ax1.set(title=f"test accuracy ({len(test_labels)} sentences)", ylim=(0, 1))
    metrics["plot"] = str(_common.save(fig, args, "transformer"))
    return _common.report("transformer", metrics)


if __name__ == "__main__":
    main()
