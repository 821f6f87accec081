"""The trajectory executor: one run of a dynamic (or noisy) program with explicit randomness.

A trajectory carries the flat state, the classical bits (int32 ``(n_clbits,)``) and a
PRNG key. Runs of unitary records are fused and lowered as in a static circuit
(`_fusion`, `_scan`) and applied through `_executor.APPLY` (or the adjoint method);
every other record type has a rule in `RULES`:

    RULES[type](op, params, state, key, clbits, backend) -> (state, clbits)

- `MeasureOp`: outcome ``b`` drawn with the Born probability of the wire's marginal, the
  state projected onto it and renormalised, ``b`` written to the classical bit;
- `ResetOp`: the same draw and projection, then the ``|b>`` half moved to ``|0>``;
- `Collapse`: consecutive measurements and resets of distinct wires (`prepare` merges
  them): one draw from their joint distribution, one projection;
- `CondOp`: the body's gates applied when the classical bits hold the value
  (``lax.cond``; a select under ``vmap``).

The noise module registers its channel rule (`ChannelOp`) here, so noisy and dynamic
trajectories share this executor. The records with a rule draw from the keys of one
``split`` of the trajectory's key, in order, so a trajectory is reproducible for a key;
``jax.vmap`` over keys runs a batch of trajectories in each kernel call. Everything is pure array code on the flat state
(both backends), so trajectories work under ``jit``, ``vmap`` and autodiff (the outcome
is not differentiated: gradients are those of the post-selected branch).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import _adjoint, _fusion, _scan
from ._executor import run_program
from ._ir import CondOp, GateOp, MeasureOp, ResetOp
from ._validate import is_concrete
from .backends.xla import split_shape

_BLOCK = 5    # wires per projection block (the native kernels' widest)


def as_key(key):
    """A typed key (``jax.random.key``) from a typed or a raw (``PRNGKey``) one."""
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return key
    return jax.random.wrap_key_data(key)


class Collapse(NamedTuple):
    """Consecutive measurements and resets of distinct wires, drawn as ONE joint outcome.

    Measuring wires one after the other draws each from its distribution given the earlier
    outcomes, which is the joint distribution: one draw, one projection.
    """

    wires: tuple      # distinct wires
    clbits: tuple     # per wire: the classical bit its outcome is written to, or -1
    reset: tuple      # per wire: moved to |0> after the outcome


def wire_probabilities(state, wires):
    """The joint distribution ``(2**k,)`` of ``wires`` (in that order), renormalised."""
    n = state.shape[-1].bit_length() - 1
    shape, axis_of = split_shape(n, wires)
    t = state.reshape(shape)
    p = jnp.sum(t.real ** 2 + t.imag ** 2, axis=tuple(a for a in range(len(shape)) if a % 2 == 0))
    order = np.argsort(np.argsort(wires))               # axes left are in sorted-wire order
    p = jnp.transpose(p, tuple(int(i) for i in order)).reshape(-1)
    return p / jnp.sum(p)


def collapse_rule(op: Collapse, params, state, key, clbits, backend):
    """One joint outcome of ``op.wires``; the projection (and the moves to ``|0>``) is one
    non-unitary block per 5 wires, applied by the backend's kernels (in place when native)."""
    k = len(op.wires)
    p = wire_probabilities(state, op.wires)
    cdf = jnp.cumsum(p)
    idx = jnp.clip(jnp.searchsorted(cdf, jax.random.uniform(key, (), cdf.dtype) * cdf[-1], side="right"),
                   0, (1 << k) - 1)
    bits = (idx >> jnp.arange(k - 1, -1, -1)) & 1
    scale = _scale(p[idx], state.dtype)
    for start in range(0, k, _BLOCK):
        part = range(start, min(k, start + _BLOCK))
        block = None
        for j in part:
            onehot = (jnp.arange(2) == bits[j]).astype(state.dtype)
            m = jnp.stack([onehot, jnp.zeros_like(onehot)]) if op.reset[j] else onehot
            block = m if block is None else (jnp.kron(block, m) if m.ndim == block.ndim else
                                             jnp.kron(block if block.ndim == 2 else jnp.diag(block),
                                                      m if m.ndim == 2 else jnp.diag(m)))
        if start == 0:
            block = block * scale
        wires = tuple(op.wires[j] for j in part)
        state = (backend.apply_diagonal(state, block, wires) if block.ndim == 1
                 else backend.apply_dense(state, block, wires))
    written = [j for j, c in enumerate(op.clbits) if c >= 0]
    if written:
        clbits = clbits.at[jnp.asarray([op.clbits[j] for j in written])].set(
            bits[jnp.asarray(written)].astype(clbits.dtype))
    return state, clbits


def _scale(pb, dtype):
    return jnp.where(pb > 0, jax.lax.rsqrt(jnp.where(pb > 0, pb, 1)), 0).astype(dtype)


def measure_rule(op: MeasureOp, params, state, key, clbits, backend):
    return collapse_rule(Collapse((op.wire,), (op.clbit,), (False,)), params, state, key, clbits, backend)


def reset_rule(op: ResetOp, params, state, key, clbits, backend):
    return collapse_rule(Collapse((op.wire,), (-1,), (True,)), params, state, key, clbits, backend)


def cond_holds(op: CondOp, clbits):
    """Whether ``sum_i clbits[op.clbits[i]] 2^i == op.value`` (a traced bool)."""
    bits = clbits[jnp.asarray(op.clbits)]
    return jnp.sum(bits << jnp.arange(len(op.clbits))) == op.value


def cond_rule(op: CondOp, params, state, key, clbits, backend):
    state = jax.lax.cond(cond_holds(op, clbits),
                         lambda s, p: run_program(op.body, p, s, backend),
                         lambda s, p: s, state, params)
    return state, clbits


RULES = {MeasureOp: measure_rule, ResetOp: reset_rule, CondOp: cond_rule, Collapse: collapse_rule}


class Run:
    """A lowered run of unitary records (hashable: part of a static program), run forwards or
    differentiated by the adjoint method."""

    def __init__(self, program, adjoint):
        self.program, self.adjoint = program, adjoint

    def __eq__(self, other):
        return isinstance(other, Run) and (self.program, self.adjoint) == (other.program, other.adjoint)

    def __hash__(self):
        return hash((self.program, self.adjoint))


def _lower(run, params, dtype, k, backend, adjoint):
    """One `Run`: fused and lowered like a static circuit; with concrete parameters the blocks are
    multiplied on the host (one native program; on the XLA CPU kernels a scan when long, see
    `Backend.scan_concrete`), so the traced program does not grow with the number of gates."""
    run, params = tuple(run), tuple(params)
    concrete = all(isinstance(op, GateOp) for op in run) and all(is_concrete(x) for x in jax.tree.leaves(params))
    if concrete and backend.scan_concrete and (backend.programs is not None or len(run) >= _scan.MIN_OPS):
        run, params = _scan.lower_concrete(run, params, dtype, k, backend)
    else:
        run, params = _fusion.fuse(run, params, k)
        run, params = _scan.to_native(run, params, dtype, backend)
    return Run(run, adjoint), params


def prepare(program, params, dtype, backend, *, fuse_k=None, adjoint=False):
    """``(records, params)``: maximal runs of unitary records lowered into `Run`s, the records
    with a rule as they are. Call it outside ``jit`` when the parameters are concrete."""
    out, out_params, run, run_params = [], [], [], []
    k = 4 if fuse_k is None else fuse_k

    def flush():
        if run:
            r, p = _lower(run, run_params, dtype, k, backend, adjoint)
            out.append(r)
            out_params.append(p)
            run.clear()
            run_params.clear()

    for op, p in zip(program, params):
        if isinstance(op, (MeasureOp, ResetOp)):
            flush()
            if out and isinstance(out[-1], Collapse) and _joins(out[-1], op):
                out[-1] = _join(out[-1], op)
            else:
                out.append(_join(Collapse((), (), ()), op))
                out_params.append(())
        elif type(op) in RULES:
            flush()
            out.append(op)
            out_params.append(p)
        else:
            run.append(op)
            run_params.append(p)
    flush()
    return tuple(out), tuple(out_params)


def _joins(group, op):
    """Whether ``op`` joins the collapse ``group``: a new wire (and, for a measurement, a bit not
    yet written), or a reset right after that wire's measurement (its outcome is then known)."""
    if op.wire not in group.wires:
        return isinstance(op, ResetOp) or op.clbit not in group.clbits
    return isinstance(op, ResetOp) and not group.reset[group.wires.index(op.wire)]


def _join(group, op):
    if op.wire in group.wires:
        j = group.wires.index(op.wire)
        return group._replace(reset=group.reset[:j] + (True,) + group.reset[j + 1:])
    clbit = op.clbit if isinstance(op, MeasureOp) else -1
    return Collapse(group.wires + (op.wire,), group.clbits + (clbit,), group.reset + (isinstance(op, ResetOp),))


def run_prepared(records, params, state, key, n_clbits, backend):
    """One trajectory of `prepare`'s records: ``(final state, classical bits)``; the records with a
    rule draw from the keys of one ``split`` of ``key``, in order."""
    clbits = jnp.zeros((n_clbits,), jnp.int32)
    random = [i for i, op in enumerate(records) if not isinstance(op, Run)]
    keys = dict(zip(random, jax.random.split(as_key(key), len(random)))) if random else {}
    for i, (op, p) in enumerate(zip(records, params)):
        if isinstance(op, Run):
            state = (_adjoint.run(op.program, p, state, backend) if op.adjoint
                     else run_program(op.program, p, state, backend))
        else:
            state, clbits = RULES[type(op)](op, p, state, keys[i], clbits, backend)
    return state, clbits


def run_trajectory(program, params, state, key, n_clbits, backend, *, fuse_k=None, adjoint=False):
    """One trajectory of ``program`` from the flat ``state``: ``(final state, classical bits)``.

    Args:
      program, params: the records and their parameters (unitary records and records with a rule).
      state: ``(2**n,)`` initial state.
      key: a JAX random key (typed or raw).
      n_clbits: number of classical bits (all start at 0).
      backend: the kernels (`qsim.backends`).
      fuse_k: fusion width of the unitary runs (None: 4).
      adjoint: differentiate the unitary runs by the adjoint method instead of backprop.

    Returns:
      ``(state (2**n,), clbits int32 (n_clbits,))``.
    """
    records, params = prepare(program, params, state.dtype, backend, fuse_k=fuse_k, adjoint=adjoint)
    return run_prepared(records, params, state, key, n_clbits, backend)
