"""Wire layout of a sharded state: which wires index the devices, and where to swap them.

With D = 2**g devices, the top g bits of a flat basis index (wires 0..g-1 at the
start, wire 0 the most significant) name the device and the other n - g bits
the amplitude within its shard. A *layout* ``pos`` maps each logical wire to a
physical bit position; positions ``0..g-1`` are *global*, the rest *local*
(local wire ``p - g`` of the shard). A gate runs shard-locally when its targets
are local:

- a diagonal gate never needs a swap: each device applies the slice of the
  diagonal that its own global bits select (`Slice` ``"diagonal"``);
- controls may be global: a device whose global controls are not all 1 applies
  the identity instead (`Slice` ``"control"``);
- a target at a global position is first exchanged with a local position
  (`SwapOp`: each device trades half of its shard with the device that differs
  in that global bit, in place, a chunk at a time; see `_sharding.swap`).

The planner swaps on demand and sends out the local wire whose next use as a
target is farthest in the future: Belady's rule for a cache of n - g wires
(a control may be sent out too: it works from a global position). For a gate
sequence in a given order this is the fewest swaps of any schedule (the tests
check it against a dynamic programme over all of them). The layout is never put
back after a gate; `undo` gives the swaps (and the local transpose) that
restore the natural order, run only when a caller asks for the state itself.

A `repeat` layer is planned from the layout it meets, one layer after another,
until a layer starts from a layout already seen: from there the plans repeat
with a period of m layers, which run as one ``lax.scan`` over groups of m
layers (compile time stays independent of the depth).
"""

from __future__ import annotations

import bisect
import functools
from dataclasses import dataclass

from ._gates import GateDef, user_matrix
from ._ir import GateOp, RepeatOp


@dataclass(frozen=True)
class SwapOp:
    """Exchange the wire at global position ``global_pos`` with local wire ``local_wire``."""

    global_pos: int
    local_wire: int


@dataclass(frozen=True)
class Slice:
    """How a gate touching global wires becomes a device-dependent gate on local wires."""

    kind: str                   # "diagonal": index the diagonal by the device bits; "control": I unless all 1
    gate: GateDef               # the logical gate whose block is sliced
    axes: tuple[int, ...]       # "diagonal": indices into the gate's wires; "control": into its controls
    positions: tuple[int, ...]  # the global position of each


@dataclass(frozen=True)
class Step:
    """One physical record: a `SwapOp`, or a `GateOp` on local wires taking the parameters of
    logical op ``source`` (as they are, or through ``slice``)."""

    record: object
    source: int | None
    slice: Slice | None = None


@dataclass(frozen=True)
class RepeatPlan:
    """The layers of logical `RepeatOp` ``source``: ``prefix`` planned one by one, then
    ``n_periods`` runs of the ``period`` layers (a scan), then the first ``remainder`` of them."""

    source: int
    prefix: tuple[tuple[Step, ...], ...]
    period: tuple[tuple[Step, ...], ...]
    n_periods: int
    remainder: int


@dataclass(frozen=True)
class Plan:
    items: tuple                # Step | RepeatPlan, in order
    final: tuple[int, ...]      # physical position of each logical wire after the program
    swaps: int                  # swaps executed (repeat layers counted one by one)
    compiled_swaps: int         # swaps in the compiled program (a scan body counts once)
    naive: int                  # swaps of the fixed layout: each global wire of a gate in and back out


def _sliced_diagonal(k):
    return GateDef("sharded diagonal", k, 1, "diagonal", 0, user_matrix, None, None)


def _sliced_controlled(n_controls, n_targets):
    return GateDef("sharded controlled", n_controls + n_targets, 1, "dense", n_controls, user_matrix, None, None)


def _need(op) -> tuple[int, ...]:
    """The wires a gate needs local: its targets (none for a diagonal gate)."""
    return () if op.gate.structure == "diagonal" else op.targets


class _Future:
    """Next use as a target of each wire, over a stream of gates (index -> wires needed)."""

    def __init__(self, needs):
        self.uses: dict[int, list[int]] = {}
        for i, ws in enumerate(needs):
            for w in ws:
                self.uses.setdefault(w, []).append(i)

    def next(self, wire, after) -> float:
        uses = self.uses.get(wire, ())
        j = bisect.bisect_right(uses, after)
        return uses[j] if j < len(uses) else float("inf")


def _bring_local(op, index, pos, g, future):
    """Swaps that make the targets of ``op`` local (victims chosen by Belady's rule)."""
    swaps, pos = [], list(pos)
    wire_at = {p: w for w, p in enumerate(pos)}
    for w in _need(op):
        if pos[w] >= g:
            continue
        candidates = [v for p, v in wire_at.items() if p >= g and v not in op.targets]
        victim = min(candidates, key=lambda v: (-future.next(v, index), pos[v]))   # a control may go global
        a, b = pos[w], pos[victim]
        swaps.append(Step(SwapOp(a, b - g), None))
        pos[w], pos[victim] = b, a
        wire_at[a], wire_at[b] = victim, w
    return swaps, tuple(pos)


def _local_step(op, source, pos, n, g):
    """The shard-local record of ``op`` under layout ``pos`` (its targets are local)."""
    local = lambda ws: tuple(pos[w] - g for w in ws)  # noqa: E731
    glob = [i for i, w in enumerate(op.wires) if pos[w] < g]
    if not glob:
        return Step(GateOp(op.gate, local(op.wires)), source)
    if op.gate.structure == "diagonal":
        keep = local(w for w in op.wires if pos[w] >= g) or (n - g - 1,)   # a phase rides on any local wire
        where = Slice("diagonal", op.gate, tuple(glob), tuple(pos[op.wires[i]] for i in glob))
        return Step(GateOp(_sliced_diagonal(len(keep)), keep), source, where)
    ctrl = op.controls
    gc = tuple(i for i, c in enumerate(ctrl) if pos[c] < g)
    lc = tuple(c for c in ctrl if pos[c] >= g)
    where = Slice("control", op.gate, gc, tuple(pos[ctrl[i]] for i in gc))
    return Step(GateOp(_sliced_controlled(len(lc), len(op.targets)), local(lc) + local(op.targets)), source, where)


def _plan_gates(ops, pos, n, g, future, offset=0):
    """Steps of a run of gate records (``future`` indexed from ``offset``) and the layout after."""
    steps = []
    for i, op in enumerate(ops):
        if len(_need(op)) > n - g:
            raise ValueError(f"Circuit(mesh=...): a {op.gate.name} gate on wires {op.wires} needs "
                             f"{len(_need(op))} local wires, but {n} qubits over {1 << g} devices leave "
                             f"{n - g}; use fewer devices")
        swaps, pos = _bring_local(op, offset + i, pos, g, future)
        steps += swaps + [_local_step(op, i, pos, n, g)]
    return tuple(steps), pos


def _plan_repeat(source, body, n_layers, pos, n, g):
    """A `RepeatPlan` for ``n_layers`` of ``body`` from layout ``pos``, and the layout after."""
    future = _Future([_need(op) for op in body] * 2)   # a layer looks ahead into the next one
    starts, layers = [pos], []
    while len(layers) < n_layers:
        steps, pos = _plan_gates(body, pos, n, g, future)
        layers.append(steps)
        if pos in starts:
            i = starts.index(pos)
            q, r = divmod(n_layers - i, len(layers) - i)
            return RepeatPlan(source, tuple(layers[:i]), tuple(layers[i:]), q, r), starts[i + r]
        starts.append(pos)
    return RepeatPlan(source, tuple(layers), (), 0, 0), pos


def _count(steps) -> int:
    return sum(isinstance(s.record, SwapOp) for s in steps)


@functools.lru_cache(maxsize=256)
def _plan(skeleton, n, g) -> Plan:
    needs = [_need(op) if isinstance(op, GateOp) else tuple(w for b in op[0] for w in _need(b))
             for op in skeleton]
    future = _Future(needs)
    pos = tuple(range(n))
    items, swaps, compiled, naive = [], 0, 0, 0
    for i, op in enumerate(skeleton):
        if isinstance(op, GateOp):
            steps, pos = _plan_gates((op,), pos, n, g, future, offset=i)
            items += [s if s.source is None else Step(s.record, i, s.slice) for s in steps]
            swaps += _count(steps)
            compiled += _count(steps)
            naive += 2 * sum(w < g for w in op.wires)
            continue
        body, n_layers = op
        rp, pos = _plan_repeat(i, body, n_layers, pos, n, g)
        items.append(rp)
        head = sum(map(_count, rp.prefix)) + sum(map(_count, rp.period[:rp.remainder]))
        swaps += head + rp.n_periods * sum(map(_count, rp.period))
        compiled += head + (sum(map(_count, rp.period)) if rp.n_periods else 0)
        naive += 2 * n_layers * sum(w < g for b in body for w in b.wires)
    return Plan(tuple(items), pos, swaps, compiled, naive)


def skeleton(program, where="Circuit"):
    """The static part of a program the layout depends on: gate records, and (body, n_layers)
    for each `repeat` (its parameter function does not matter)."""
    out = []
    for op in program:
        if isinstance(op, RepeatOp):
            out.append((op.body, op.n_layers))
        elif isinstance(op, GateOp):
            out.append(op)
        else:
            raise ValueError(f"{where}: a circuit sharded over a mesh runs gates and repeat layers only, "
                             f"got a {type(op).__name__} (measurement, reset, condition or noise); "
                             "drop mesh= for this circuit")
    return tuple(out)


def plan(program, n, g, where="Circuit") -> Plan:
    """The layout plan of ``program`` on ``n`` qubits with ``g`` global wires (cached, static)."""
    return _plan(skeleton(program, where), n, g)


def undo(pos, n, g):
    """Swaps that bring every global wire home, and the local transpose then left.

    Returns ``(swaps, axes)``: a tuple of `SwapOp` and the ``axes`` of ``jnp.transpose`` on the
    shard viewed as ``(2,) * (n - g)`` (local wire j of the result is local wire ``axes[j]``).
    """
    pos, swaps = list(pos), []
    wire_at = {p: w for w, p in enumerate(pos)}

    def swap(a, b):
        swaps.append(SwapOp(a, b - g))
        wa, wb = wire_at[a], wire_at[b]
        pos[wa], pos[wb], wire_at[a], wire_at[b] = b, a, wb, wa

    for a in range(g):
        if wire_at[a] == a:
            continue
        if pos[a] < g:          # wire a sits at another global position: route it through a local one
            swap(pos[a], g)
        swap(a, pos[a])
    return tuple(swaps), tuple(pos[w] - g for w in range(g, n))
