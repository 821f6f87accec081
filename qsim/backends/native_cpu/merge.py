"""One gate per wire between entanglers: runs of one-qubit steps merged into one 2x2 step, and
CNOT chains into one linear step.

A state that sits in cache runs its program member by member (`primitives.UNFUSE_MAX_QUBITS`):
there every pass costs about the same whatever its gate, so the number of passes is the time. A
hardware-efficient layer writes RY and RZ on every wire (and an angle encoding one more RY
before the first layer): two or three one-qubit passes per wire where one 2x2 matrix does. This
pass merges each such run into one step whose coefficients are the product of the members'
(a diagonal when every member is diagonal, a permutation when every member is one), computed
with a few vectorised JAX ops on the coefficient array, so the product and its derivatives
(backprop through the native sweep, forward mode, Hessians) are ordinary JAX.

Steps on different wires commute, so a wire's run can be emitted just before the next step that
touches the wire with more than one-qubit steps (a barrier) or at the end; steps on two or more
wires (a CNOT, a controlled rotation, a two-qubit diagonal) are barriers for all their wires.
Likewise a run of three or more CNOTs and SWAPs (the entangling chain of a layer) becomes one
linear step (`steps.LINEAR`): the network maps basis indices linearly over GF(2), so one gather
pass replaces one pass per gate. One-qubit runs on other wires commute with it and are emitted
before it; a step on one of its wires closes it.
The plan is static: it depends on the step records only, not on the coefficients.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from .steps import (DENSE, DIAGONAL, FUSED_DENSE, FUSED_DIAGONAL, PERMUTATION, decode, encode, encode_linear,
                    encode_step)

_ZERO, _ONE = -2, -1   # indices past the coefficients: an appended 0 and 1
_LINEAR = object()      # marks a run of CNOTs and SWAPs in the plan


class Plan(NamedTuple):
    code: tuple[int, ...]     # the merged program
    keep: np.ndarray          # coefficient indices copied as they are (unmerged steps)
    dense: np.ndarray         # (G, m, 4) indices of each merged dense step's member matrices
    diag: np.ndarray          # (H, m, 2) indices of each merged diagonal step's member diagonals


def _one_qubit(step) -> bool:
    if step.kind in (FUSED_DENSE, FUSED_DIAGONAL) or step.controls:
        return False
    return len(step.targets) == 1


def _size(step) -> int:
    k = len(step.targets)
    return {DENSE: 1 << 2 * k, DIAGONAL: 1 << k}.get(step.kind, 0)


def _matrix_index(step) -> list[int]:
    """Where the 2x2 matrix of a one-qubit step is found, row-major (coefficients, then 0 and 1)."""
    o = step.offset
    if step.kind == DENSE:
        return [o, o + 1, o + 2, o + 3]
    if step.kind == DIAGONAL:
        return [o, _ZERO, _ZERO, o + 1]
    p = step.perm             # out[j] = in[perm[j]]: row j has its 1 in column perm[j]
    return [_ONE if p[0] == 0 else _ZERO, _ONE if p[0] == 1 else _ZERO,
            _ONE if p[1] == 0 else _ZERO, _ONE if p[1] == 1 else _ZERO]


def _compose_perm(run) -> tuple[int, int]:
    perm = (0, 1)
    for s in run:             # apply s after perm: out[j] = mid[s.perm[j]] = in[perm[s.perm[j]]]
        perm = tuple(perm[s.perm[j]] for j in range(2))
    return perm


def _linear(step) -> bool:
    """A CNOT or a SWAP: a permutation of basis indices linear over GF(2)."""
    if step.kind != PERMUTATION:
        return False
    cnot = len(step.targets) == 1 and len(step.controls) == 1 and step.perm == (1, 0)
    return cnot or (len(step.targets) == 2 and not step.controls and step.perm == (0, 2, 1, 3))


def _linear_record(run) -> tuple[int, ...]:
    """One linear step for a run of CNOTs and SWAPs (first applied first).

    The run maps basis index i to ``F(i)`` (``out[i] = in[F(i)]``) with ``F = F_1 o ... o F_m``;
    images are kept as wire masks (bit w = wire w).
    """
    wires = sorted({w for s in run for w in s.targets + s.controls})
    image = {w: 1 << w for w in wires}
    for s in run:                                   # H <- H o F_s
        if s.controls:                               # CNOT: e_c -> e_c + e_t
            c, t = s.controls[0], s.targets[0]
            image[c] ^= image[t]
        else:                                        # SWAP: e_a <-> e_b
            a, b = s.targets
            image[a], image[b] = image[b], image[a]
    k = len(wires)
    cols = [sum(1 << (k - 1 - t) for t, u in enumerate(wires) if (image[w] >> u) & 1) for w in wires]
    return encode_linear(wires, cols)


# A run of CNOTs and SWAPs becomes one linear step from this many (one gather pass costs about
# what two CNOT passes do).
LINEAR_MIN_STEPS = 3


@functools.lru_cache(maxsize=1024)
def plan(code) -> Plan | None:
    """The merged program of ``code`` and where its coefficients come from; None when nothing
    merges (the program is run as it is)."""
    steps = decode(code)
    pending: dict[int, list] = {}       # one-qubit runs, per wire; never on a wire of `lin`
    lin: list = []                      # the open run of CNOTs and SWAPs
    lin_wires: set = set()
    order: list[list] = []              # emitted runs, in program order (a run of one is the step)

    def flush(wires):
        for w in wires:
            run = pending.pop(w, None)
            if run:
                order.append(run)

    def close():
        if len(lin) >= LINEAR_MIN_STEPS:
            order.append([_LINEAR, *lin])
        else:
            order.extend([s] for s in lin)
        lin.clear()
        lin_wires.clear()

    for s in steps:
        wires = tuple(s.targets) + tuple(s.controls)
        if _one_qubit(s):
            if s.targets[0] in lin_wires:
                close()
            pending.setdefault(s.targets[0], []).append(s)
        elif _linear(s):
            flush(wires)            # these one-qubit runs commute with the open linear run
            lin.append(s)
            lin_wires.update(wires)
        else:
            if lin_wires.intersection(wires):
                close()
            flush(wires)
            order.append([s])
    flush(sorted(pending))
    close()
    if all(len(run) == 1 for run in order):
        return None

    keep, dense, diag = [], [], []
    for run in order:
        if run[0] is _LINEAR:
            pass
        elif len(run) == 1:
            keep.append(run[0])
        elif all(s.kind == PERMUTATION for s in run):
            pass
        elif all(s.kind == DIAGONAL for s in run):
            diag.append(run)
        else:
            dense.append(run)

    # New layout: kept coefficients first, then the merged dense blocks, then merged diagonals.
    keep_index, new_offset, at = [], {}, 0
    for s in keep:
        new_offset[id(s)] = at
        keep_index += range(s.offset, s.offset + _size(s))
        at += _size(s)
    for run in dense:
        new_offset[id(run[0])] = at
        at += 4
    for run in diag:
        new_offset[id(run[0])] = at
        at += 2

    out = []
    for run in order:
        s = run[0]
        if s is _LINEAR:
            out += _linear_record(run[1:])
        elif len(run) == 1:
            out += encode(s._replace(offset=new_offset.get(id(s), 0)))
        elif all(m.kind == PERMUTATION for m in run):
            out += encode_step(PERMUTATION, s.targets, (), _compose_perm(run))
        elif all(m.kind == DIAGONAL for m in run):
            out += encode_step(DIAGONAL, s.targets, (), None, new_offset[id(s)])
        else:
            out += encode_step(DENSE, s.targets, (), None, new_offset[id(s)])

    def padded(runs, width, entry, identity):
        m = max((len(r) for r in runs), default=1)
        idx = np.tile(np.asarray(identity, np.int64), (len(runs), m, 1))
        for g, r in enumerate(runs):
            for j, s in enumerate(r):
                idx[g, j] = entry(s)
        return idx

    dense_idx = padded(dense, 4, _matrix_index, [_ONE, _ZERO, _ZERO, _ONE])
    diag_idx = padded(diag, 2, lambda s: [s.offset, s.offset + 1], [_ONE, _ONE])
    return Plan(tuple(out), np.asarray(keep_index, np.int64), dense_idx, diag_idx)


def _mul2(a, b):
    """``a @ b`` for 2x2 matrices stored row-major on the last axis (length 4)."""
    a0, a1, a2, a3 = (a[..., i] for i in range(4))
    b0, b1, b2, b3 = (b[..., i] for i in range(4))
    return jnp.stack([a0 * b0 + a1 * b2, a0 * b1 + a1 * b3, a2 * b0 + a3 * b2, a2 * b1 + a3 * b3], -1)


def coefficients(p: Plan, c):
    """The merged program's coefficients from the original ones ``c`` (``(..., total)``)."""
    total = c.shape[-1]
    ext = jnp.concatenate([c, jnp.zeros(c.shape[:-1] + (1,), c.dtype), jnp.ones(c.shape[:-1] + (1,), c.dtype)], -1)
    fix = lambda idx: np.where(idx < 0, total + 2 + idx, idx)   # noqa: E731  (-2 -> 0 slot, -1 -> 1 slot)
    pieces = []
    if p.keep.size:
        pieces.append(c[..., p.keep])
    if p.dense.size:
        mats = ext[..., fix(p.dense)]                  # (..., G, m, 4), first member first
        acc = mats[..., 0, :]
        for j in range(1, mats.shape[-2]):
            acc = _mul2(mats[..., j, :], acc)
        pieces.append(acc.reshape(acc.shape[:-2] + (-1,)))
    if p.diag.size:
        d = jnp.prod(ext[..., fix(p.diag)], axis=-2)   # (..., H, 2)
        pieces.append(d.reshape(d.shape[:-2] + (-1,)))
    if not pieces:
        return jnp.zeros(c.shape[:-1] + (1,), c.dtype)
    return jnp.concatenate(pieces, -1) if len(pieces) > 1 else pieces[0]
