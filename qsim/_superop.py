"""Lowering a logical program onto the 2n wires of a density matrix (see `_density`).

``U rho U^dagger`` is ``U`` on the row wires ``w`` and ``conj(U)`` on the column wires
``w + n`` (`conj_gate`); a channel is its superoperator ``S = sum_i K_i (x) conj(K_i)`` as one
dense, non-unitary block on ``(w..., w + n...)``. `lower` first groups the logical records
(`plan`, blocks of up to `LOGICAL_FUSION` wires) as Qiskit Aer fuses superoperators: a block
holding a channel becomes ONE `SuperOpBlock` (the product of its members' superoperators: one
pass over rho), a block of gates only becomes its gates doubled as ordinary records, which
`_fusion.fuse` and `_scan.to_native` then fuse and run like any circuit's. Measurements and
resets are channels here (dephasing, reset). Both new record types have an `_executor.APPLY`
entry. The kernels do not assume unitary blocks forwards, and a one-step native program
differentiates from its saved input, so backprop works through the non-unitary blocks;
`checkpoint` wraps a program in `Checkpointed` segments when the states backprop would save do
not fit in memory (a repeat: one saved state per layer).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from . import _blocks, _channels
from ._executor import APPLY, run_program
from ._gates import GateDef, full_matrix
from ._ir import ChannelOp, GateOp, LayerFn, MeasureOp, RepeatOp, ResetOp

LOGICAL_FUSION = 2          # logical wires per superoperator block: 4 wires of rho, a 16 x 16 block
_MEASURE = np.array([[[1, 0], [0, 0]], [[0, 0], [0, 1]]], np.complex128)   # dephasing: P0, P1
_RESET = np.array([[[1, 0], [0, 0]], [[0, 1], [0, 0]]], np.complex128)     # |0><0|, |0><1|


# ------------------------------------------------------------------ records ------

@dataclass(frozen=True)
class _Conj:
    """The matrix function of a gate's complex conjugate (hashable by the gate's own function)."""

    fn: Callable

    def __call__(self, *params):
        m = self.fn(*params)
        return np.conj(m) if isinstance(m, np.ndarray) else jnp.conj(m)


@functools.lru_cache(maxsize=None)
def conj_gate(g: GateDef) -> GateDef:
    """The gate whose matrix is ``conj`` of ``g``'s (a permutation is its own)."""
    if g.structure == "permutation":
        return g
    return g._replace(name=g.name + "*", matrix=_Conj(g.matrix))


@dataclass(frozen=True)
class SuperOpBlock:
    """Logical gates and channels multiplied into one superoperator on ``wires`` of rho.

    Parameters: the members' parameter tuples.
    """

    members: tuple           # logical GateOp / ChannelOp records, first applied first
    logical: tuple           # sorted logical wires of the block
    n: int                   # logical qubit count (column wire = logical wire + n)

    @property
    def wires(self):
        return self.logical + tuple(w + self.n for w in self.logical)


@dataclass(frozen=True)
class Checkpointed:
    """A run of records whose intermediate states backprop recomputes instead of saving."""

    body: tuple


def _phys(wires, n):
    return tuple(wires) + tuple(w + n for w in wires)


def _member_superop(op, params, n, dtype):
    if isinstance(op, GateOp):
        u = full_matrix(op.gate, params, dtype)
        return jnp.kron(u, jnp.conj(u))
    return _channels.superop(op.name, params, dtype)


def block_superop(op: SuperOpBlock, params, dtype):
    """The ``(4**k, 4**k)`` superoperator of a block on its wires (row wires first)."""
    wires = op.wires
    s = None
    for m, p in zip(op.members, params):
        e = _blocks.embed(_member_superop(m, p, op.n, dtype), _phys(m.wires, op.n), wires)
        s = e if s is None else jnp.matmul(e, s, precision=jax.lax.Precision.HIGHEST)
    return s


def _superop_apply(op: SuperOpBlock, params, state, backend, inverse=False):
    if inverse:
        raise ValueError("qsim: a noise channel cannot be un-applied (the adjoint method does not apply to "
                         "noisy circuits)")
    return backend.apply_dense(state, block_superop(op, params, state.dtype), op.wires)


def _checkpointed_apply(op: Checkpointed, params, state, backend, inverse=False):
    return jax.checkpoint(lambda p, s: run_program(op.body, p, s, backend, inverse))(params, state)


APPLY[SuperOpBlock] = _superop_apply
APPLY[Checkpointed] = _checkpointed_apply


# ------------------------------------------------------------------ lowering ------

def _as_channel(op, params):
    """Measurement and reset as channels (dephasing, reset); other records unchanged."""
    if isinstance(op, MeasureOp):
        return ChannelOp("kraus", (op.wire,)), (_MEASURE,)
    if isinstance(op, ResetOp):
        return ChannelOp("kraus", (op.wire,)), (_RESET,)
    return op, params


def _fusable(op):
    return isinstance(op, (GateOp, ChannelOp))


def plan(program, k):
    """Groups of record indices, in execution order, each on at most ``k`` wires.

    As `_fusion.plan` (open blocks on disjoint wires, channels joining too), except that a
    record whose wires would overflow the blocks it touches closes only the blocks that do
    not fit, smallest kept first: a CNOT chain with rotations and noise on every wire then
    takes one block per CNOT instead of two.
    """
    done, open_blocks = [], []          # open: list of (wires set, [indices])
    for i, op in enumerate(program):
        if not _fusable(op) or len(op.wires) > k:
            done.extend(b for _, b in open_blocks)
            open_blocks = []
            done.append([i])
            continue
        union = set(op.wires)
        hit = [b for b in open_blocks if b[0] & union]
        keep = []
        for b in sorted(hit, key=lambda b: len(b[0])):
            if len(union | b[0]) <= k:
                keep.append(b)
                union |= b[0]
        done.extend(b[1] for b in hit if b not in keep)
        members = sorted(j for b in keep for j in b[1]) + [i]
        open_blocks = [b for b in open_blocks if b not in hit] + [(union, members)]
    done.extend(b for _, b in open_blocks)
    return done


def lower(program, params, n, k=LOGICAL_FUSION):
    """The program on rho's 2n wires for a logical ``program`` (gates, channels, measurements,
    resets, repeats); the structure depends on ``program`` only, so ``params`` may be dummies."""
    pairs = [_as_channel(op, p) for op, p in zip(program, params)]
    program, params = tuple(op for op, _ in pairs), tuple(p for _, p in pairs)
    groups = plan(program, k) if k else [[i] for i in range(len(program))]
    new, new_params = [], []
    for group in groups:
        members = [program[i] for i in group]
        mparams = [params[i] for i in group]
        if isinstance(members[0], RepeatOp):
            op, p = _lower_repeat(members[0], mparams[0], n, k)
            new.append(op)
            new_params.append(p)
        elif any(isinstance(m, ChannelOp) for m in members):
            logical = tuple(sorted({w for m in members for w in m.wires}))
            new.append(SuperOpBlock(tuple(members), logical, n))
            new_params.append(tuple(mparams))
        else:
            for m, p in zip(members, mparams):
                new += [m, GateOp(conj_gate(m.gate), tuple(w + n for w in m.wires))]
                new_params += [p, p]
    return tuple(new), tuple(new_params)


def _lower_repeat(op: RepeatOp, p, n, k):
    body, _ = lower(op.body, tuple(() for _ in op.body), n, k)

    def params_fn(w, *consts):
        return lower(op.body, op.params_fn(w, *consts), n, k)[1]

    return RepeatOp(body, LayerFn(params_fn, ("density", n, k, op.params_fn)), op.n_layers), p


def saved(program) -> int:
    """States backprop saves running ``program`` (one per record, per layer of a repeat)."""
    return sum(op.n_layers * saved(op.body) if isinstance(op, RepeatOp) else 1 for op in program)


def checkpoint(program, params):
    """Repeat bodies become one checkpointed record (one saved state per layer); the other
    records are grouped into about sqrt(count) checkpointed segments."""
    prog, prm = [], []
    for op, p in zip(program, params):
        if isinstance(op, RepeatOp):
            fn = op.params_fn
            op = RepeatOp((Checkpointed(op.body),),
                          LayerFn(lambda w, *c, fn=fn: (fn(w, *c),), ("checkpointed", fn)), op.n_layers)
        prog.append(op)
        prm.append(p)
    size = max(1, math.isqrt(len(prog)))
    out = [(Checkpointed(tuple(prog[i:i + size])), tuple(prm[i:i + size])) for i in range(0, len(prog), size)]
    return tuple(o for o, _ in out), tuple(p for _, p in out)


def checkpointed_saved(program) -> int:
    """About the states backprop saves running `checkpoint`'s program."""
    top = len(program)
    inner = max((saved(op.body) for op in program if isinstance(op, RepeatOp)), default=0)
    layers = sum(op.n_layers for op in program if isinstance(op, RepeatOp))
    return 2 * math.isqrt(max(top, 1)) + layers + inner
