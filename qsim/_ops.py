"""Operation records: the static half of a recorded gate, and how to apply it.

A circuit is a *program*: a tuple of static records (hashable, compared by value,
so a jitted simulation is cached on them) and a matching tuple of parameter
tuples (traced leaves). Records:

- `GateOp(gate, wires)`: one gate of the table (or a user matrix), wires with
  controls first;
- `FusedOp(members, wires)`: several gate ops multiplied into one dense block on
  ``wires`` (see `_fusion`);
- `RepeatOp(body, params_fn, n_layers)`: a layer recorded once and run ``n_layers``
  times with `lax.scan` (see `Circuit.repeat`).

``apply(op, params, state)`` runs a record forwards, ``apply_inverse`` runs its
inverse (used by the adjoint method to walk back through the circuit).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import jax
import jax.numpy as jnp

from . import _backend
from ._gates import GateDef, full_matrix, gate_matrix


@dataclass(frozen=True)
class GateOp:
    gate: GateDef
    wires: tuple[int, ...]   # controls first, then targets

    @property
    def controls(self):
        return self.wires[:self.gate.n_controls] if self.gate.structure != "diagonal" else ()

    @property
    def targets(self):
        return self.wires[len(self.controls):]


@dataclass(frozen=True)
class FusedOp:
    members: tuple[GateOp, ...]
    wires: tuple[int, ...]   # sorted wires of the fused block
    diagonal: bool           # every member is diagonal: the block is a diagonal


@dataclass(frozen=True)
class RepeatOp:
    body: tuple                # static records of one layer
    params_fn: Callable        # (layer slice, *consts) -> tuple of body params
    n_layers: int


def _real_dtype(dtype):
    return jnp.finfo(dtype).dtype


def gate_apply(op: GateOp, params, state, inverse=False):
    """Apply one gate op (or its inverse) to a flat state."""
    g = op.gate
    if g.structure == "permutation":
        perm = g.perm
        if inverse:
            inv = [0] * len(perm)
            for j, p in enumerate(perm):
                inv[p] = j
            perm = tuple(inv)
        return _backend.apply_permutation(state, perm, op.targets, op.controls)
    block = gate_matrix(g, params, state.dtype)
    if g.structure == "diagonal":
        return _backend.apply_diagonal(state, jnp.conj(block) if inverse else block, op.wires)
    if inverse:
        block = jnp.conj(block).T
    return _backend.apply_dense(state, block, op.targets, op.controls)


def fused_matrix(op: FusedOp, params, dtype):
    """The block of a fused op: its (2^k,) diagonal or its (2^k, 2^k) matrix on ``op.wires``."""
    from ._fusion import embed  # local import: fusion builds on this module
    k = len(op.wires)
    if op.diagonal:
        d = jnp.ones((1 << k,), dtype)
        for m, p in zip(op.members, params):
            d = d * embed(gate_matrix(m.gate, p, dtype), m.wires, op.wires, diagonal=True)
        return d
    u = jnp.eye(1 << k, dtype=dtype)
    for m, p in zip(op.members, params):
        u = jnp.matmul(embed(full_matrix(m.gate, p, dtype), m.wires, op.wires), u,
                       precision=jax.lax.Precision.HIGHEST)
    return u


def fused_apply(op: FusedOp, params, state, inverse=False):
    block = fused_matrix(op, params, state.dtype)
    if op.diagonal:
        return _backend.apply_diagonal(state, jnp.conj(block) if inverse else block, op.wires)
    return _backend.apply_dense(state, jnp.conj(block).T if inverse else block, op.wires)


def repeat_apply(op: RepeatOp, params, state, inverse=False):
    stacked, consts = params

    def body(s, w):
        layer_params = op.params_fn(w, *consts)
        return run_program(op.body, layer_params, s, inverse=inverse), None

    state, _ = jax.lax.scan(body, state, stacked, reverse=inverse)
    return state


def apply(op, params, state, inverse=False):
    """Apply one record (or its inverse) to a flat state."""
    if isinstance(op, GateOp):
        return gate_apply(op, params, state, inverse)
    if isinstance(op, FusedOp):
        return fused_apply(op, params, state, inverse)
    if isinstance(op, RepeatOp):
        return repeat_apply(op, params, state, inverse)
    from ._scan import ProgramOp, program_apply, scan_apply  # local: _scan builds on this module
    if isinstance(op, ProgramOp):
        return program_apply(op, params, state, inverse)
    return scan_apply(op, params, state, inverse)


def run_program(program, params, state, inverse=False):
    """Run a whole program forwards (or, with ``inverse``, its inverse: last op first)."""
    pairs = list(zip(program, params))
    for op, p in (reversed(pairs) if inverse else pairs):
        state = apply(op, p, state, inverse)
    return state
