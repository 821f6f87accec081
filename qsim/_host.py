"""Concrete gate programs multiplied out on the host, in double precision.

A long program whose parameters are all concrete (a QASM file, a compiled
circuit) is fused before it runs. Here its gate matrices are computed in
complex128 whatever ``jax_enable_x64`` says, every fused block is multiplied in
complex128 numpy, and each block is cast to the circuit's dtype once (by the
caller). The state then sees one float32 rounding per *block* instead of one per
gate, and the blocks carry no systematic bias: a gate matrix rounded to float32
is slightly non-unitary in the same direction every time it is used (``H`` in
float32 shrinks the norm by 6e-8 per application), which is what makes the norm
of a 30,000-gate complex64 run drift by 1e-4 to 1e-3. User matrices that arrive
already rounded to complex64 are projected back onto the nearest unitary
(polar factor) first, for the same reason.

Blocks are built by applying each member to the block matrix through cached
index maps (a gather and a small matmul per member, no ``kron``), so a
30,000-gate program is multiplied out in a fraction of a second.

Blocks follow the SPEC's wire order: the first wire of a block is its most
significant bit.
"""

from __future__ import annotations

import functools

import jax
import numpy as np

from ._gates import gate_matrix, user_matrix
from ._ir import Signature

# Widest block a concrete program is fused into when the circuit leaves the width to qsim
# (``max_fused_qubits=None``) and has at most `SMALL` qubits: fewer, wider blocks mean fewer
# float32 passes over the state (a 5-qubit program is one block). Native kernels take 5 targets.
WIDE = 5
SMALL = 12


def concrete_width(n_qubits, k):
    """Fusion width for a concrete program on ``n_qubits`` wires whose default width is ``k``."""
    return max(k, min(WIDE, n_qubits)) if n_qubits <= SMALL else k


@functools.lru_cache(maxsize=None)
def _batched_matrix64(gate):
    """Jitted, vmapped ``params -> block`` of one gate definition in complex128."""
    return jax.jit(jax.vmap(lambda *p: gate_matrix(gate, p, np.complex128)))


def _nearest_unitary(m):
    """Polar factor of each ``(..., d, d)`` matrix: the closest unitary (exact for a unitary input)."""
    w, _, vh = np.linalg.svd(m)
    return w @ vh


def _kind_blocks(gate, rows):
    """complex128 blocks of several instances of one gate kind (``rows``: their parameter tuples)."""
    if gate.structure == "permutation":
        return [None] * len(rows)
    if gate.matrix is user_matrix:
        m = np.stack([np.asarray(r[0]) for r in rows])
        if m.dtype == np.complex128:
            return list(m)
        m = m.astype(np.complex128)
        return list(m / np.abs(m) if gate.structure == "diagonal" else _nearest_unitary(m))
    if gate.n_params == 0:
        m = np.asarray(gate.matrix(), np.complex128)
        return [m] * len(rows)
    cols = [np.asarray([np.asarray(r[j], np.float64) for r in rows]) for j in range(gate.n_params)]
    with jax.enable_x64(True), jax.ensure_compile_time_eval():
        out = np.asarray(_batched_matrix64(gate)(*cols))
    return list(out)


def gate_blocks(program, params):
    """complex128 block of every gate record: its target matrix, its diagonal, or None (permutation)."""
    by_gate: dict = {}
    for i, op in enumerate(program):
        by_gate.setdefault(op.gate, []).append(i)
    blocks = [None] * len(program)
    for gate, idx in by_gate.items():
        for i, b in zip(idx, _kind_blocks(gate, [params[i] for i in idx])):
            blocks[i] = b
    return blocks


# -------------------------------------------------------------- index maps ------
@functools.lru_cache(maxsize=None)
def _positions(k, pos):
    """For a member on positions ``pos`` of a ``k``-wire block: the member index of every block
    index ``(2^k,)``, and the flat gather map of its embedded matrix ``(2^k, 2^k)`` (entries where
    the other bits differ point one past the member matrix, at a zero)."""
    a = len(pos)
    idx = np.arange(1 << k)
    sub = np.zeros(1 << k, np.int64)
    for j, p in enumerate(pos):
        sub |= ((idx >> (k - 1 - p)) & 1) << (a - 1 - j)
    mask = sum(1 << (k - 1 - p) for p in pos)
    rest = idx & ~mask
    flat = np.where(rest[:, None] == rest[None, :], sub[:, None] * (1 << a) + sub[None, :], 1 << (2 * a))
    return sub, flat


@functools.lru_cache(maxsize=None)
def _row_source(k, pos, perm, n_controls):
    """Row gather of a (controlled) permutation member: ``(P U)[r] = U[src[r]]``."""
    sub, _ = _positions(k, pos)
    a = len(pos)
    t = a - n_controls
    full = np.arange(1 << a)
    on = full >> t == (1 << n_controls) - 1                 # every control is 1
    full[on] = ((1 << n_controls) - 1) << t | np.asarray(perm)[full[on] & ((1 << t) - 1)]
    src_sub = full[sub]
    idx = np.arange(1 << k)
    out = idx.copy()
    for j, p in enumerate(pos):
        bit = 1 << (k - 1 - p)
        out = np.where((src_sub >> (a - 1 - j)) & 1, out | bit, out & ~bit)
    return out


def _full_member(op, block):
    """Dense matrix of a dense gate on all its wires (controls included)."""
    nc = op.gate.n_controls
    if not nc:
        return block
    t = block.shape[0]
    full = np.eye(t << nc, dtype=np.complex128)
    full[-t:, -t:] = block
    return full


def fused_block(members, blocks, wires):
    """The ``(Signature, complex128 block)`` of gate records ``members`` multiplied on sorted ``wires``
    (first member applied first): a diagonal when every member is diagonal, else a dense matrix.

    Each member is applied through its cached index map: a permutation gathers rows, a
    diagonal scales them, a dense member is gathered into the block's shape and multiplied."""
    k = len(wires)
    where = {w: i for i, w in enumerate(wires)}
    if all(m.gate.structure == "diagonal" for m in members):
        d = np.ones(1 << k, np.complex128)
        for m, b in zip(members, blocks):
            d *= b.take(_positions(k, tuple(where[w] for w in m.wires))[0])
        return Signature("diagonal", tuple(wires), (), None), d
    u = None
    for m, b in zip(members, blocks):
        pos = tuple(where[w] for w in m.wires)
        g = m.gate
        if g.structure == "permutation":
            src = _row_source(k, pos, g.perm, g.n_controls)
            u = np.eye(1 << k, dtype=np.complex128)[src] if u is None else u[src]
        elif g.structure == "diagonal":
            d = b.take(_positions(k, pos)[0])
            u = np.diag(d) if u is None else d[:, None] * u
        else:
            e = np.append(_full_member(m, b).reshape(-1), 0).take(_positions(k, pos)[1])
            u = e if u is None else e @ u
    return Signature("dense", tuple(wires), (), None), u


# ------------------------------------------------------- casting once, norm-balanced ------
_CHUNK = 256                                       # blocks per vectorised batch (bounds temporaries)
_SCALES = 1 + np.arange(-16, 16) * 2.0 ** -28      # relative nudges tried on short units (< 1 ulp)


def cast(blocks, dtype, seed=0):
    """``blocks`` (complex128 matrices, diagonals or None) in ``dtype``, rounded without a norm bias.

    Rounding a unitary block to complex64 entry by entry leaves each column's squared norm
    off by up to about 1e-7, and the same way every time the block (or a gate like it) is
    used: over thousands of passes that is what drifts the norm of a long complex64 run.
    Here each *unit* (a column of a matrix, an entry of a diagonal) is rounded with
    unbiased norm: among a few roundings within about one ulp of each component (nearest,
    one component flipped to its other float32 neighbour, the unit nudged by a tiny scale;
    for long columns, the cheapest flips first), it takes the closest one whose squared
    norm is below the exact one or the closest one above, at random with the probabilities
    that make the expected error zero (stochastic rounding, seeded: the same blocks give
    the same result). The norm of a long run then drifts like a random walk of tiny steps
    instead of growing with the number of passes.
    """
    dtype = np.dtype(dtype)
    if dtype != np.complex64:
        return [None if b is None else b.astype(dtype) for b in blocks]
    rng = np.random.default_rng(seed)
    out = list(blocks)
    by_shape: dict = {}
    for i, b in enumerate(blocks):
        if b is not None:
            by_shape.setdefault(b.shape, []).append(i)
    for shape, idx in by_shape.items():
        for s in range(0, len(idx), _CHUNK):
            part = idx[s:s + _CHUNK]
            stack = np.stack([blocks[i] for i in part])
            units = stack[..., None] if len(shape) == 1 else np.swapaxes(stack, -1, -2)  # (P, unit, entry)
            x = np.concatenate([units.real, units.imag], axis=-1)                       # (P, unit, 2 entries)
            r = (_short_units if x.shape[-1] <= 8 else _long_units)(x, rng)
            m = r.shape[-1] // 2
            units = (r[..., :m] + 1j * r[..., m:].astype(np.complex64)).astype(np.complex64)
            cast_stack = units[..., 0] if len(shape) == 1 else np.swapaxes(units, -1, -2)
            for i, b in zip(part, cast_stack):
                out[i] = b
    return out


def _neighbours(x):
    """The nearest float32 ``r`` of each float64 of ``x`` and its other neighbour ``alt`` across ``x``."""
    r = x.astype(np.float32)
    r64 = r.astype(np.float64)
    alt = np.where(r64 < x, np.nextafter(r, np.float32(np.inf)), np.nextafter(r, np.float32(-np.inf)))
    return r, np.where(r64 == x, r, alt)


def _unbiased_pick(err, rng):
    """Index along the last axis of ``err`` (candidate norm errors): the best candidate below
    zero or the best above, drawn so that the expected error is zero."""
    below = np.where(err <= 0, err, -np.inf)
    above = np.where(err >= 0, err, np.inf)
    lo, hi = np.argmax(below, axis=-1), np.argmin(above, axis=-1)
    e_lo = np.take_along_axis(err, lo[..., None], -1)[..., 0]
    e_hi = np.take_along_axis(err, hi[..., None], -1)[..., 0]
    has_lo, has_hi = np.isfinite(np.max(below, axis=-1)), np.isfinite(np.min(above, axis=-1))
    gap = np.where(has_lo & has_hi, e_hi - e_lo, 1.0)
    p_hi = np.where(has_lo & has_hi, -e_lo / np.where(gap > 0, gap, 1.0), has_hi.astype(float))
    return np.where(rng.random(p_hi.shape) < p_hi, hi, lo)


def _short_units(x, rng):
    """float32 of each ``(..., L)`` unit of components, from a few explicit candidates."""
    r, alt = _neighbours(x)
    length = x.shape[-1]
    flips = np.where(np.eye(length, dtype=bool), alt[..., None, :], r[..., None, :])      # one flip each
    scaled = (x[..., None, :] * _SCALES[:, None]).astype(np.float32)
    cands = np.concatenate([r[..., None, :], flips, scaled], axis=-2)                      # (..., K, L)
    err = np.sum(cands.astype(np.float64) ** 2, axis=-1) - np.sum(x ** 2, axis=-1)[..., None]
    pick = _unbiased_pick(err, rng)
    return np.take_along_axis(cands, pick[..., None, None], axis=-2)[..., 0, :]


def _long_units(x, rng):
    """float32 of each ``(..., L)`` unit: nearest rounding plus a prefix of the cheapest flips
    that move its squared norm toward the exact one (components nearest a tie first)."""
    r, alt = _neighbours(x)
    r64, alt64 = r.astype(np.float64), alt.astype(np.float64)
    excess = np.sum(r64 ** 2, axis=-1) - np.sum(x ** 2, axis=-1)
    delta = alt64 ** 2 - r64 ** 2                                    # norm change of one flip
    helps = delta * excess[..., None] < 0
    order = np.argsort(np.where(helps, np.abs(alt64 - x) - np.abs(r64 - x), np.inf), axis=-1)
    gain = np.take_along_axis(np.where(helps, delta, 0.0), order, axis=-1)
    err = excess[..., None] + np.concatenate([np.zeros(gain.shape[:-1] + (1,)), np.cumsum(gain, axis=-1)],
                                             axis=-1)              # after the first m flips, m = 0..L
    n_flips = _unbiased_pick(err, rng)
    flip = np.zeros(x.shape, bool)
    np.put_along_axis(flip, order, np.arange(x.shape[-1]) < n_flips[..., None], axis=-1)
    return np.where(flip, alt, r)
