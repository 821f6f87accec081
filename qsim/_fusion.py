"""Gate fusion: group gates into blocks of up to ``k`` wires, one pass over the state each.

The plan is static (it depends only on the op records): a greedy sweep keeps a
set of *open* blocks with pairwise disjoint wires. A gate joins the open blocks
it touches when their wires together with its own stay within ``k``; otherwise
those blocks are closed (emitted) and the gate opens a new one. Open blocks
commute (disjoint wires), so emitting a block when it closes keeps the circuit's
meaning. A block of one gate stays that gate (keeping its diagonal or
permutation fast path); a block of only diagonal gates becomes one diagonal.

The fused block's matrix is built from the members' (possibly traced)
parameters at run time, so fusion is differentiable and works inside `repeat`
layers (each layer body is fused once).
"""

from __future__ import annotations

from ._ir import FusedOp, GateOp, LayerFn, RepeatOp


def plan(program, k):
    """Static fusion plan: a list of lists of op indices, in execution order."""
    done, open_blocks = [], []          # open: list of (wires set, [indices]), oldest first
    for i, op in enumerate(program):
        if not isinstance(op, GateOp) or len(op.wires) > k:
            done.extend(b for _, b in open_blocks)
            open_blocks = []
            done.append([i])
            continue
        ws = set(op.wires)
        hit = [b for b in open_blocks if not ws.isdisjoint(b[0])]
        rest = [b for b in open_blocks if ws.isdisjoint(b[0])]
        union = ws.union(*(b[0] for b in hit))
        if len(union) > k:
            done.extend(b[1] for b in hit)
            union, members = ws, [i]
        elif len(hit) == 1:
            members = hit[0][1]          # the block is replaced below: extend its list in place
            members.append(i)
        else:
            members = sorted(j for b in hit for j in b[1]) + [i]
        rest.append((union, members))
        open_blocks = rest
    done.extend(b for _, b in open_blocks)
    return done


def fuse(program, params, k):
    """Return the fused ``(program, params)``; ``k`` <= 1 or None leaves the program as it is."""
    if not k or k <= 1:
        return program, params
    new_prog, new_params = [], []
    for group in plan(program, k):
        if len(group) == 1:
            op, p = program[group[0]], params[group[0]]
            if isinstance(op, RepeatOp):
                op, p = _fuse_repeat(op, p, k)
            new_prog.append(op)
            new_params.append(p)
            continue
        members = tuple(program[i] for i in group)
        wires = tuple(sorted({w for m in members for w in m.wires}))
        diagonal = all(m.gate.structure == "diagonal" for m in members)
        new_prog.append(FusedOp(members, wires, diagonal))
        new_params.append(tuple(params[i] for i in group))
    return tuple(new_prog), tuple(new_params)


def _fuse_repeat(op, p, k):
    body, _ = fuse(op.body, tuple(() for _ in op.body), k)

    def params_fn(w, *consts):
        inner = op.params_fn(w, *consts)
        return fuse(op.body, inner, k)[1]

    return RepeatOp(body, LayerFn(params_fn, ("fused", k, op.params_fn)), op.n_layers), p


def count_passes(program, k) -> int:
    """Number of passes over the state the fused program makes (repeat bodies count per layer)."""
    fused, _ = fuse(program, tuple(() for _ in program), k) if k and k > 1 else (program, None)
    total = 0
    for op in fused:
        total += len(op.body) * op.n_layers if isinstance(op, RepeatOp) else 1
    return total

