"""One gate per wire between entanglers: runs of one-qubit steps merged into one 2x2 step, and
CNOT chains into one linear step.

A state that sits in cache runs its program member by member (`primitives.UNFUSE_MAX_QUBITS`):
there every pass costs about the same whatever its gate, so the number of passes is the time. A
hardware-efficient layer writes RY and RZ on every wire (and an angle encoding one more RY
before the first layer): two or three one-qubit passes per wire where one 2x2 matrix does. This
pass makes each such run one fused step on its wire whose members are the run's steps with their
own coefficients (a fused diagonal when every member is diagonal, a permutation when every member
is one): the kernel multiplies the 2x2 block out at run time and spreads its cotangent back onto
the members by the chain rule, so the coefficients go to the kernel as they are, with no XLA ops
per sample to build or differentiate the products (the reference executor multiplies the same
blocks for forward mode and Hessians). Consecutive one-qubit steps on distinct wires then run as
one layer in the kernel (program.h).

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

from .steps import (DENSE, DIAGONAL, FUSED_DENSE, FUSED_DIAGONAL, LINEAR, PERMUTATION, decode, encode,
                    encode_fused, encode_linear, encode_step)

_LINEAR = object()      # marks a run of CNOTs and SWAPs in the plan


def _one_qubit(step) -> bool:
    if step.kind in (FUSED_DENSE, FUSED_DIAGONAL) or step.controls:
        return False
    return len(step.targets) == 1


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


def _leading_first(steps) -> list:
    """``steps`` with every wire's leading one-qubit steps (those before any other step on the
    wire) moved to the front, in order: they commute with everything before them. Circuits
    mostly begin with a one-qubit gate on every wire, but a program fused into blocks and
    unfused again interleaves them with the first entanglers; in front they make one layer
    on every wire, which a state starting in |0...0> runs as a product layer (program.h)."""
    front, rest, closed = [], [], set()
    for s in steps:
        wires = set(s.targets) | set(s.controls)
        if _one_qubit(s) and not wires & closed:
            front.append(s)
        else:
            rest.append(s)
            closed |= wires
    return front + rest


@functools.lru_cache(maxsize=1024)
def plan(code) -> tuple[int, ...] | None:
    """The merged program of ``code`` (read with the same coefficients); None when nothing
    merges (the program is run as it is)."""
    steps = _leading_first(decode(code))
    leading = True                      # before the first step that is not a one-qubit step
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
            continue
        if leading:                 # every wire's leading run, whole: one layer
            flush(sorted(pending))
            leading = False
        if _linear(s):
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

    out = []
    for run in order:
        s = run[0]
        if s is _LINEAR:
            out += _linear_record(run[1:])
        elif len(run) == 1:
            out += encode(s)
        elif all(m.kind == PERMUTATION for m in run):
            out += encode_step(PERMUTATION, s.targets, (), _compose_perm(run))
        else:
            members = [encode_step(m.kind, (0,), (), m.perm, m.offset) for m in run]
            out += encode_fused(s.targets, members, diagonal=all(m.kind == DIAGONAL for m in run))
    return tuple(out)


# csrc/qsim_native.h: a layer runs one pass over the tiles of its gates on the low
# LAYER_TILE_BITS bit positions, and one per LAYER_MAX_ROW_BITS gates above them; a complex64
# state of up to LAYER_WHOLE_TILE_BITS qubits is one tile (one pass). The low tile grows up to
# LAYER_WHOLE_TILE_BITS bits where that saves a high pass (geometry.cpp: low_tile_bits).
LAYER_TILE_BITS = 10
LAYER_WHOLE_TILE_BITS = 12
LAYER_MAX_ROW_BITS = 7


def _layer_passes(layer, n: int) -> int:
    """The passes of a layer of one-qubit gates on the wires ``layer`` of an n-qubit state."""
    if n <= LAYER_WHOLE_TILE_BITS:
        return 1

    def high(tile):
        return -(-sum(1 for w in layer if n - 1 - w >= tile) // LAYER_MAX_ROW_BITS)

    tile = LAYER_TILE_BITS
    for t in range(LAYER_TILE_BITS + 1, min(n, LAYER_WHOLE_TILE_BITS) + 1):
        if high(t) < high(tile):
            tile = t
            break
    low = any(n - 1 - w < tile for w in layer)
    return low + high(tile)


def _block_passes(k: int) -> int:
    """A dense step on k wires, in passes: from 4 wires its arithmetic (4**k per 2**k amplitudes)
    outweighs the memory traffic of one pass."""
    return max(1, 2 ** (k - 3))


@functools.lru_cache(maxsize=1024)
def passes(code, n: int) -> int:
    """The passes over an n-qubit state that `code` makes as the kernels run it: a layer (a run
    of one-qubit dense or fused steps on distinct wires, `mark_layers` in `program_parse.cpp`)
    one per pass of its tiles, a linear step two (a copy and a gather back; where the states fit
    64 MiB the kernels gather into a second buffer instead, one pass, but the count stays the
    dearer one, as it does not know the batch), a dense step by
    `_block_passes`, any other step one. What a state that streams from memory costs, to choose
    between two codes for the same program."""
    total, layer = 0, []

    def close():
        return 1 if len(layer) == 1 else _layer_passes(layer, n)

    for s in decode(code):
        one = s.kind in (DENSE, FUSED_DENSE, FUSED_DIAGONAL) and len(s.targets) == 1 and not s.controls
        if one and s.targets[0] not in layer:
            layer.append(s.targets[0])
            continue
        total += close() if layer else 0
        layer = [s.targets[0]] if one else []
        if one:
            continue
        if s.kind == LINEAR:
            total += 2
        elif s.kind in (DENSE, FUSED_DENSE):
            total += _block_passes(len(s.targets) + len(s.controls))
        else:
            total += 1
    return total + (close() if layer else 0)
