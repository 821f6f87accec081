"""Suite ``hessian``: second derivatives and the metric tensor of the HEA (the architecture issue's rows).

``jax.jit(jax.hessian(cost))`` of ``sum_i <Z_i>`` for the HEA (see `gradients`, L = 4 layers
written with `repeat`), per ``diff`` method (parameter-shift only where its ``P^2`` shifted
circuits stay small), beside TensorCircuit-NG's ``jax.hessian`` of the same circuit when it is
installed and the grid is asked for (its compile takes minutes from n = 12); and
``qsim.metric_tensor`` of the HEA state beside PennyLane's ``adjoint_metric_tensor``.
Compile (first call) and run times are reported apart.
"""

from __future__ import annotations

import importlib.util

import numpy as np

from ..context import Case, row
from ..timing import block, compile_jit, measure
from ..workloads import hea_layer, hea_weights, pennylane_hea

QUICK_QUBITS, FULL_QUBITS = (8,), (8, 12, 16)
LAYERS = 4
METHODS = ("backprop", "adjoint", "parameter-shift")
MAX_SHIFT_PARAMS = 64          # parameter-shift Hessians cost ~ 4 P^2 circuits


def cases(cfg) -> list[Case]:
    out = []
    for n in cfg.grid(QUICK_QUBITS, FULL_QUBITS):
        for diff in METHODS:
            if diff == "parameter-shift" and 2 * n * LAYERS > MAX_SHIFT_PARAMS:
                cfg.note(f"hessian: parameter-shift skipped at n={n} ({2 * n * LAYERS} parameters)")
                continue
            out.append(Case("hessian", f"hessian n={n} L={LAYERS}", _qsim_hessian(cfg, n, diff)))
        out.append(Case("hessian", f"metric n={n} L={LAYERS}", _qsim_metric(cfg, n)))
        peers_asked = cfg.full or cfg.qubits
        if peers_asked and importlib.util.find_spec("tensorcircuit"):
            out.append(Case("hessian", f"hessian n={n} L={LAYERS}", _tc_hessian(cfg, n)))
        if peers_asked and importlib.util.find_spec("pennylane"):
            out.append(Case("hessian", f"metric n={n} L={LAYERS}", _pl_metric(cfg, n)))
    return out


def _weights(n):
    import jax.numpy as jnp

    return jnp.asarray(hea_weights(n, LAYERS), jnp.float32)


def _cost(n, diff):
    import qsim

    obs = qsim.PauliSum.from_string(" + ".join(f"Z{i}" for i in range(n)))
    return lambda w: qsim.Circuit(n).repeat(hea_layer, w).expectation(obs, diff=diff)


def _timed(cfg, name, impl, fn, w, **fields):
    compiled, times = compile_jit(fn, w)
    out = {"compile_s": times["compile_s"], **measure(lambda: block(compiled(w)), cfg.repeat)}
    value = np.asarray(compiled(w))
    return [row("hessian", name, impl, **fields, **out, checksum=float(np.abs(value).sum()))]


def _qsim_hessian(cfg, n, diff):
    def run():
        import jax
        return _timed(cfg, f"hessian n={n} L={LAYERS}", f"qsim {diff}", jax.hessian(_cost(n, diff)),
                      _weights(n), n=n, depth=LAYERS, diff=diff)
    return run


def _qsim_metric(cfg, n):
    def run():
        import qsim

        def metric(w):
            return qsim.metric_tensor(lambda v: qsim.Circuit(n).repeat(hea_layer, v), w)
        return _timed(cfg, f"metric n={n} L={LAYERS}", "qsim", metric, _weights(n), n=n, depth=LAYERS)
    return run


def _tc_hessian(cfg, n):
    def run():
        import jax
        import jax.numpy as jnp
        import tensorcircuit as tc

        from ..peers._tensorcircuit import hea_layers, set_dtype
        set_dtype("complex64")
        cfg.note(f"hessian: TensorCircuit-NG jax.hessian at n={n} compiles for minutes from n=12")

        def cost(w):
            c = tc.Circuit(n)
            hea_layers(c, w, n, LAYERS)
            return jnp.real(sum(c.expectation_ps(z=[q]) for q in range(n)))
        return _timed(cfg, f"hessian n={n} L={LAYERS}", "tensorcircuit", jax.hessian(cost), _weights(n),
                      n=n, depth=LAYERS)
    return run


def _pl_metric(cfg, n):
    def run():
        import pennylane
        from pennylane import numpy as pnp

        dev = pennylane.device("default.qubit", wires=n)

        @pennylane.qnode(dev, interface="autograd")
        def node(w):
            pennylane_hea(w, n, LAYERS)
            return pennylane.expval(pennylane.PauliZ(0))

        w = pnp.array(hea_weights(n, LAYERS), requires_grad=True)
        metric = pennylane.adjoint_metric_tensor(node)
        first = measure(lambda: metric(w), 1, warmup=1)
        out = measure(lambda: metric(w), cfg.repeat)
        value = np.asarray(metric(w))
        return [row("hessian", f"metric n={n} L={LAYERS}", "pennylane adjoint_metric_tensor", n=n, depth=LAYERS,
                    compile_s=first["time_s"], **out, checksum=float(np.abs(value).sum()))]
    return run
