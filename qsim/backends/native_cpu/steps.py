"""The step format of a native program: the ONE definition shared by Python and `csrc/`.

A program is a static tuple of int64 (the ``code`` attribute of the FFI call)
holding one record per step, and a flat array of complex coefficients:

- ``DENSE``: ``(0, k, nc, offset, targets[k], controls[nc])``; ``4**k`` coefficients at
  ``offset``, the row-major ``(2**k, 2**k)`` matrix on the targets (first target = most
  significant bit), applied where every control is 1;
- ``DIAGONAL``: ``(1, k, 0, offset, wires[k])``; ``2**k`` coefficients;
- ``PERMUTATION``: ``(2, k, nc, 0, targets[k], controls[nc], perm[2**k])``, ``out[j] = in[perm[j]]``;
- ``LINEAR``: ``(5, k, 0, 0, wires[k], cols[k])``, ``out[a] = in[M a]`` over GF(2) on the wires'
  bits (``a``'s first bit = ``wires[0]``), ``cols[j]`` the k-bit image of position j: a network of
  CNOTs and SWAPs in one pass (any k);
- ``FUSED_DENSE`` / ``FUSED_DIAGONAL``: ``(3|4, K, 0, 0, wires[K], r, member records...)``: a
  block multiplied out at run time from ``r`` member records (kinds 0-2) whose targets and
  controls are POSITIONS in ``wires`` (0 = ``wires[0]``, the block's most significant bit).

`decode` turns a code back into `Step` records, for the pure-JAX reference executor
(`qsim.backends.xla.run_code`) that gives every native program its derivatives of order two
and more.
"""

from __future__ import annotations

from typing import NamedTuple

MAX_TARGETS = 5   # csrc/qsim_native.h: kMaxTargets
DENSE, DIAGONAL, PERMUTATION, FUSED_DENSE, FUSED_DIAGONAL, LINEAR = 0, 1, 2, 3, 4, 5


class Step(NamedTuple):
    kind: int
    targets: tuple[int, ...]     # fused: the block's wires
    controls: tuple[int, ...]
    offset: int
    perm: tuple[int, ...] | None  # LINEAR: the columns
    members: tuple["Step", ...]  # fused steps only (wires as positions in ``targets``)


def encode_step(kind, targets, controls=(), perm=None, offset=0) -> tuple[int, ...]:
    """One step record: kind, k, nc, coefficient offset, targets, controls[, perm]."""
    rec = (int(kind), len(targets), len(controls), int(offset), *map(int, targets), *map(int, controls))
    return rec + tuple(int(p) for p in perm) if kind == PERMUTATION else rec


def encode_linear(wires, cols) -> tuple[int, ...]:
    """A linear step on ``wires``: ``out[a] = in[M a]`` with ``cols[j]`` = M's column j (k bits)."""
    return (LINEAR, len(wires), 0, 0, *map(int, wires), *map(int, cols))


def encode_fused(wires, members, diagonal=False) -> tuple[int, ...]:
    """A fused step on ``wires`` multiplied out at run time from ``members`` (records whose
    wires are positions in ``wires``), applied first to last."""
    kind = FUSED_DIAGONAL if diagonal else FUSED_DENSE
    rec = (kind, len(wires), 0, 0, *map(int, wires), len(members))
    return rec + tuple(x for m in members for x in m)


def _decode_one(code, i):
    kind, k, nc, offset = code[i:i + 4]
    i += 4
    targets, controls = tuple(code[i:i + k]), tuple(code[i + k:i + k + nc])
    i += k + nc
    perm, members = None, ()
    if kind == PERMUTATION:
        perm, i = tuple(code[i:i + (1 << k)]), i + (1 << k)
    elif kind == LINEAR:       # its columns follow the wires (nc = 0)
        perm, i = tuple(code[i:i + k]), i + k
    elif kind in (FUSED_DENSE, FUSED_DIAGONAL):
        r, i = code[i], i + 1
        out = []
        for _ in range(r):
            m, i = _decode_one(code, i)
            out.append(m)
        members = tuple(out)
    return Step(kind, targets, controls, offset, perm, members), i


def decode(code) -> tuple[Step, ...]:
    """The `Step` records of a program code (the inverse of the encoders)."""
    steps, i = [], 0
    while i < len(code):
        s, i = _decode_one(code, i)
        steps.append(s)
    return tuple(steps)


def encode(step: Step) -> tuple[int, ...]:
    """The record of a plain (not fused) decoded `Step`."""
    if step.kind == LINEAR:
        return encode_linear(step.targets, step.perm)
    return encode_step(step.kind, step.targets, step.controls, step.perm, step.offset)


def unfuse(code) -> tuple[int, ...]:
    """The same program with every fused step replaced by its members (on their wires).

    The coefficients are laid out identically (members keep their offsets), so the two codes
    take the same coefficient array. Worth it where multiplying a block out costs more than
    the passes it saves: small states (in cache), and blocks built per state under ``vmap``.
    """
    out = []
    for s in decode(code):
        if s.kind not in (FUSED_DENSE, FUSED_DIAGONAL):
            out += encode(s)
            continue
        for m in s.members:
            positions = m.targets + m.controls
            if len(set(positions)) != len(positions) or not all(0 <= p < len(s.targets) for p in positions):
                raise ValueError(f"qsim native program: fused member positions must be distinct and inside "
                                 f"the block of {len(s.targets)} wires, got {positions}")
            wire = lambda ps: tuple(s.targets[p] for p in ps)  # noqa: E731
            out += encode(m._replace(targets=wire(m.targets), controls=wire(m.controls)))
    return tuple(out)
