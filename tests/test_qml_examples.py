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
