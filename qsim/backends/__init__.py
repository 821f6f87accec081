"""Backends: the kernels a circuit runs on, chosen per circuit (``Circuit(n, backend=...)``).

A backend is a small immutable object (it is part of the static key of qsim's
jitted functions, compared by name):

- ``apply_dense(state, u, targets, controls)``, ``apply_diagonal(state, d, wires)``,
  ``apply_permutation(state, perm, targets, controls)``: one gate on a flat state;
- ``programs``: the module that runs whole gate programs in one call
  (`native_cpu`), or None: the executor then runs record by record;
- ``kernels``: the pure-JAX kernel module used otherwise (`xla`, or `gpu`).

``"auto"`` is the native CPU kernels when they are built and the default device
is a CPU, the GPU kernels (`gpu`: dense steps without a dot, in place by chunks)
when the default device is a GPU, the pure-JAX (XLA) kernels elsewhere (TPU, no
compiler at install). ``"gpu"`` names those kernels explicitly; they are plain JAX
and run on any platform (tests force them on CPU).
"""

from __future__ import annotations

import jax

from . import gpu, native_cpu, xla

NAMES = ("auto", "xla", "native", "gpu")


class Backend:
    """Kernels for flat states; ``programs`` is the whole-program runner or None."""

    def __init__(self, name, programs=None, kernels=xla):
        self.name = name
        self.programs = programs
        self.kernels = kernels

    def __eq__(self, other):
        return isinstance(other, Backend) and other.name == self.name

    def __hash__(self):
        return hash(self.name)

    def __repr__(self):
        return f"Backend({self.name!r})"

    @property
    def scan_concrete(self):
        """Whether a long program of concrete gates runs as one native program or one scan over a
        `lax.switch` of its steps (compile time bounded by the variety of gates). Not on the GPU
        kernels: XLA copies the state into and out of the conditional every step, so they run
        the fused program unrolled, in place."""
        return self.kernels is xla

    def _native(self, n_targets):
        return self.programs is not None and n_targets <= native_cpu.MAX_TARGETS

    def apply_dense(self, state, u, targets, controls=()):
        if not self._native(len(targets)):
            return self.kernels.apply_dense(state, u, targets, controls)
        return native_cpu.apply_controlled(state, u, tuple(controls), tuple(targets))

    def apply_diagonal(self, state, d, targets):
        if not self._native(len(targets)):
            return self.kernels.apply_diagonal(state, d, targets)
        return native_cpu.apply_diagonal(state, d, tuple(targets))

    def apply_permutation(self, state, perm, targets, controls=()):
        if not self._native(len(targets)):
            return self.kernels.apply_permutation(state, perm, targets, controls)
        return native_cpu.apply_permutation(state, tuple(perm), tuple(targets), tuple(controls))


XLA = Backend("xla")
NATIVE = Backend("native", native_cpu)
GPU = Backend("gpu", kernels=gpu.DEFAULT)


def resolve(name="auto", where="Circuit") -> Backend:
    """The backend for ``name`` ("auto", "xla", "native" or "gpu") on the default device.

    Raises:
      ValueError: for another name, or "native" where the native kernels cannot run.
    """
    if isinstance(name, Backend):   # a configured backend, e.g. gpu.backend(chunk_qubits=...)
        return name
    if name not in NAMES:
        raise ValueError(f"{where}: backend must be one of {NAMES} or a Backend, got {name!r}")
    on_cpu = jax.default_backend() == "cpu"
    if name == "gpu" or (name == "auto" and jax.default_backend() == "gpu"):
        return GPU
    if name == "xla" or (name == "auto" and not (on_cpu and native_cpu.available())):
        return XLA
    if not native_cpu.available():
        raise ValueError(f"{where}: backend='native' needs the native CPU kernels, which are unavailable "
                         f"({native_cpu.why_unavailable()}); use backend='xla' or 'auto'")
    if not on_cpu:
        raise ValueError(f"{where}: backend='native' runs on CPU only, but JAX's default device is "
                         f"{jax.default_backend()!r}; use backend='xla' or 'auto'")
    return NATIVE


def status() -> str:
    """One line saying which kernels run on the CPU and, when native ones don't, why."""
    if native_cpu.available():
        return "native CPU kernels (XLA FFI) in use"
    return f"pure-JAX kernels in use on CPU (native extension unavailable: {native_cpu.why_unavailable()})"
