"""Noise channels: their table, checks, Kraus operators and superoperators.

A channel is a CPTP map ``E(rho) = sum_i K_i rho K_i^dagger`` on one or more
wires (the first wire is the most significant bit of a Kraus matrix index, as
for gates). The SPEC's channels follow PennyLane's conventions:

- ``depolarizing(p)``:       ``sqrt(1-p) I, sqrt(p/3) X, sqrt(p/3) Y, sqrt(p/3) Z``
- ``amplitude_damping(g)``:  ``[[1, 0], [0, sqrt(1-g)]], [[0, sqrt(g)], [0, 0]]``
- ``phase_damping(g)``:      ``[[1, 0], [0, sqrt(1-g)]], [[0, 0], [0, sqrt(g)]]``
- ``bit_flip(p)``:           ``sqrt(1-p) I, sqrt(p) X``;  ``phase_flip(p)``: ``sqrt(1-p) I, sqrt(p) Z``
- ``pauli_channel(px, py, pz)``: ``sqrt(1-px-py-pz) I, sqrt(px) X, sqrt(py) Y, sqrt(pz) Z``
- ``kraus(ops)``: any CPTP set, ``ops`` of shape ``(m, 2**k, 2**k)``.

Beyond the SPEC: ``two_qubit_depolarizing(p)`` (``sqrt(1-p) II`` and ``sqrt(p/15) P``
for the 15 other two-qubit Pauli words, as Cirq's ``depolarize(p, n_qubits=2)``) and
``thermal_relaxation(t1, t2, time)`` (Qiskit Aer's ``thermal_relaxation_error`` with no
excited-state population: ``rho_11 -> rho_11 e^{-t/T1}``, ``rho_01 -> rho_01 e^{-t/T2}``,
``T2 <= 2 T1``; here amplitude damping ``g = 1 - e^{-t/T1}`` then phase damping
``l = 1 - e^{-2t/T2 + t/T1}``).

A *Pauli mixture* (depolarizing, bit/phase flip, Pauli channel) is kept as its
probabilities and constant unitaries: its superoperator ``sum_i p_i U_i (x) conj(U_i)``
is linear in the probabilities (no ``sqrt`` whose derivative blows up at 0), and a
trajectory picks a branch with state-independent probabilities.
"""

from __future__ import annotations

import functools
import itertools
import numbers
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ._ir import ChannelOp
from ._validate import is_concrete

_PAULI = {"I": np.eye(2), "X": np.array([[0, 1], [1, 0]]), "Y": np.array([[0, -1j], [1j, 0]]),
          "Z": np.diag([1, -1])}


class ChannelDef(NamedTuple):
    """A channel of the table: its wires, named parameters and how it is built from them."""

    name: str
    n_wires: int | None            # None: from the Kraus operators (``kraus``)
    param_names: tuple[str, ...]
    unitaries: np.ndarray | None   # Pauli mixtures: constant (m, d, d) unitaries
    probs: Callable | None         # Pauli mixtures: params -> (m,) branch probabilities
    kraus: Callable | None         # other channels: params -> (m, d, d) Kraus operators
    superop: Callable | None = None  # closed-form superoperator (no sqrt at the ends of the range)


def _words(k):
    mats = [functools.reduce(np.kron, [_PAULI[p] for p in w]) for w in itertools.product("IXYZ", repeat=k)]
    return np.stack(mats).astype(np.complex128)


def _depolarizing(p):
    return jnp.stack([1 - p, p / 3, p / 3, p / 3])


def _depolarizing2(p):
    return jnp.concatenate([jnp.reshape(1 - p, (1,)), jnp.full((15,), p / 15, jnp.result_type(p))])


def _two(p):
    return jnp.stack([1 - p, p])


def _pauli(px, py, pz):
    return jnp.stack([1 - px - py - pz, px, py, pz])


def _damping(gamma, decay_wire_is_excited):
    one, zero = jnp.ones_like(gamma), jnp.zeros_like(gamma)
    k0 = jnp.stack([jnp.stack([one, zero]), jnp.stack([zero, jnp.sqrt(1 - gamma)])])
    s = jnp.sqrt(gamma)
    k1 = jnp.stack([jnp.stack([zero, s]), jnp.stack([zero, zero])]) if decay_wire_is_excited else \
        jnp.stack([jnp.stack([zero, zero]), jnp.stack([zero, s])])
    return jnp.stack([k0, k1])


def _amplitude_damping(gamma):
    return _damping(gamma, True)


def _phase_damping(gamma):
    return _damping(gamma, False)


def _thermal_relaxation(t1, t2, time):
    gamma = 1 - jnp.exp(-time / t1)
    lam = 1 - jnp.exp(-2 * time / t2 + time / t1)
    a, p = _amplitude_damping(gamma), _phase_damping(jnp.clip(lam, 0, 1))
    return jnp.einsum("iab,jbc->ijac", a, p).reshape(4, 2, 2)


def _relaxation_superop(gamma, coherence):
    """``rho_00 += g rho_11, rho_11 *= 1 - g, rho_01 *= c`` in the ``vec`` basis (00, 01, 10, 11)."""
    one, zero = jnp.ones_like(gamma), jnp.zeros_like(gamma)
    return jnp.stack([jnp.stack([one, zero, zero, gamma]), jnp.stack([zero, coherence, zero, zero]),
                      jnp.stack([zero, zero, coherence, zero]), jnp.stack([zero, zero, zero, 1 - gamma])])


def _amplitude_damping_superop(gamma):
    return _relaxation_superop(gamma, jnp.sqrt(1 - gamma))


def _phase_damping_superop(gamma):
    return _relaxation_superop(jnp.zeros_like(gamma), jnp.sqrt(1 - gamma))


def _thermal_relaxation_superop(t1, t2, time):
    return _relaxation_superop(1 - jnp.exp(-time / t1), jnp.exp(-time / t2))


def _identity_kraus(ops):
    return ops


CHANNELS: dict[str, ChannelDef] = {c.name: c for c in [
    ChannelDef("depolarizing", 1, ("p",), _words(1), _depolarizing, None),
    ChannelDef("bit_flip", 1, ("p",), _words(1)[:2], _two, None),
    ChannelDef("phase_flip", 1, ("p",), _words(1)[::3], _two, None),
    ChannelDef("pauli_channel", 1, ("px", "py", "pz"), _words(1), _pauli, None),
    ChannelDef("two_qubit_depolarizing", 2, ("p",), _words(2), _depolarizing2, None),
    ChannelDef("amplitude_damping", 1, ("gamma",), None, None, _amplitude_damping, _amplitude_damping_superop),
    ChannelDef("phase_damping", 1, ("gamma",), None, None, _phase_damping, _phase_damping_superop),
    ChannelDef("thermal_relaxation", 1, ("t1", "t2", "time"), None, None, _thermal_relaxation,
               _thermal_relaxation_superop),
    ChannelDef("kraus", None, ("ops",), None, None, _identity_kraus),
]}


def is_mixture(name) -> bool:
    """Whether the channel is a mixture of constant unitaries (state-independent branch probabilities)."""
    return CHANNELS[name].unitaries is not None


def n_params(op: ChannelOp) -> int:
    return len(CHANNELS[op.name].param_names)


# ------------------------------------------------------------------ checks ------

def _scalar(x, where, name, real_dtype):
    dt = getattr(x, "dtype", None)
    if (dt is None and (isinstance(x, bool) or not isinstance(x, numbers.Real))) or \
            (dt is not None and not (jnp.issubdtype(dt, jnp.floating) or jnp.issubdtype(dt, jnp.integer))):
        raise TypeError(f"{where}: {name} must be a real number, got {x!r} of type {type(x).__name__}")
    if jnp.shape(x) != ():
        raise ValueError(f"{where}: {name} must be a scalar, got shape {jnp.shape(x)} "
                         "(use jax.vmap to batch over noise parameters)")
    if is_concrete(x):
        v = np.asarray(x, real_dtype)
        if np.isnan(v):
            raise ValueError(f"{where}: {name} must be a number, got NaN")
        return v
    return jnp.asarray(x, real_dtype)


def _check_range(where, name, params, real_dtype):
    """Probabilities in [0, 1] (summing to at most 1), times positive: on concrete values only."""
    vals = {k: float(v) for k, v in params.items() if is_concrete(v)}
    eps = 1e-6 if real_dtype == np.float32 else 1e-12
    if name == "thermal_relaxation":
        for k in ("t1", "t2"):
            if k in vals and not vals[k] > 0:
                raise ValueError(f"{where}: {k} must be > 0 (a time; may be inf), got {vals[k]}")
        if "time" in vals and not (0 <= vals["time"] < np.inf):
            raise ValueError(f"{where}: time must be finite and >= 0, got {vals['time']}")
        if "t1" in vals and "t2" in vals and vals["t2"] > 2 * vals["t1"] * (1 + eps):
            raise ValueError(f"{where}: t2 must be <= 2 * t1 (a physical qubit), got t1={vals['t1']}, "
                             f"t2={vals['t2']}")
        return
    for k, v in vals.items():
        if not -eps <= v <= 1 + eps:
            raise ValueError(f"{where}: {k} must be a probability in [0, 1], got {v}")
    if len(vals) == 3 and sum(vals.values()) > 1 + eps:
        raise ValueError(f"{where}: px + py + pz must be <= 1, got {sum(vals.values())}")


def _check_kraus(ops, wires, where, dtype):
    ops = jnp.asarray(ops) if not isinstance(ops, (list, tuple)) else jnp.stack([jnp.asarray(o) for o in ops])
    if ops.ndim == 2:
        ops = ops[None]
    d = 1 << len(wires)
    if ops.ndim != 3 or ops.shape[1:] != (d, d) or ops.shape[0] < 1:
        raise ValueError(f"{where}: ops for {len(wires)} wire(s) must have shape (m, {d}, {d}) "
                         f"(m >= 1 Kraus operators), got {ops.shape}")
    ops = ops.astype(dtype)
    if is_concrete(ops):
        k = np.asarray(ops, np.complex128)
        err = np.abs(np.einsum("mba,mbc->ac", k.conj(), k) - np.eye(d)).max()
        atol = (1e-5 if dtype == jnp.complex64 else 1e-10) * d
        if not np.isfinite(err) or err > atol:
            raise ValueError(f"{where}: ops are not a CPTP map: max |sum_i K_i^dagger K_i - I| = {err:.2e} "
                             f"(allowed {atol:.0e})")
    return ops


def validate(name, wires, params, real_dtype, dtype):
    """Check a channel's wires and parameters; return its record and parameters cast to the dtypes.

    Args:
      name: a channel of `CHANNELS`.
      wires: tuple of distinct wires (already range-checked).
      params: the channel's parameters in the order of its ``param_names``.
    Returns:
      ``(ChannelOp(name, wires), params)``; real scalars as ``real_dtype`` (numpy when concrete),
      Kraus operators as ``dtype``.
    Raises:
      ValueError: unknown channel, wrong wire count, NaN or out-of-range probability, Kraus
        operators of the wrong shape or (when concrete) not trace preserving.
      TypeError: a parameter that is not a real scalar.
    """
    where = f"Circuit.{name}"
    if name not in CHANNELS:
        raise ValueError(f"qsim: unknown channel {name!r}; channels are {sorted(CHANNELS)}")
    cdef = CHANNELS[name]
    if cdef.n_wires is not None and len(wires) != cdef.n_wires:
        raise ValueError(f"{where}: acts on {cdef.n_wires} wire(s), got {len(wires)}: {tuple(wires)}")
    if len(params) != len(cdef.param_names):
        raise ValueError(f"{where}: takes {len(cdef.param_names)} parameter(s) {cdef.param_names}, "
                         f"got {len(params)}")
    if name == "kraus":
        return ChannelOp(name, tuple(wires)), (_check_kraus(params[0], wires, where, dtype),)
    real_dtype = np.dtype(real_dtype)
    out = tuple(_scalar(x, where, k, real_dtype) for k, x in zip(cdef.param_names, params))
    _check_range(where, name, dict(zip(cdef.param_names, out)), real_dtype)
    return ChannelOp(name, tuple(wires)), out


# ------------------------------------------------------------ the maps ------

def mixture(name, params, dtype):
    """``(probabilities (m,), unitaries (m, d, d))`` of a Pauli mixture."""
    cdef = CHANNELS[name]
    return cdef.probs(*params), jnp.asarray(cdef.unitaries, dtype)


def kraus_ops(name, params, dtype):
    """The Kraus operators ``(m, 2**k, 2**k)`` in ``dtype`` (differentiable in traced parameters)."""
    cdef = CHANNELS[name]
    if cdef.unitaries is not None:
        p, u = mixture(name, params, dtype)
        return jnp.sqrt(jnp.clip(p, 0, None)).astype(dtype)[:, None, None] * u
    return jnp.asarray(cdef.kraus(*params)).astype(dtype)


def superop(name, params, dtype):
    """``S = sum_i K_i (x) conj(K_i)``, shape ``(4**k, 4**k)``: ``vec(K rho K^dagger) = S vec(rho)``
    with ``vec(rho)[r * 2**k + c] = rho[r, c]`` (rows of rho on the first k wires)."""
    cdef = CHANNELS[name]
    if cdef.superop is not None:
        return jnp.asarray(cdef.superop(*params)).astype(dtype)
    if cdef.unitaries is not None:
        p, u = mixture(name, params, dtype)
        k, weights = u, p.astype(dtype)
    else:
        k = kraus_ops(name, params, dtype)
        weights = None
    d = k.shape[-1]
    s = jnp.einsum("iab,icd->iacbd", k, jnp.conj(k), precision=jax.lax.Precision.HIGHEST)
    s = jnp.tensordot(weights, s, axes=1) if weights is not None else s.sum(0)
    return s.reshape(d * d, d * d)
