"""Backends: the kernels a circuit runs on, chosen per circuit (``Circuit(n, backend=...)``).

A backend is a small immutable object (it is part of the static key of qsim's
jitted functions, compared by name):

- ``apply_dense(state, u, targets, controls)``, ``apply_diagonal(state, d, wires)``,
  ``apply_permutation(state, perm, targets, controls)``: one gate on a flat state;
- ``programs``: the module that runs whole gate programs in one call
  (`native_cpu`), or None: the executor then runs record by record.

``"auto"`` is the native CPU kernels when they are built and the default device
is a CPU, the pure-JAX (XLA) kernels elsewhere (GPU, TPU, no compiler at install).
"""

from __future__ import annotations

import jax

from . import native_cpu, xla

NAMES = ("auto", "xla", "native")


class Backend:
    """Kernels for flat states; ``programs`` is the whole-program runner or None."""

    def __init__(self, name, programs=None):
        self.name = name
        self.programs = programs

    def __eq__(self, other):
        return isinstance(other, Backend) and other.name == self.name

    def __hash__(self):
        return hash(self.name)

    def __repr__(self):
        return f"Backend({self.name!r})"

    def _native(self, n_targets):
        return self.programs is not None and n_targets <= native_cpu.MAX_TARGETS

    def apply_dense(self, state, u, targets, controls=()):
        if not self._native(len(targets)):
            return xla.apply_dense(state, u, targets, controls)
        return native_cpu.apply_controlled(state, u, tuple(controls), tuple(targets))

    def apply_diagonal(self, state, d, targets):
        if not self._native(len(targets)):
            return xla.apply_diagonal(state, d, targets)
        return native_cpu.apply_diagonal(state, d, tuple(targets))

    def apply_permutation(self, state, perm, targets, controls=()):
        if not self._native(len(targets)):
            return xla.apply_permutation(state, perm, targets, controls)
        return native_cpu.apply_permutation(state, tuple(perm), tuple(targets), tuple(controls))


XLA = Backend("xla")
NATIVE = Backend("native", native_cpu)


def resolve(name="auto", where="Circuit") -> Backend:
    """The backend for ``name`` ("auto", "xla" or "native") on the default device.

    Raises:
      ValueError: for another name, or "native" where the native kernels cannot run.
    """
    if name not in NAMES:
        raise ValueError(f"{where}: backend must be one of {NAMES}, got {name!r}")
    on_cpu = jax.default_backend() == "cpu"
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
