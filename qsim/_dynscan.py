"""Long dynamic programs as ONE `lax.scan`: compile time independent of their length.

The per-run trajectory executor (`_trajectory`) compiles one step per run of mid-circuit
records, so a program interleaving its gates with thousands of measurements and resets
(QASMBench ``bwt_n21``: 9,207 resets) would take many minutes to compile. When every
parameter is concrete, `lower` turns the program on the host into a flat list of steps:

- unitary blocks, fused and multiplied in complex128 as in `_scan.lower_concrete`;
- collapses: the Born-rule measurement of one wire, optionally written to a classical bit
  and optionally followed by a reset (the outcome's half moved to ``|0>``);
- the blocks of a `CondOp` body, each tagged with the condition (bit weights and value).

`run` walks the steps with one `lax.scan` whose body switches (`lax.switch`) on the step's
*branch*: a unitary signature (structure, wires, controls, permutation) or a collapse of
wire ``w``. The step's block, its classical bit, reset flag and condition are scanned
inputs, so the compiled program depends only on the set of branches. A conditional
step's block is replaced by the identity when the classical bits (int32, in the carry)
do not hold its value; a collapse draws with ``fold_in(key, step index)``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import _scan
from ._ir import CondOp, GateOp, MeasureOp, ResetOp, Signature
from ._trajectory import as_key
from .backends.xla import split_shape


class DynScan(NamedTuple):
    """The static part of a lowered dynamic program (hashable): the switch's branches."""

    branches: tuple     # Signature, or ("collapse", wire)
    k_max: int          # padded blocks are (2**k_max, 2**k_max)
    n_clbits: int


class _Steps:
    """Host accumulator of steps (branch, block, clbit, reset flag, condition)."""

    def __init__(self, n_clbits):
        self.n_clbits = n_clbits
        self.sigs, self.blocks, self.clbit, self.reset, self.weights, self.value = [], [], [], [], [], []

    def add(self, sig, block, clbit=-1, reset=False, cond=None):
        weights = np.zeros(self.n_clbits, np.int64)
        value = 0
        if cond is not None:
            for i, c in enumerate(cond.clbits):
                weights[c] += 1 << i
            value = cond.value
        self.sigs.append(sig)
        self.blocks.append(block)
        self.clbit.append(clbit)
        self.reset.append(reset)
        self.weights.append(weights)
        self.value.append(value)


def _gate_steps(steps, program, params, dtype, k, cond=None):
    """Fuse a concrete gate run on the host and append its blocks (permutations stay
    permutations unless conditional: those become dense, so the identity can replace them)."""
    if not program:
        return
    sigs, mats = _scan.host_steps(program, params, dtype, k)
    for sig, blk in zip(sigs, mats):
        if cond is not None and sig.structure == "permutation":
            wires, m = _scan._step_matrix(sig, blk, np.dtype(dtype))
            sig, blk = Signature("dense", wires, (), None), m
        steps.add(sig, blk, cond=cond)


def lower(program, params, dtype, k, backend, n_clbits):
    """``(DynScan, arrays)`` for a program of gate, measure, reset and cond records whose
    parameters are all concrete (call it outside ``jit``)."""
    if backend.programs is not None:
        k = min(k, backend.programs.MAX_TARGETS)
    steps, run, run_params = _Steps(n_clbits), [], []

    def flush():
        _gate_steps(steps, tuple(run), tuple(run_params), dtype, k)
        run.clear()
        run_params.clear()

    for op, p in zip(program, params):
        if isinstance(op, GateOp):
            run.append(op)
            run_params.append(p)
            continue
        flush()
        if isinstance(op, MeasureOp):
            steps.add(("collapse", op.wire), None, clbit=op.clbit)
        elif isinstance(op, ResetOp):
            steps.add(("collapse", op.wire), None, reset=True)
        elif isinstance(op, CondOp):
            if len(op.clbits) > 30:
                raise ValueError(f"a classical condition on {len(op.clbits)} bits: at most 30 are allowed")
            _gate_steps(steps, tuple(op.body), tuple(p), dtype, k, cond=op)
        else:
            raise TypeError(f"a dynamic program's scan takes gate, measure, reset and cond records, "
                            f"not {type(op).__name__}")
    flush()
    return _assemble(steps, dtype)


def _width(sig, block):
    if isinstance(sig, tuple) and sig[0] == "collapse":
        return 1
    return 0 if block is None else int(block.shape[0]).bit_length() - 1


def _assemble(steps, dtype):
    dtype = np.dtype(dtype)
    branches = tuple(dict.fromkeys(steps.sigs))
    index = {b: j for j, b in enumerate(branches)}
    k_max = max([1] + [_width(s, b) for s, b in zip(steps.sigs, steps.blocks)])
    dim, n = 1 << k_max, len(steps.sigs)
    mats = np.zeros((n, dim, dim), dtype)
    diags = np.zeros((n, dim), dtype)
    for i, blk in enumerate(steps.blocks):
        if blk is None:
            continue
        if blk.ndim == 1:
            diags[i, :blk.shape[0]] = blk
        else:
            mats[i, :blk.shape[0], :blk.shape[1]] = blk
    weights = (np.stack(steps.weights).astype(np.int32) if n and steps.n_clbits
               else np.zeros((n, steps.n_clbits), np.int32))
    arrays = dict(ids=np.asarray([index[s] for s in steps.sigs], np.int32), mats=mats, diags=diags,
                  clbit=np.asarray(steps.clbit, np.int32), reset=np.asarray(steps.reset, bool),
                  weights=weights, value=np.asarray(steps.value, np.int32),
                  conditional=np.asarray([bool(w.any()) for w in steps.weights] if n else [], bool))
    with jax.ensure_compile_time_eval():
        arrays = {name: jnp.asarray(a) for name, a in arrays.items()}
    return DynScan(branches, k_max, steps.n_clbits), arrays


def _marginal(state, wire):
    """``(2,)``: the squared norms of the wire's two halves."""
    shape, _ = split_shape(state.shape[-1].bit_length() - 1, (wire,))
    t = state.reshape(shape)
    return jnp.sum(t.real ** 2 + t.imag ** 2, axis=tuple(a for a in range(len(shape)) if a % 2 == 0))


def _collapse(wire, backend):
    def branch(state, clbits, x, key):
        p = _marginal(state, wire)         # not renormalised: the projection restores norm 1
        bit = (jax.random.uniform(key, (), p.dtype) * (p[0] + p[1]) >= p[0]).astype(jnp.int32)
        pb = p[bit]
        scale = jnp.where(pb > 0, jax.lax.rsqrt(jnp.where(pb > 0, pb, 1)), 0).astype(state.dtype)
        onehot = (jnp.arange(2) == bit).astype(state.dtype) * scale
        m = jnp.where(x["reset"], jnp.stack([onehot, jnp.zeros_like(onehot)]), jnp.diag(onehot))
        state = backend.apply_dense(state, m, (wire,))
        hit = jnp.arange(clbits.shape[0]) == x["clbit"]
        return state, jnp.where(hit, bit, clbits)
    return branch


def _unitary(sig, backend):
    def branch(state, clbits, x, key):
        return _scan.apply_signature(sig, state, x["mats"], x["diags"], backend), clbits
    return branch


def run(op: DynScan, arrays, state, key, backend):
    """One trajectory: ``(final state, int32 classical bits (n_clbits,))``."""
    if not op.branches:
        return state, jnp.zeros((op.n_clbits,), jnp.int32)
    key = as_key(key)
    branches = [_collapse(b[1], backend) if isinstance(b, tuple) and b[0] == "collapse" else _unitary(b, backend)
                for b in op.branches]
    dim = 1 << op.k_max
    eye = jnp.eye(dim, dtype=state.dtype)
    ones = jnp.ones((dim,), state.dtype)

    def body(carry, x):
        state, clbits = carry
        holds = jnp.logical_or(~x["conditional"], jnp.sum(clbits * x["weights"]) == x["value"])
        x = dict(x, mats=jnp.where(holds, x["mats"], eye), diags=jnp.where(holds, x["diags"], ones))
        step_key = jax.random.fold_in(key, x["step"])
        return jax.lax.switch(x["ids"], branches, state, clbits, x, step_key), None

    xs = dict(arrays, step=jnp.arange(arrays["ids"].shape[0], dtype=jnp.int32))
    clbits = jnp.zeros((op.n_clbits,), jnp.int32)
    (state, clbits), _ = jax.lax.scan(body, (state, clbits), xs)
    return state, clbits

