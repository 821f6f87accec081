"""The native CPU backend: C++ kernels (AVX2 when the CPU has it) called through the XLA FFI.

Every function takes FLAT states ``(..., 2**n)`` (wire 0 = most significant bit),
complex64 or complex128, with any leading batch axes; matrices are cast to the
state's dtype. Under ``jax.jit`` the state buffer is updated in place (the FFI
call aliases it to its result). Each function is one native *program*
(`primitives.program`), so all of them support ``jit``, ``vmap``, ``grad``,
``jacrev``, ``jvp``, ``jacfwd``, ``linearize``, ``hessian`` and ``checkpoint``:
reverse mode runs the native adjoint sweep, forward mode and higher orders the
pure-JAX reference of the same steps. For ``y = U x`` the matrix cotangent is
``ct_U[i, j] = sum_rest ct_y[rest, i] x[rest, j]`` (JAX's convention).
"""

from __future__ import annotations

import jax.numpy as jnp

from ._loader import available, info, why_unavailable
from .primitives import FORWARD, INVERSE, TRANSPOSE, passes, program, streams, sweep
from .steps import (DENSE, DIAGONAL, FUSED_DENSE, FUSED_DIAGONAL, MAX_TARGETS, PERMUTATION,
                    encode_fused, encode_step)

__all__ = ["DENSE", "DIAGONAL", "FUSED_DENSE", "FUSED_DIAGONAL", "MAX_TARGETS", "PERMUTATION",
           "apply_controlled", "apply_dense", "apply_diagonal", "apply_permutation", "apply_program",
           "available", "encode_fused", "encode_step", "info", "passes", "program_adjoint", "streams",
           "why_unavailable"]


def _wires(wires, name: str, fn: str, allow_empty: bool = False) -> tuple[int, ...]:
    wires = tuple(int(w) for w in wires)
    if not allow_empty and not 1 <= len(wires) <= MAX_TARGETS:
        raise ValueError(f"qsim native {fn}: {name} must name 1 to {MAX_TARGETS} wires, got {wires}")
    return wires


def _check_state(state, fn: str):
    if state.dtype not in (jnp.complex64, jnp.complex128):
        raise TypeError(f"qsim native {fn}: state must be complex64 or complex128, got {state.dtype}")


def _prepare_matrix(state, u, targets, fn):
    _check_state(state, fn)
    u = jnp.asarray(u).astype(state.dtype)
    dim = 1 << len(targets)
    if u.shape[-2:] != (dim, dim) or (u.ndim > 2 and u.shape[:-2] != state.shape[:-1]):
        raise ValueError(f"qsim native {fn}: U must have shape ({dim}, {dim}) for {len(targets)} "
                         f"targets (or the state's batch in front), got {u.shape}")
    return u.reshape(u.shape[:-2] + (dim * dim,))


def apply_dense(state, u, targets):
    """``state`` with the dense matrix ``u`` (``(2**k, 2**k)``, first target = MSB) on ``targets``.

    Raises:
      ValueError: if k is not in 1..5 or ``u`` has the wrong shape.
      TypeError: if the state is not complex.
    """
    return apply_controlled(state, u, (), targets)


def apply_controlled(state, u, controls, targets):
    """``state`` with ``u`` applied on ``targets`` where every wire in ``controls`` is 1
    (only that slice is read and written)."""
    targets = _wires(targets, "targets", "apply_controlled")
    controls = _wires(controls, "controls", "apply_controlled", allow_empty=True)
    coefs = _prepare_matrix(state, u, targets, "apply_controlled")
    return program(state, coefs, encode_step(DENSE, targets, controls), FORWARD)


def apply_diagonal(state, d, targets):
    """``state`` multiplied by the diagonal ``d`` (``(2**k,)``) on ``targets``:
    ``out[i] = d[j(i)] * state[i]``, ``j(i)`` the target bits of ``i`` (first = MSB)."""
    targets = _wires(targets, "targets", "apply_diagonal")
    _check_state(state, "apply_diagonal")
    d = jnp.asarray(d).astype(state.dtype)
    dim = 1 << len(targets)
    if d.shape[-1:] != (dim,) or (d.ndim > 1 and d.shape[:-1] != state.shape[:-1]):
        raise ValueError(f"qsim native apply_diagonal: d must have shape ({dim},) for "
                         f"{len(targets)} targets, got {d.shape}")
    return program(state, d, encode_step(DIAGONAL, targets), FORWARD)


def apply_permutation(state, perm, targets, controls=()):
    """``state`` with the basis states of ``targets`` permuted: ``out[j] = in[perm[j]]``
    (only where every control is 1). X is ``perm=(1, 0)``, SWAP ``perm=(0, 2, 1, 3)``.

    Raises:
      ValueError: if ``perm`` is not a permutation of ``range(2**len(targets))``.
    """
    targets = _wires(targets, "targets", "apply_permutation")
    controls = _wires(controls, "controls", "apply_permutation", allow_empty=True)
    perm = tuple(int(p) for p in perm)
    if sorted(perm) != list(range(1 << len(targets))):
        raise ValueError(f"qsim native apply_permutation: perm must be a permutation of "
                         f"range({1 << len(targets)}), got {perm}")
    _check_state(state, "apply_permutation")
    code = encode_step(PERMUTATION, targets, controls, perm)
    return program(state, jnp.zeros((1,), state.dtype), code, FORWARD)


def apply_program(state, coefs, code, inverse=False):
    """``state`` after every step of ``code`` (or, with ``inverse``, after the inverse program).

    Args:
      state: ``(..., 2**n)`` complex64 or complex128.
      coefs: ``(total,)`` (or one row per state) coefficients of the steps.
      code: tuple of step records (`encode_step`, `encode_fused`), static.
      inverse: run ``U_1^dagger ... U_S^dagger`` (for unitary steps).
    """
    _check_state(state, "apply_program")
    coefs = jnp.asarray(coefs).astype(state.dtype)
    return program(state, coefs, tuple(code), INVERSE if inverse else FORWARD)


def program_adjoint(code, coefs, y, g, want_ct=True):
    """The adjoint sweep of a program: from its output ``y`` and cotangent ``g``, returns
    ``(x, g_x, ct)``: its input, the input's cotangent and the coefficients' cotangent
    (zeros when ``want_ct`` is False)."""
    coefs = jnp.asarray(coefs).astype(y.dtype)
    return sweep(y, g, coefs, tuple(code), bool(want_ct))
