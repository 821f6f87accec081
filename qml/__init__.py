"""qml: Flax quantum machine-learning layers, templates and algorithms on the `qsim` simulator.

Public API:
  QuantumLayer   NNX layer running a parametrised circuit per sample (`qml.layers`)
  linen          `linen.QuantumLayer`, the same for flax.linen
  templates      embeddings and layered ansatze (PennyLane-compatible where PennyLane has them)
  kernels        fidelity quantum kernels (`kernel_matrix`)
  vqe            variational eigensolver (`minimize`) and the H2 Hamiltonian
  qaoa           QAOA for MaxCut / Ising problems
  grover         Grover search with its closed-form success probability
  optim          quantum natural gradient (`optim.qng`) as an optax transformation

qml uses only the public API of qsim.
"""

from . import grover, kernels, linen, optim, qaoa, templates, vqe
from .layers import QuantumLayer

__all__ = ["QuantumLayer", "grover", "kernels", "linen", "optim", "qaoa", "templates", "vqe"]
