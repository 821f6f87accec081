"""The train suite's peers: the benchmark model written the way each library's users write it.

The model (see `benchmarks.suites.train`), for one sample ``x`` of shape ``(n,)``: RY(x_q) on every
wire q, then L hardware-efficient layers with trainable weights ``w`` of shape ``(L, n, 2)``
(RY(w[l, q, 0]), RZ(w[l, q, 1]) on every wire, then CNOT (0, 1), (1, 2), ...), output
``f(x) = sum_q <Z_q>``. `build` returns ``batched(w, xs)``: ``f`` on a batch ``xs`` of shape
``(B, n)``, output ``(B,)``, not jitted (the suite jits the forward pass and ``jax.value_and_grad``
of the MSE loss, the weights a traced argument).

- TensorCircuit-NG, jax backend, complex64, samples batched with ``jax.vmap``, two formulations:
  ``state``: ``f`` from ``c.state()``'s probabilities, ``sum_b |psi_b|^2 (n - 2 popcount(b))``;
  ``expectation_ps``: one ``c.expectation_ps(z=[q])`` per wire.
- PennyLane ``default.qubit``, ``interface="jax"``, ``diff_method="backprop"``, broadcasting over
  the batch (``RY(xs[:, q])``), ``expval`` of the ``Sum`` of the Z_q (faster here than one ``expval``
  per wire). It runs in complex64 only with ``jax_enable_x64`` off (its start state is complex128
  otherwise): the suite runs every case with it off.

PennyLane is imported as ``pennylane``, never ``as qml`` (qml is this project's package).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import warnings

import numpy as np

from ..workloads import pennylane_hea

# impl name in the tables -> (library, formulation)
FORMULATIONS = {
    "tensorcircuit state": ("tensorcircuit", "state"),
    "tensorcircuit expectation_ps": ("tensorcircuit", "expectation_ps"),
    "pennylane default.qubit": ("pennylane", "default.qubit"),
}
LIBRARIES = ("tensorcircuit", "pennylane")
_DIST = {"tensorcircuit": "tensorcircuit-ng", "pennylane": "pennylane"}


def available(library: str) -> str | None:
    """None when ``library`` imports, else why not (a note)."""
    import jax

    before = jax.enable_x64.get_global()
    try:
        importlib.import_module(library)
    except ImportError as err:
        return f"{library}: skipped in the train suite, not installed ({err})"
    finally:   # importing tensorcircuit turns jax_enable_x64 off for the whole process
        jax.config.update("jax_enable_x64", before)
    return None


def describe(library: str) -> str:
    """How the library's rows are run (a note in the report)."""
    try:
        version = importlib.metadata.version(_DIST[library])
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    if library == "tensorcircuit":
        return (f"train: tensorcircuit-ng {version}, jax backend, complex64, jax.vmap over samples, two "
                "formulations (cost from c.state() probabilities; one expectation_ps per wire)")
    return (f"train: pennylane {version} default.qubit, interface=jax, backprop, broadcasting over the batch, "
            "expval of a Sum of Z_q")


def build(impl: str, n: int, layers: int):
    """``batched(w, xs) -> (B,)`` of the `FORMULATIONS` entry ``impl`` (complex64, not jitted)."""
    library, formulation = FORMULATIONS[impl]
    if library == "tensorcircuit":
        return _tensorcircuit(n, formulation)
    return _pennylane(n, layers)


def _tc_complex64():
    """TensorCircuit's jax backend in complex64, leaving the process-wide ``jax_enable_x64`` as it was
    (``tc.set_dtype`` sets it globally; the suite's thread-local setting is untouched)."""
    import jax
    import tensorcircuit as tc

    before = jax.enable_x64.get_global()
    tc.set_backend("jax")
    tc.set_dtype("complex64")
    jax.config.update("jax_enable_x64", before)
    return tc


def _z_sum_signs(n: int) -> np.ndarray:
    """``sum_q <b|Z_q|b> = n - 2 popcount(b)`` for every basis index b (wire 0 = MSB), float32 ``(2**n,)``."""
    idx = np.arange(1 << n)
    return sum(1 - 2 * ((idx >> (n - 1 - q)) & 1) for q in range(n)).astype(np.float32)


def _tensorcircuit(n: int, formulation: str):
    import jax
    import jax.numpy as jnp

    tc = _tc_complex64()
    signs = _z_sum_signs(n)

    def model(w, x):
        c = tc.Circuit(n)
        for q in range(n):
            c.ry(q, theta=x[q])
        for layer in range(w.shape[0]):
            for q in range(n):
                c.ry(q, theta=w[layer, q, 0])
                c.rz(q, theta=w[layer, q, 1])
            for q in range(n - 1):
                c.cnot(q, q + 1)
        if formulation == "state":
            return jnp.sum(jnp.asarray(signs) * jnp.abs(c.state()) ** 2)
        return jnp.real(sum(c.expectation_ps(z=[q]) for q in range(n)))

    return jax.vmap(model, in_axes=(None, 0))


def _pennylane(n: int, layers: int):
    import jax.numpy as jnp
    import pennylane

    dev = pennylane.device("default.qubit", wires=n)
    obs = pennylane.sum(*[pennylane.Z(q) for q in range(n)])

    @pennylane.qnode(dev, interface="jax", diff_method="backprop")
    def circuit(w, xs):
        for q in range(n):
            pennylane.RY(xs[:, q], wires=q)
        pennylane_hea(w, n, layers)
        return pennylane.expval(obs)

    def batched(w, xs):   # a batch of one comes back without its batch axis
        with warnings.catch_warnings():   # its complex128 start state is complex64 with x64 off: as meant
            warnings.filterwarnings("ignore", "Explicitly requested dtype complex128", UserWarning)
            return jnp.reshape(circuit(w, xs), (xs.shape[0],))

    return batched
