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


def check_wires(wires, n, where, count=None):
    """Validate a tuple of distinct wires in ``[0, n)``; returns it as a tuple of ints."""
    ws = tuple(wires)
    for w in ws:
        if isinstance(w, bool) or not isinstance(w, (numbers.Integral, np.integer)):
            raise TypeError(f"{where}: wires must be ints, got {w!r} of type {type(w).__name__} in {ws!r}")
        if not 0 <= w < n:
            raise ValueError(f"{where}: wire {w} is out of range for a {n}-qubit circuit "
                             f"(allowed 0..{n - 1}), got wires {ws!r}")
    if len(set(ws)) != len(ws):
        raise ValueError(f"{where}: wires must be distinct within one gate, got {ws!r}")
    if count is not None and len(ws) != count:
        raise ValueError(f"{where}: expects {count} wire(s), got {len(ws)}: {ws!r}")
    return tuple(int(w) for w in ws)


def check_param(x, where, real_dtype):
    """A real scalar parameter (concrete or traced), cast to ``real_dtype``.

    Concrete values stay numpy scalars (no device call per gate, and a circuit built
    inside a trace can still be recognised as concrete and lowered ahead of time).
    """
    dt = getattr(x, "dtype", None)
    if dt is None and not isinstance(x, numbers.Real):
        raise TypeError(f"{where}: parameter must be a real number or a real scalar array, "
                        f"got {x!r} of type {type(x).__name__}")
    if dt is not None and jnp.issubdtype(dt, jnp.complexfloating):
        raise TypeError(f"{where}: parameter must be real, got dtype {dt}")
    shape = getattr(x, "shape", ())
    if shape != ():
        raise ValueError(f"{where}: parameter must be a scalar, got shape {shape} "
                         "(use jax.vmap to batch over parameters)")
    if is_concrete(x):
        return np.asarray(x, real_dtype)
    return jnp.asarray(x, real_dtype)


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
            f"({n_states} statevector(s) of {fmt_bytes(need // n_states // batch)}), but only "
            f"{fmt_bytes(have)} of {what} is free; use fewer qubits or complex64")
