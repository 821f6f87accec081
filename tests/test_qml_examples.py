"""Each example's ``main`` with its ``--fast`` setting, in process: metrics reported and a plot written."""

import importlib
from pathlib import Path

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")
pytest.importorskip("tqdm")


def run(name, tmp_path, *extra):
    module = importlib.import_module(f"qml.examples.{name}")
    metrics = module.main(["--fast", "--no-progress", "--out", str(tmp_path), *extra])
    assert Path(metrics["plot"]).is_file() and Path(metrics["plot"]).parent == tmp_path
    return metrics


def test_xor(tmp_path):
    m = run("xor", tmp_path)
    assert m["accuracy"] == 1.0


def test_kernel_svm(tmp_path):
    m = run("kernel_svm", tmp_path)
    assert m["quantum_kernel_test_accuracy"] >= 0.85 and m["rbf_test_accuracy"] >= 0.85


def test_vqe_h2(tmp_path):
    m = run("vqe_h2", tmp_path)
    assert m["error_mHa"] < 1.6 and abs(m["exact_energy"] + 1.13730604) < 1e-6
    assert m["curve_max_error_mHa"] < 1.6 and m["equilibrium_bond_length"] == 0.735


def test_qaoa_maxcut(tmp_path):
    m = run("qaoa_maxcut", tmp_path)
    assert m["best_sampled_cut"] == m["max_cut"] and m["approximation_ratio"] > 0.8


def test_moons(tmp_path):
    m = run("moons", tmp_path)
    assert m["test_accuracy"] >= 0.85


def test_noisy_classifier(tmp_path):
    m = run("noisy_classifier", tmp_path)
    assert m["unaware_accuracy_p=0.0"] >= 0.85 and m["aware_accuracy_p=0.0"] == m["unaware_accuracy_p=0.0"]
    for p in (0.05, 0.15):   # noise-aware training lowers the loss on the noisy device; the signal shrinks with p
        assert m[f"aware_loss_p={p}"] < m[f"unaware_loss_p={p}"]
    assert m["unaware_loss_p=0.15"] > m["unaware_loss_p=0.05"] > m["unaware_loss_p=0.0"]
    assert m["aware_accuracy_p=0.15"] > m["unaware_accuracy_p=0.15"] and m["trajectories_accuracy"] >= 0.7


@pytest.mark.slow
def test_digits(tmp_path):
    m = run("digits", tmp_path)
    assert m["hybrid_test_accuracy"] >= 0.6 and m["classical_test_accuracy"] >= 0.6
    assert m["classical_params"] >= m["hybrid_params"]


@pytest.mark.slow
def test_text(tmp_path):
    m = run("text", tmp_path)
    assert m["n_sentences"] == 160
    assert m["quantum_test_accuracy"] >= 0.65 and m["logreg_test_accuracy"] >= 0.65


@pytest.mark.slow
def test_portfolio(tmp_path):
    m = run("portfolio", tmp_path)
    assert m["best_sampled_cost"] == m["optimum_cost"]
    assert m["p_optimum"] > m["p_optimum_uniform"] and m["p_feasible"] > m["p_feasible_uniform"]


def test_examples_listed():
    from qml.examples import EXAMPLES
    for name in EXAMPLES:
        assert hasattr(importlib.import_module(f"qml.examples.{name}"), "main")


def test_transformer(tmp_path):
    m = run("transformer", tmp_path, "--no-pennylane")
    # 40 steps fit the 120 training sentences; the 40 test sentences are too few for a sharp bound
    assert m["quantum_train_accuracy"] >= 0.8 and m["classical_train_accuracy"] >= 0.8
    assert 0 <= m["quantum_test_accuracy"] <= 1 and 0 <= m["classical_test_accuracy"] <= 1
    # the classical head is the width whose parameter count is nearest the quantum head's
    assert abs(m["classical_head_params"] - m["quantum_head_params"]) <= m["quantum_head_params"] // 10
    encoder = m["quantum_model_params"] - m["quantum_head_params"]
    assert encoder == m["classical_model_params"] - m["classical_head_params"] > 0
    for kind in ("quantum", "classical"):
        assert m[f"{kind}_compile_s"] > 0 and m[f"{kind}_step_ms"] > 0
    assert "pennylane_step_ms" not in m


def _strongly_entangling_by_hand(x, w):
    """The head's circuit for one sample written gate by gate with qsim: RY(x_q); per layer l,
    Rot = RZ(w[l,q,2]) RY(w[l,q,1]) RZ(w[l,q,0]) on every wire, then CNOT(q, q + r mod n) with
    r = l mod (n - 1) + 1 (PennyLane's StronglyEntanglingLayers); <Z_q> for every wire."""
    import qsim

    n = len(x)
    c = qsim.Circuit(n)
    for q in range(n):
        c.ry(q, x[q])
    for layer in range(w.shape[0]):
        for q in range(n):
            c.rz(q, w[layer, q, 0]).ry(q, w[layer, q, 1]).rz(q, w[layer, q, 2])
        r = layer % (n - 1) + 1
        for q in range(n):
            c.cnot(q, (q + r) % n)
    return [float(c.expectation(qsim.Z(q))) for q in range(n)]


def _head_and_features(kind="QuantumHead", n_qubits=3):
    import jax
    from flax import nnx

    T = importlib.import_module("qml.examples.transformer")
    head = getattr(T, kind)(8, n_qubits, 2, rngs=nnx.Rngs(0))
    h = jax.random.normal(jax.random.key(1), (5, 8))
    return head, h


def test_transformer_quantum_head_is_the_circuit():
    import numpy as np

    head, h = _head_and_features()
    got = np.asarray(head.expectations(h))
    x, w = np.asarray(head.angles(h)), np.asarray(head.quantum.weights["layers"][...])
    want = np.array([_strongly_entangling_by_hand(xb, w) for xb in x])
    assert got.shape == (5, 3)
    np.testing.assert_allclose(got, want, atol=1e-5)
    np.testing.assert_allclose(np.asarray(head(h)), np.asarray(head.readout(want)), atol=1e-5)


def test_transformer_pennylane_head_matches_qsim():
    import numpy as np

    pytest.importorskip("pennylane")
    ours, h = _head_and_features("QuantumHead")
    theirs, _ = _head_and_features("PennyLaneHead")
    np.testing.assert_allclose(np.asarray(theirs.expectations(h)), np.asarray(ours.expectations(h)), atol=1e-5)
