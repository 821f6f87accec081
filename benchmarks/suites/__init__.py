"""The benchmark suites, one module each; each exposes ``cases(cfg) -> list[Case]``."""

from . import batch, circuits, compile, dynamic, gates, gradients, hessian, noise, qasmbench, sharded, train

SUITES = {
    "gates": gates,
    "circuits": circuits,
    "gradients": gradients,
    "compile": compile,
    "batch": batch,
    "qasmbench": qasmbench,
    "train": train,
    "hessian": hessian,
    "sharded": sharded,
    "noise": noise,
    "dynamic": dynamic,
}

__all__ = ["SUITES"]
