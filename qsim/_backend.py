"""Kernel dispatch: the native CPU kernels when built and on CPU, the pure-JAX ones otherwise.

The choice is made at trace time from static facts (the default backend, whether
the extension loaded, the number of target wires), so it never retraces. Both
paths have the same signatures and semantics (flat states, wire 0 = MSB).
"""

from __future__ import annotations

import contextlib
import functools

import jax

from . import _kernels

_MAX_NATIVE_TARGETS = 5
_PURE = [False]   # set by `pure_jax()`


@functools.lru_cache(maxsize=None)
def _native_module():
    try:
        from . import _native
    except ImportError:  # the module itself is part of the package; only a broken install lands here
        return None
    return _native if _native.available() else None


def native_status() -> str:
    """One line saying which kernels run on the CPU and, when native ones don't, why."""
    mod = _native_module()
    if mod is not None:
        return "native CPU kernels (XLA FFI) in use"
    try:
        from . import _native
        why = _native.why_unavailable()
    except ImportError as err:
        why = str(err)
    return f"pure-JAX kernels in use on CPU (native extension unavailable: {why})"


@contextlib.contextmanager
def pure_jax():
    """Trace with the pure-JAX kernels even where the native ones are loaded.

    For side-by-side measurements and cross-checks: circuits traced inside the
    block use the XLA kernels (the choice is part of the cache key of qsim's own
    jitted functions, see `kernel_key`), circuits traced outside it are
    unaffected. A caller's ``jax.jit(f)`` caches its trace by ``f``: trace a
    fresh function inside the block.
    """
    before = _PURE[0]
    _PURE[0] = True
    try:
        yield
    finally:
        _PURE[0] = before


def kernel_key() -> str:
    """Static part of every jit cache key that depends on the kernel choice."""
    return "pure-jax" if _PURE[0] else "auto"


def _native_for(n_targets: int):
    if _PURE[0] or n_targets > _MAX_NATIVE_TARGETS or jax.default_backend() != "cpu":
        return None
    return _native_module()


def native_program():
    """The native module when whole programs can run in one native call (CPU, built), else None."""
    return _native_for(1)


def apply_dense(state, u, targets, controls=()):
    native = _native_for(len(targets))
    if native is None:
        return _kernels.apply_dense(state, u, targets, controls)
    u = u.astype(state.dtype)
    if controls:
        return native.apply_controlled(state, u, tuple(controls), tuple(targets))
    return native.apply_dense(state, u, tuple(targets))


def apply_diagonal(state, d, targets):
    native = _native_for(len(targets))
    if native is None:
        return _kernels.apply_diagonal(state, d, targets)
    return native.apply_diagonal(state, d.astype(state.dtype), tuple(targets))


def apply_permutation(state, perm, targets, controls=()):
    native = _native_for(len(targets))
    if native is None:
        return _kernels.apply_permutation(state, perm, targets, controls)
    return native.apply_permutation(state, tuple(perm), tuple(targets), tuple(controls))
