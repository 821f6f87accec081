"""Native CPU statevector kernels (C++, AVX2 when the CPU has it) called through the XLA FFI.

The library ``_qsim_native.so`` is built by ``pip install`` when a C++ compiler
is available (see ``CMakeLists.txt``); without it ``available()`` is False,
``why_unavailable()`` says why in one line, and qsim uses its pure-JAX kernels.
It is loaded lazily, once; ``QSIM_NATIVE_LIBRARY=/path/to/_qsim_native.so``
loads another build, ``QSIM_DISABLE_NATIVE=1`` turns it off.

Every kernel is a pure function of a FLAT state ``(2**n,)`` (wire 0 = most
significant bit), complex64 or complex128; matrices are cast to the state's
dtype. Under ``jax.jit`` the state buffer is updated in place (the FFI call
aliases it to its result; donate the state to avoid the one copy XLA makes of
a caller's array). ``jax.vmap`` runs the whole batch in one call, batched
matrices included. Reverse-mode AD (``jax.grad``, ``jax.vjp``) uses native
adjoint kernels: for ``y = U x`` the state cotangent is ``U^T ct_y`` and the
matrix cotangent is ``ct_U[i, j] = sum_rest ct_y[rest, i] x[rest, j]`` (JAX's
convention: no conjugation). Forward mode (``jax.jvp``) is not supported.

Threads: ``QSIM_NUM_THREADS`` (else ``OMP_NUM_THREADS``, else the CPUs this
process may use); small states run on the calling thread.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import os
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np

_LIB_STEM = "_qsim_native"
_MAX_TARGETS = 5
_HANDLERS = ("dense", "diagonal", "permutation", "dense_vjp", "diagonal_vjp", "program", "program_vjp")


def _candidate_paths():
    """Where the library may be: next to this file, in the package's search path
    (scikit-build-core's editable installs put it in site-packages), or where
    the import system finds ``qsim._qsim_native``."""
    here = pathlib.Path(__file__).resolve().parent
    dirs = [here]
    pkg = sys.modules.get(__package__) if __package__ else None
    dirs += [pathlib.Path(p) for p in getattr(pkg, "__path__", ())]
    for d in dirs:
        for suffix in (".so", ".dylib", ".dll", ".pyd"):
            yield d / (_LIB_STEM + suffix)
    if __package__:
        try:
            spec = importlib.util.find_spec(f"{__package__}.{_LIB_STEM}")
        except (ImportError, ValueError):
            spec = None
        if spec is not None and spec.origin:
            yield pathlib.Path(spec.origin)


def _find_library():
    override = os.environ.get("QSIM_NATIVE_LIBRARY")
    if override:
        return pathlib.Path(override)
    return next((p for p in _candidate_paths() if p.is_file()), None)


@functools.lru_cache(maxsize=None)
def _load():
    """Load and register the library once: returns (library or None, reason)."""
    if os.environ.get("QSIM_DISABLE_NATIVE", "") not in ("", "0"):
        return None, "disabled by QSIM_DISABLE_NATIVE"
    path = _find_library()
    if path is None:
        return None, ("_qsim_native.so was not built (no C++ compiler or jaxlib headers at "
                      "install time?); reinstall with `pip install -e .` to build it")
    try:
        lib = ctypes.CDLL(str(path))
        lib.qsim_native_info.restype = ctypes.c_char_p
        for name in _HANDLERS:
            symbol = getattr(lib, f"qsim_native_{name}")
            jax.ffi.register_ffi_target(f"qsim_native_{name}", jax.ffi.pycapsule(symbol),
                                        platform="cpu")
    except (OSError, AttributeError) as err:
        return None, f"could not load {path}: {err}"
    return lib, ""


def available() -> bool:
    """Whether the native kernels are built and loaded."""
    return _load()[0] is not None


def why_unavailable() -> str:
    """One line saying why the native kernels are unavailable ("" when they are)."""
    return _load()[1]


def info() -> str:
    """What the kernels run on, e.g. ``"isa=avx2+fma threads=2"`` ("" when unavailable)."""
    lib = _load()[0]
    return lib.qsim_native_info().decode() if lib is not None else ""


# ------------------------------------------------------------ arguments ------

def _wires(wires, name: str, fn: str, allow_empty: bool = False) -> tuple[int, ...]:
    wires = tuple(int(w) for w in wires)
    if not allow_empty and not 1 <= len(wires) <= _MAX_TARGETS:
        raise ValueError(f"qsim._native.{fn}: {name} must name 1 to {_MAX_TARGETS} wires, "
                         f"got {wires}")
    return wires


def _check_state(state, fn: str):
    if state.dtype not in (jnp.complex64, jnp.complex128):
        raise TypeError(f"qsim._native.{fn}: state must be complex64 or complex128, "
                        f"got {state.dtype}")


def _attrs(targets, controls=None, perm=None):
    attrs = {"targets": np.asarray(targets, np.int64)}
    if controls is not None:
        attrs["controls"] = np.asarray(controls, np.int64)
    if perm is not None:
        attrs["perm"] = np.asarray(perm, np.int64)
    return attrs


def _like(x):
    return jax.ShapeDtypeStruct(x.shape, x.dtype)


def _unbroadcast(ct, shape):
    """Sum a per-state cotangent over the leading axes that the coefficient lacks."""
    extra = ct.ndim - len(shape)
    return ct.sum(axis=tuple(range(extra))) if extra > 0 else ct


# The raw FFI calls. vmap "broadcast_all" hands the handler one state per batch
# member and a matching (or broadcast) matrix, so a batch is one call.
def _call(name, results, aliases, operands, attrs):
    return jax.ffi.ffi_call(f"qsim_native_{name}", results, vmap_method="broadcast_all",
                            input_output_aliases=aliases)(*operands, **attrs)


def _dense_call(state, u, targets, controls):
    return _call("dense", _like(state), {0: 0}, (state, u), _attrs(targets, controls))


def _dense_vjp_call(g, x, u, targets, controls):
    d = u.shape[-1]
    ct_u = jax.ShapeDtypeStruct(g.shape[:-1] + (d, d), g.dtype)
    return _call("dense_vjp", (_like(g), ct_u), {0: 0}, (g, x, u), _attrs(targets, controls))


def _diagonal_call(state, d, targets):
    return _call("diagonal", _like(state), {0: 0}, (state, d), _attrs(targets))


def _diagonal_vjp_call(g, x, d, targets):
    ct_d = jax.ShapeDtypeStruct(g.shape[:-1] + d.shape[-1:], g.dtype)
    return _call("diagonal_vjp", (_like(g), ct_d), {0: 0}, (g, x, d), _attrs(targets))


def _permutation_call(state, perm, targets, controls):
    return _call("permutation", _like(state), {0: 0}, (state,), _attrs(targets, controls, perm))


def _is_zero(ct) -> bool:
    return isinstance(ct, jax.custom_derivatives.SymbolicZero)


# ---------------------------------------------------------------- dense ------

@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _dense(state, u, targets, controls):
    return _dense_call(state, u, targets, controls)


def _dense_fwd(state, u, targets, controls):
    out = _dense_call(state.value, u.value, targets, controls)
    x = state.value if u.perturbed else None  # the input is only needed for U's cotangent
    return out, (x, u.value)


def _dense_bwd(targets, controls, res, g):
    x, u = res
    if _is_zero(g):
        return None, None
    if x is None:
        return _dense_call(g, jnp.swapaxes(u, -1, -2), targets, controls), None
    ct_state, ct_u = _dense_vjp_call(g, x, u, targets, controls)
    return ct_state, _unbroadcast(ct_u, u.shape)


_dense.defvjp(_dense_fwd, _dense_bwd, symbolic_zeros=True)


def _prepare_matrix(state, u, targets, fn):
    _check_state(state, fn)
    u = jnp.asarray(u).astype(state.dtype)
    dim = 1 << len(targets)
    if u.shape[-2:] != (dim, dim) or (u.ndim > 2 and u.shape[:-2] != state.shape[:-1]):
        raise ValueError(f"qsim._native.{fn}: U must have shape ({dim}, {dim}) for "
                         f"{len(targets)} targets (or the state's batch in front), got {u.shape}")
    return u


def apply_dense(state, u, targets):
    """``state`` with the dense matrix ``u`` applied on ``targets``.

    Args:
      state: ``(2**n,)`` complex64 or complex128.
      u: ``(2**k, 2**k)``; its first target is the most significant bit of its index.
      targets: tuple of k distinct wires, 1 <= k <= 5.

    Returns:
      ``(2**n,)`` array of the state's dtype.

    Raises:
      ValueError: if k is not in 1..5 or ``u`` has the wrong shape.
      TypeError: if the state is not complex.
    """
    targets = _wires(targets, "targets", "apply_dense")
    u = _prepare_matrix(state, u, targets, "apply_dense")
    return _dense(state, u, targets, ())


def apply_controlled(state, u, controls, targets):
    """``state`` with ``u`` applied on ``targets`` where every wire in ``controls`` is 1.

    Only that slice of the state is read and written. Shapes as in `apply_dense`.
    """
    targets = _wires(targets, "targets", "apply_controlled")
    controls = _wires(controls, "controls", "apply_controlled", allow_empty=True)
    u = _prepare_matrix(state, u, targets, "apply_controlled")
    return _dense(state, u, targets, controls)


# ------------------------------------------------------------- diagonal ------

@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _diagonal(state, d, targets):
    return _diagonal_call(state, d, targets)


def _diagonal_fwd(state, d, targets):
    out = _diagonal_call(state.value, d.value, targets)
    return out, (state.value if d.perturbed else None, d.value)


def _diagonal_bwd(targets, res, g):
    x, d = res
    if _is_zero(g):
        return None, None
    if x is None:
        return _diagonal_call(g, d, targets), None
    ct_state, ct_d = _diagonal_vjp_call(g, x, d, targets)
    return ct_state, _unbroadcast(ct_d, d.shape)


_diagonal.defvjp(_diagonal_fwd, _diagonal_bwd, symbolic_zeros=True)


def apply_diagonal(state, d, targets):
    """``state`` multiplied by the diagonal ``d`` (``(2**k,)``) on ``targets``.

    ``out[i] = d[j(i)] * state[i]`` with ``j(i)`` the bits of ``i`` on the targets
    (first target = most significant bit of j). Amplitudes whose factor is
    exactly 1 are not touched.
    """
    targets = _wires(targets, "targets", "apply_diagonal")
    _check_state(state, "apply_diagonal")
    d = jnp.asarray(d).astype(state.dtype)
    dim = 1 << len(targets)
    if d.shape[-1:] != (dim,) or (d.ndim > 1 and d.shape[:-1] != state.shape[:-1]):
        raise ValueError(f"qsim._native.apply_diagonal: d must have shape ({dim},) for "
                         f"{len(targets)} targets, got {d.shape}")
    return _diagonal(state, d, targets)


# ---------------------------------------------------------- permutation ------

@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3))
def _permutation(state, perm, targets, controls):
    return _permutation_call(state, perm, targets, controls)


def _permutation_fwd(state, perm, targets, controls):
    return _permutation_call(state, perm, targets, controls), None


def _permutation_bwd(perm, targets, controls, _, g):
    inverse = tuple(int(i) for i in np.argsort(perm))
    return (_permutation_call(g, inverse, targets, controls),)


_permutation.defvjp(_permutation_fwd, _permutation_bwd)


def apply_permutation(state, perm, targets, controls=()):
    """``state`` with the basis states of ``targets`` permuted: ``out[j] = in[perm[j]]``.

    ``j`` is the index of the target bits (first target = most significant); the
    other bits are untouched, and with ``controls`` only the slice where every
    control is 1 moves. No arithmetic: X is ``perm=(1, 0)``, CNOT is
    ``controls=(c,)`` with X, SWAP is ``perm=(0, 2, 1, 3)``.

    Raises:
      ValueError: if ``perm`` is not a permutation of ``range(2**len(targets))``.
    """
    targets = _wires(targets, "targets", "apply_permutation")
    controls = _wires(controls, "controls", "apply_permutation", allow_empty=True)
    perm = tuple(int(p) for p in perm)
    if sorted(perm) != list(range(1 << len(targets))):
        raise ValueError(f"qsim._native.apply_permutation: perm must be a permutation of "
                         f"range({1 << len(targets)}), got {perm}")
    _check_state(state, "apply_permutation")
    return _permutation(state, perm, targets, controls)


# -------------------------------------------------------------- program ------
# A whole gate list in one call (csrc/program.cpp): the steps are a static int64
# attribute, the coefficients one flat operand, so compile time does not grow
# with the number of gates and no per-gate XLA overhead is paid at run time.

DENSE, DIAGONAL, PERMUTATION, FUSED_DENSE, FUSED_DIAGONAL = 0, 1, 2, 3, 4


def encode_step(kind, targets, controls=(), perm=None, offset=0) -> tuple[int, ...]:
    """One step record: kind, k, nc, coefficient offset, targets, controls[, perm]."""
    rec = (int(kind), len(targets), len(controls), int(offset), *map(int, targets), *map(int, controls))
    return rec + tuple(int(p) for p in perm) if kind == PERMUTATION else rec


def encode_fused(wires, members, diagonal=False) -> tuple[int, ...]:
    """A fused step on ``wires`` whose block the kernel multiplies out at run time from
    ``members``: `encode_step` records whose targets and controls are POSITIONS in ``wires``
    (0 = ``wires[0]``, the block's most significant bit), applied first to last."""
    kind = FUSED_DIAGONAL if diagonal else FUSED_DENSE
    rec = (kind, len(wires), 0, 0, *map(int, wires), len(members))
    return rec + tuple(x for m in members for x in m)


# Batching: the kernels take states with leading batch dimensions and coefficients
# either shared (no batch) or one row per state. A custom vmap rule keeps shared
# coefficients shared (vmapping over inputs only must not copy every gate matrix
# per sample) and broadcasts an unbatched state when the coefficients are batched.
def _batched(raw, n_states):
    f = jax.custom_batching.custom_vmap(raw)

    @f.def_vmap
    def rule(axis_size, in_batched, *args):
        if not any(in_batched):
            return raw(*args), False
        states = [a if b else jnp.broadcast_to(a, (axis_size,) + a.shape)
                  for a, b in zip(args[:n_states], in_batched[:n_states])]
        out = raw(*states, *args[n_states:])
        return out, jax.tree.map(lambda _: True, out)

    return f


@functools.lru_cache(maxsize=256)
def _program_fn(code, mode):
    def raw(state, coefs):
        return jax.ffi.ffi_call("qsim_native_program", _like(state), vmap_method="broadcast_all",
                                input_output_aliases={0: 0})(
            state, coefs, code=np.asarray(code, np.int64), mode=np.int64(mode))
    return _batched(raw, 1)


@functools.lru_cache(maxsize=256)
def _program_vjp_fn(code, want_ct):
    def raw(y, g, coefs):
        ct = jax.ShapeDtypeStruct(y.shape[:-1] + coefs.shape[-1:], y.dtype)
        return jax.ffi.ffi_call("qsim_native_program_vjp", (_like(y), _like(g), ct),
                                vmap_method="broadcast_all", input_output_aliases={0: 0, 1: 1})(
            y, g, coefs, code=np.asarray(code, np.int64), want_ct=np.int64(want_ct))
    return _batched(raw, 2)


def _program_call(state, coefs, code, mode):
    return _program_fn(code, mode)(state, coefs)


def _program_vjp_call(y, g, coefs, code, want_ct):
    return _program_vjp_fn(code, int(want_ct))(y, g, coefs)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _program(state, coefs, code):
    return _program_call(state, coefs, code, 0)


def _program_fwd(state, coefs, code):
    y = _program_call(state.value, coefs.value, code, 0)
    return y, (y if coefs.perturbed else None, coefs.value)


def _program_bwd(code, res, g):
    y, coefs = res
    if _is_zero(g):
        return None, None
    if y is None:   # constant coefficients: the state cotangent is the transposed program
        return _program_call(g, coefs, code, 2), None
    _, g_x, ct = _program_vjp_call(y, g, coefs, code, 1)
    return g_x, _unbroadcast(ct, coefs.shape)


_program.defvjp(_program_fwd, _program_bwd, symbolic_zeros=True)


def apply_program(state, coefs, code, inverse=False):
    """``state`` after every step of ``code`` (or, with ``inverse``, after the inverse program).

    Args:
      state: ``(2**n,)`` complex64 or complex128.
      coefs: ``(total,)`` coefficients of the steps (cast to the state's dtype).
      code: tuple of step records from `encode_step` (static).
      inverse: run ``U_1^dagger ... U_S^dagger`` (steps must be unitary); not differentiable.

    Reverse-mode AD: the state cotangent is the transposed program; the coefficients'
    cotangent comes from one adjoint sweep (`program_adjoint`) that un-applies each step
    with its conjugate transpose, so differentiating through ``coefs`` needs unitary steps
    (every gate and fused block of a circuit is).
    """
    _check_state(state, "apply_program")
    coefs = jnp.asarray(coefs).astype(state.dtype)
    if inverse:
        return _program_call(state, coefs, code, 1)
    return _program(state, coefs, code)


def program_adjoint(code, coefs, y, g, want_ct=True):
    """The adjoint sweep of a program: from its output ``y`` and cotangent ``g``, returns
    ``(x, g_x, ct)``: its input, the input's cotangent and the coefficients' cotangent
    (zeros when ``want_ct`` is False)."""
    coefs = jnp.asarray(coefs).astype(y.dtype)
    x, g_x, ct = _program_vjp_call(y, g, coefs, code, int(want_ct))
    return x, g_x, _unbroadcast(ct, coefs.shape)
