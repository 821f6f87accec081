"""The benchmark suites, one module each; each exposes ``cases(cfg) -> list[Case]``."""

from . import batch, circuits, compile, gates, gradients, hessian, qasmbench, train

SUITES = {
    "gates": gates,
    "circuits": circuits,
    "gradients": gradients,
    "compile": compile,
    "batch": batch,
    "qasmbench": qasmbench,
    "train": train,
    "hessian": hessian,
}

__all__ = ["SUITES"]
