"""The records of a circuit program: static, hashable, compared by value.

A circuit is a *program*: a tuple of records and a matching tuple of parameter
pytrees (the traced leaves). Records:

- `GateOp(gate, wires)`: one gate of the table (or a user matrix), wires with controls first;
- `FusedOp(members, wires, diagonal)`: gate records multiplied into one block (`_fusion`);
- `RepeatOp(body, layer, n_layers)`: a layer recorded once and run ``n_layers`` times
  (`lax.scan`); ``layer`` maps one slice of the stacked weights to the body's parameters;
- `ScanOp` / `ProgramOp`: lowered runs of steps (`_scan`): a switch over step signatures
  (pure JAX), or one native program (``code``: the native step records);
- `MeasureOp` / `ResetOp` / `CondOp`: mid-circuit measurement, reset and classical control
  (dynamic circuits, `_dynamic`); `ChannelOp`: a noise channel (`_channels`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ._gates import GateDef


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


@dataclass(frozen=True, eq=False)
class LayerFn:
    """``(layer slice, *consts) -> body params``, compared by the jaxpr it traces to.

    Two layers that trace to the same program of the same constants are equal, so
    an eager `Circuit.repeat` with a fresh layer function reuses the compiled program.
    """
    fn: Callable
    key: tuple

    def __call__(self, w, *consts):
        return self.fn(w, *consts)

    def __eq__(self, other):
        return isinstance(other, LayerFn) and self.key == other.key

    def __hash__(self):
        return hash(self.key)


@dataclass(frozen=True)
class RepeatOp:
    body: tuple                # static records of one layer
    params_fn: LayerFn         # (layer slice, *consts) -> tuple of body params
    n_layers: int


@dataclass(frozen=True)
class Signature:
    structure: str              # "dense" | "diagonal" | "permutation"
    targets: tuple[int, ...]
    controls: tuple[int, ...]
    perm: tuple | None


@dataclass(frozen=True)
class ScanOp:
    branches: tuple[Signature, ...]
    ids: tuple[int, ...]        # branch of each step
    k_max: int                  # padded block width


@dataclass(frozen=True)
class ProgramOp:
    code: tuple[int, ...]       # native step records (`backends.native_cpu.steps`)
    const: bool                 # coefficients are constants: no cotangent is ever needed


# ---------------------------------------------------------------- dynamic & noisy records ------
# Parameters: ``()`` for `MeasureOp` / `ResetOp`; a tuple of the body's parameter tuples for
# `CondOp`; the channel's parameters (a tuple, possibly traced) for `ChannelOp`.

@dataclass(frozen=True)
class MeasureOp:
    wire: int
    clbit: int               # classical bit written with the outcome


@dataclass(frozen=True)
class ResetOp:
    wire: int                # back to |0> (measure, then flip on 1)


@dataclass(frozen=True)
class CondOp:
    clbits: tuple[int, ...]  # first listed = least significant bit of the compared value
    value: int
    body: tuple              # gate records applied when sum_i bit(clbits[i]) 2^i == value

    @property
    def wires(self):
        return tuple(sorted({w for op in self.body for w in op.wires}))


@dataclass(frozen=True)
class ChannelOp:
    name: str                # "depolarizing", "amplitude_damping", ..., "kraus"
    wires: tuple[int, ...]


DYNAMIC_OPS = (MeasureOp, ResetOp, CondOp)
