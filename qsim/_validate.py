"""Checks at the API boundary: wires, matrices, parameters, dtypes and memory.

Every check runs on static facts or concrete values, before any statevector is
allocated, and says which function and argument were wrong, what was received
and what is allowed.
"""

from __future__ import annotations

import numbers
import os

import jax
import jax.numpy as jnp
import numpy as np


class StateTooLargeError(ValueError, MemoryError):
    """The statevector (and the work buffers a method needs) would not fit in memory."""


def check_n_qubits(n, where="Circuit"):
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"{where}: n_qubits must be an int, got {n!r} of type {type(n).__name__}")
    if n < 1:
        raise ValueError(f"{where}: n_qubits must be >= 1, got {n}")
    return int(n)


def check_dtype(dtype, where="Circuit"):
    if dtype is None:
        return jnp.dtype(jnp.complex64)
    try:
        dt = jnp.dtype(dtype)
    except TypeError:
        raise TypeError(f"{where}: dtype must be complex64 or complex128, got {dtype!r}") from None
    if dt not in (jnp.dtype(jnp.complex64), jnp.dtype(jnp.complex128)):
        raise TypeError(f"{where}: dtype must be complex64 or complex128, got {dt}")
    if dt == jnp.complex128 and not jax.config.read("jax_enable_x64"):
        raise ValueError(f"{where}: dtype complex128 needs double precision in JAX; enable it first "
                         "with jax.config.update('jax_enable_x64', True) (qsim never changes it for you)")
    return dt


def check_wires(wires, n, where, count=None, *, distinct="within one gate"):
    """Validate a tuple of distinct wires in ``[0, n)``; returns it as a tuple of ints.

    ``distinct`` ends the message for a repeated wire (``"within one gate"`` for gates).
    """
    ws = tuple(wires)
    for w in ws:
        if isinstance(w, bool) or not isinstance(w, (numbers.Integral, np.integer)):
            raise TypeError(f"{where}: wires must be ints, got {w!r} of type {type(w).__name__} in {ws!r}")
        if not 0 <= w < n:
            raise ValueError(f"{where}: wire {w} is out of range for a {n}-qubit circuit "
                             f"(allowed 0..{n - 1}), got wires {ws!r}")
    if len(set(ws)) != len(ws):
        raise ValueError(f"{where}: wires must be distinct {distinct}, got {ws!r}")
    if count is not None and len(ws) != count:
        raise ValueError(f"{where}: expects {count} wire(s), got {len(ws)}: {ws!r}")
    return tuple(int(w) for w in ws)


def check_param(x, where, real_dtype, name="parameter"):
    """A real scalar parameter (concrete or traced), cast to ``real_dtype``.

    Concrete values stay numpy scalars (no device call per gate, and a circuit built
    inside a trace can still be recognised as concrete and lowered ahead of time) and
    must be finite; traced values are not checked (a NaN angle gives a NaN state).
    """
    dt = getattr(x, "dtype", None)
    if dt is None and not isinstance(x, numbers.Real):
        raise TypeError(f"{where}: {name} must be a real number or a real scalar array, "
                        f"got {x!r} of type {type(x).__name__}")
    if dt is not None and jnp.issubdtype(dt, jnp.complexfloating):
        raise TypeError(f"{where}: {name} must be real, got dtype {dt}")
    shape = getattr(x, "shape", ())
    if shape != ():
        raise ValueError(f"{where}: {name} must be a scalar, got shape {shape} "
                         "(use jax.vmap to batch over parameters)")
    if is_concrete(x):
        v = np.asarray(x, real_dtype)
        if not np.isfinite(v):
            raise ValueError(f"{where}: {name} must be a finite real number (radians), got {v}")
        return v
    return jnp.asarray(x, real_dtype)


def check_state(state, n, where, dtype, normalize=False):
    """An initial state of shape ``(2**n,)`` cast to ``dtype``.

    A concrete state must have norm 1 (within 1e-5 when it or ``dtype`` is single
    precision, 1e-10 otherwise), or is divided by its norm when ``normalize``. A traced
    state is normalised when ``normalize`` and otherwise taken as it is (not checked).
    """
    shape = tuple(state.shape if hasattr(state, "shape") else np.shape(state))
    if shape != (1 << n,):
        raise ValueError(f"{where}: state for {n} qubits must have shape ({1 << n},), got {shape}")
    src = getattr(state, "dtype", None)
    s = jnp.asarray(state).astype(dtype)
    with jax.ensure_compile_time_eval():             # a concrete state is checked inside jit too
        norm = jnp.sqrt(jnp.sum(jnp.abs(jnp.asarray(state).astype(dtype)) ** 2))
    if not is_concrete(norm):
        return s / norm.astype(s.dtype) if normalize else s
    value = float(norm)
    if not np.isfinite(value):
        raise ValueError(f"{where}: state has non-finite amplitudes (norm {value})")
    if normalize:
        if value == 0:
            raise ValueError(f"{where}: state is all zeros (norm 0) and cannot be normalised")
        return s / value
    single = dtype == jnp.complex64 or (src is not None and jnp.issubdtype(src, jnp.inexact)
                                        and jnp.finfo(src).bits <= 32)
    if abs(value - 1) > (1e-5 if single else 1e-10):
        raise ValueError(f"{where}: state must have norm 1, got norm {value:.6g} (sum of |amplitude|^2 = "
                         f"{value ** 2:.6g}); pass normalize=True to divide it by its norm")
    return s


def check_key(key, where):
    """A JAX random key: a typed key (``jax.random.key``) or a raw uint32 one (``jax.random.PRNGKey``)."""
    dt = getattr(key, "dtype", None)
    typed = dt is not None and jnp.issubdtype(dt, jax.dtypes.prng_key)
    if typed or (dt == jnp.uint32 and jnp.ndim(key) >= 1):
        return key
    got = repr(key) if dt is None or isinstance(key, np.generic) else f"an array of shape {jnp.shape(key)} and dtype {dt}"
    raise TypeError(f"{where}: key must be a JAX random key, e.g. jax.random.key(0), got {got} of type "
                    f"{type(key).__name__}; for an int seed pass jax.random.key(seed)")


def is_concrete(x) -> bool:
    return not isinstance(x, jax.core.Tracer)


def check_matrix(u, k, where, dtype, unitary_atol=None):
    """A ``(2^k, 2^k)`` matrix, unitary when concrete."""
    u = jnp.asarray(u)
    dim = 1 << k
    if u.shape != (dim, dim):
        raise ValueError(f"{where}: matrix for {k} wire(s) must have shape ({dim}, {dim}), got {u.shape}")
    if is_concrete(u):
        un = np.asarray(u, dtype=np.complex128)
        atol = unitary_atol or (1e-5 if dtype == jnp.complex64 else 1e-10) * dim
        err = np.abs(un.conj().T @ un - np.eye(dim)).max()
        if not np.isfinite(err) or err > atol:
            raise ValueError(f"{where}: matrix is not unitary (max |U^dagger U - I| = {err:.2e}, "
                             f"allowed {atol:.0e})")
    return u.astype(dtype)


def available_bytes() -> tuple[int, str]:
    """Memory available for states on the default device, and where it was read."""
    dev = jax.devices()[0]
    if dev.platform != "cpu":
        stats = dev.memory_stats() or {}
        if "bytes_limit" in stats:
            return int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0)), f"{dev.device_kind} memory"
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024, "available host RAM"
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), "host RAM"


def fmt_bytes(b) -> str:
    b = int(b)
    for i, unit in enumerate(("B", "KiB", "MiB", "GiB", "TiB", "PiB")):
        if b < 1024 ** (i + 1) or unit == "PiB":
            return f"{b / 1024 ** i:.1f} {unit}" if b < 1024 ** 7 else f"2^{b.bit_length() - 51} PiB"


def check_memory(n, dtype, n_states, where, batch=1):
    """Raise `StateTooLargeError` if ``n_states`` statevectors of ``n`` qubits do not fit."""
    need = (1 << n) * jnp.dtype(dtype).itemsize * n_states * batch
    have, what = available_bytes()
    if need > have:
        raise StateTooLargeError(
            f"{where}: {n} qubits in {jnp.dtype(dtype).name} need {fmt_bytes(need)} "
            f"({n_states} statevector(s) of {fmt_bytes(need // n_states // batch)}"
            f"{f', batch of {batch}' if batch > 1 else ''}), but only {fmt_bytes(have)} of {what} is free; "
            f"what would help: {', '.join(_memory_remedies(dtype, n_states, batch))}")


def _memory_remedies(dtype, n_states, batch):
    """What would make a state fit, given what the guard counted."""
    out = ["fewer qubits"]
    if jnp.dtype(dtype) == jnp.complex128:
        out.append("complex64 (half the memory)")
    if n_states > 4:
        out.append('diff="adjoint" (4 states whatever the depth, instead of one saved state per layer)')
    if batch > 1:
        out.append("a smaller batch")
    return out + ["a machine with more memory"]


def check_shots(shots, where):
    """A positive Python int shot count (static: it sets array shapes)."""
    if isinstance(shots, bool) or not isinstance(shots, (int, np.integer)):
        raise TypeError(f"{where}: shots must be a positive int, got {shots!r} of type {type(shots).__name__}")
    if shots < 1:
        raise ValueError(f"{where}: shots must be a positive int, got {shots!r}")
    return int(shots)
