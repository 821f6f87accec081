"""Long gate sequences as one `lax.scan`: compile time bounded by the variety of gates, not their number.

XLA:CPU spends about 10 ms compiling each unrolled gate, so a 3000-gate QASM
program would take half a minute to compile. A run of consecutive gate records
(after fusion, with concrete parameters) is lowered to a `ScanOp`: the distinct *signatures*
(structure, wires, controls, static permutation) become the branches of a
`lax.switch`, and a scan walks the step list, feeding each step its block
(a matrix padded to ``(2^K, 2^K)`` and a diagonal padded to ``(2^K,)``). Each
branch is compiled once, however many gates use it.

The per-step blocks are built on the host from the concrete gate parameters, in
complex128 whatever the circuit's dtype, and cast once (`_host`); the adjoint
method walks a `ScanOp` with a reverse scan (see `_adjoint`). On a small state
(at most `GATHER_QUBITS` wires) the scan needs no switch at all: every step is
padded to a dense block on K wires, and the body gathers those wires to the
front of the state, multiplies, and scatters back (branches ``"gather"``), so a
program touching hundreds of different wire sets compiles in a second instead
of compiling one branch per wire set.

With the native CPU kernels the same steps become a `ProgramOp` instead: the
step list is a static attribute of ONE native call (`_native.apply_program`)
and the blocks one flat array, so there is no per-step switch or state copy
(a step wider than the kernels take stays a gate record between programs).

`to_native` does the same for programs with TRACED parameters (inside
``jax.jit``/``jax.grad``): every run of gate and fused records becomes one
`ProgramOp` whose coefficients are the members' own gate matrices, computed
with one vmapped call per gate kind; fused blocks are multiplied out by the
kernel at run time and its adjoint sweep spreads each block's cotangent back
onto the members (chain rule), so the traced graph grows by about one small op
per gate instead of one XLA kernel per gate and per fused product.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from . import _blocks, _fusion, _host
from ._gates import GateDef, gate_matrix, user_matrix
from ._ir import FusedOp, GateOp, LayerFn, ProgramOp, RepeatOp, ScanOp, Signature
from .backends import native_cpu

MIN_OPS = 48   # shorter programs stay unrolled (they compile quickly and run without a switch)
GATHER_QUBITS = 12   # up to this many qubits the XLA scan gathers each step's wires to the front:
                     # one scan body whatever the variety of wires (a switch compiles one branch per wire set)


def _signature_and_block(op, block):
    """Signature of a gate record and its host block (None for permutations)."""
    g = op.gate
    if g.structure == "permutation":
        return Signature("permutation", op.targets, op.controls, g.perm), None
    if g.structure == "diagonal":
        return Signature("diagonal", op.wires, (), None), block
    return Signature("dense", op.targets, op.controls, None), block


def _pad(block, dim, dtype, diagonal):
    if block is None or block.ndim != (1 if diagonal else 2):
        return np.zeros((dim,) if diagonal else (dim, dim), dtype)
    pad = dim - block.shape[0]
    return np.pad(block.astype(dtype), (0, pad) if diagonal else ((0, pad), (0, pad)))


def _assemble(sigs, blocks, dtype):
    """One `ScanOp` (and its padded block arrays) from per-step signatures and blocks."""
    branches = tuple(dict.fromkeys(sigs))
    k_max = max(len(s.targets) for s in sigs)
    dim = 1 << k_max
    dtype = np.dtype(dtype)
    mats = np.stack([_pad(b, dim, dtype, False) for b in blocks])
    diags = np.stack([_pad(b, dim, dtype, True) for b in blocks])
    ids = tuple(branches.index(s) for s in sigs)
    with jax.ensure_compile_time_eval():
        return (ScanOp(branches, ids, k_max),), ((jnp.asarray(mats), jnp.asarray(diags)),)


@functools.lru_cache(maxsize=None)
def _batched_matrix(gate, dtype):
    """Jitted, vmapped ``params -> block`` for one gate definition (compiled once per gate and dtype)."""
    return jax.jit(jax.vmap(lambda *p: gate_matrix(gate, p, dtype)))


def _kind_blocks(gate, rows, dtype):
    """The blocks of several instances of one non-permutation gate kind, stacked ``(N, ...)``
    (``rows``: the instances' parameter tuples, possibly traced)."""
    if gate.matrix is user_matrix:
        return jnp.stack([jnp.asarray(r[0], dtype) for r in rows])
    if gate.n_params == 0:
        m = gate_matrix(gate, (), dtype)
        return jnp.broadcast_to(m, (len(rows),) + m.shape)
    stacked = [jnp.stack([jnp.asarray(r[j]) for r in rows]) for j in range(gate.n_params)]
    return _batched_matrix(gate, np.dtype(dtype))(*stacked)


def host_steps(program, params, dtype, k):
    """The fused steps of a concrete gate program, built on the host: their signatures and
    blocks, multiplied in complex128 (`_host`) and cast to ``dtype`` once."""
    blocks = _host.gate_blocks(program, params)
    groups = _fusion.plan(program, k) if k and k > 1 else [[i] for i in range(len(program))]
    sigs, mats = [], []
    for group in groups:
        if len(group) == 1:
            sig, blk = _signature_and_block(program[group[0]], blocks[group[0]])
        else:
            members = [program[i] for i in group]
            wires = tuple(sorted({w for m in members for w in m.wires}))
            sig, blk = _host.fused_block(members, [blocks[i] for i in group], wires)
        sigs.append(sig)
        mats.append(blk)
    return sigs, _host.cast(mats, dtype)


def lower_concrete(program, params, dtype, k, backend, n_qubits=None):
    """Fuse and lower a gate-only program whose parameters are all concrete, on the host.

    Same result as `fuse` then one scan step per block, without per-gate device calls: the
    blocks are multiplied in complex128 numpy (`_host`) and cast to ``dtype`` once. On the native
    kernels, a state that streams from memory runs the program unfused instead when that makes
    fewer passes over it (`native_cpu.passes`: the kernels merge its one-qubit runs into layers
    and its CNOT chains into linear steps); on a tie the blocks run, one rounding each. Without
    native kernels, a state of at most `GATHER_QUBITS` wires (``n_qubits``, else the highest
    wire used) runs the steps as gathered dense blocks (see `scan_apply`).
    """
    n = n_qubits or 1 + max(w for op in program for w in op.wires)
    native = backend.programs
    if native is not None:
        k = min(k, native.MAX_TARGETS)
        runs = _native_runs(native, *host_steps(program, params, dtype, k), dtype)
        if k > 1 and native.streams(n):
            # A state that streams from memory: the gate-by-gate program, which the kernels run
            # as one-qubit layers and linear steps for CNOT chains, when it makes fewer passes.
            plain = _native_runs(native, *host_steps(program, params, dtype, 1), dtype)
            if _native_passes(native, plain[0], n) < _native_passes(native, runs[0], n):
                return plain
        return runs
    sigs, mats = host_steps(program, params, dtype, k)
    if n <= GATHER_QUBITS:
        return _assemble_gathered(sigs, mats, dtype, n)
    return _assemble(sigs, mats, dtype)


def _step_matrix(sig, block, dtype):
    """A step as ``(wires, dense matrix on them)``, controls included (exact: no rounding)."""
    if sig.structure == "diagonal":
        return sig.targets, np.diag(block)
    if sig.structure == "permutation":
        block = _blocks.perm_matrix(sig.perm, dtype, xp=np)
    return sig.controls + sig.targets, _blocks.controlled(block.astype(dtype), len(sig.controls), xp=np)


def _assemble_gathered(sigs, blocks, dtype, n):
    """One `ScanOp` whose steps are all dense blocks on the same number K of wires (each step
    padded with the identity on spare wires); its branches are ``Signature("gather", wires)``."""
    dtype = np.dtype(dtype)
    steps = [_step_matrix(s, b, dtype) for s, b in zip(sigs, blocks)]
    k_max = max(len(w) for w, _ in steps)
    sigs, mats = [], np.empty((len(steps), 1 << k_max, 1 << k_max), dtype)
    for i, (wires, m) in enumerate(steps):
        spare = tuple(w for w in range(n) if w not in wires)[:k_max - len(wires)]
        sigs.append(Signature("gather", wires + spare, (), None))
        mats[i] = np.kron(m, np.eye(1 << len(spare), dtype=dtype))
    branches = tuple(dict.fromkeys(sigs))
    index = {b: j for j, b in enumerate(branches)}
    ids = tuple(index[s] for s in sigs)
    with jax.ensure_compile_time_eval():
        return (ScanOp(branches, ids, k_max),), ((jnp.asarray(mats), jnp.zeros((len(steps), 0), dtype)),)


def _native_runs(native, sigs, blocks, dtype):
    """One `ProgramOp` per run of steps the native kernels take (at most ``MAX_TARGETS`` targets);
    a wider step (a 6-qubit user matrix) stays a gate record of its block, run by the XLA kernels."""
    program, params, run = [], [], []

    def flush():
        if run:
            op, p = _encode(native, [s for s, _ in run], [b for _, b in run], dtype)
            program.extend(op)
            params.extend(p)
            run.clear()

    for sig, blk in zip(sigs, blocks):
        if len(sig.targets) <= native.MAX_TARGETS:
            run.append((sig, blk))
            continue
        flush()
        wires, m = _step_matrix(sig, blk, np.dtype(dtype))
        program.append(GateOp(GateDef("unitary", len(wires), 1, "dense", 0, user_matrix, None, None), wires))
        with jax.ensure_compile_time_eval():
            params.append((jnp.asarray(m),))
    flush()
    return tuple(program), tuple(params)


def _native_passes(native, ops, n):
    """Passes over an n-qubit state of a `_native_runs` program (a wide gate record: one)."""
    return sum(native.passes(op.code, n) if isinstance(op, ProgramOp) else 1 for op in ops)


def _encode(native, sigs, blocks, dtype):
    """One `ProgramOp` and its flat coefficient array from per-step signatures and blocks."""
    kinds = {"dense": native.DENSE, "diagonal": native.DIAGONAL, "permutation": native.PERMUTATION}
    code, flat, offset = [], [], 0
    for sig, blk in zip(sigs, blocks):
        code += native.encode_step(kinds[sig.structure], sig.targets, sig.controls, sig.perm, offset)
        if sig.structure != "permutation":
            flat.append(np.asarray(blk).reshape(-1))
            offset += flat[-1].size
    coefs = np.concatenate(flat) if flat else np.zeros(1)
    with jax.ensure_compile_time_eval():
        return (ProgramOp(tuple(code), True),), ((jnp.asarray(coefs.astype(np.dtype(dtype))),),)


def _member_step(native, op, offset, where=None):
    """Step record of one gate op (wires as given, or as positions in ``where``) and its size."""
    g = op.gate
    pos = (lambda ws: ws) if where is None else (lambda ws: tuple(where.index(w) for w in ws))
    if g.structure == "permutation":
        return native.encode_step(native.PERMUTATION, pos(op.targets), pos(op.controls), g.perm, offset), 0
    if g.structure == "diagonal":
        return native.encode_step(native.DIAGONAL, pos(op.wires), (), None, offset), 1 << len(op.wires)
    rec = native.encode_step(native.DENSE, pos(op.targets), pos(op.controls), None, offset)
    return rec, 1 << (2 * len(op.targets))


def _records(native, ops, offset=0):
    """The native records of a run of gate, fused and written-out repeat ops, coefficients from
    ``offset`` on (fused blocks multiplied at run time; a repeat's layers one after the other)."""
    code = []
    for op in ops:
        if isinstance(op, RepeatOp):
            for _ in range(op.n_layers):
                body, offset = _records(native, op.body, offset)
                code += body
        elif isinstance(op, FusedOp):
            members = []
            for m in op.members:
                rec, size = _member_step(native, m, offset, op.wires)
                members.append(rec)
                offset += size
            code += native.encode_fused(op.wires, members, op.diagonal)
        else:
            rec, size = _member_step(native, op, offset)
            code += rec
            offset += size
    return code, offset


def _program_code(native, ops):
    return tuple(_records(native, ops)[0])


def _has_coefs(ops) -> bool:
    return any(m.gate.structure != "permutation" for op in ops
               for m in (op.members if isinstance(op, FusedOp) else (op,)))


def _program_coefs(ops, params, dtype):
    """The coefficients of a run, in record order: one vmapped matrix call per gate kind and
    one gather (so the traced graph grows by about one op per gate, not one per matrix entry);
    a written-out repeat's layers come from ONE call vmapped over its layers, so the traced
    graph does not grow with their number either."""
    pieces, segment = [], []

    def flush():
        if segment and _has_coefs([o for o, _ in segment]):
            pieces.append(_gate_coefs([o for o, _ in segment], [p for _, p in segment], dtype))
        segment.clear()

    for op, p in zip(ops, params):
        if not isinstance(op, RepeatOp):
            segment.append((op, p))
            continue
        flush()
        if _has_coefs(op.body):
            stacked, consts = p
            per_layer = jax.vmap(lambda w, op=op, consts=consts: _gate_coefs(
                op.body, op.params_fn(w, *consts), dtype))(stacked)
            pieces.append(per_layer.reshape(-1))
    flush()
    if not pieces:
        return jnp.zeros((1,), dtype)
    return jnp.concatenate(pieces) if len(pieces) > 1 else pieces[0]


def _gate_coefs(ops, params, dtype):
    """`_program_coefs` of gate and fused ops (at least one with coefficients)."""
    gates = []
    for op, p in zip(ops, params):
        for m, mp in (zip(op.members, p) if isinstance(op, FusedOp) else ((op, p),)):
            if m.gate.structure != "permutation":
                gates.append((m.gate, mp))
    kinds: dict = {}
    for i, (g, _) in enumerate(gates):
        kinds.setdefault(g, []).append(i)
    pieces, where, base = [], [None] * len(gates), 0
    for g, idx in kinds.items():
        block = _kind_blocks(g, [gates[i][1] for i in idx], dtype)
        flat = block.reshape(len(idx), -1).astype(dtype)
        for q, i in enumerate(idx):
            where[i] = base + q * flat.shape[1] + np.arange(flat.shape[1])
        pieces.append(flat.reshape(-1))
        base += flat.size
    order = np.concatenate(where)
    flat = jnp.concatenate(pieces) if len(pieces) > 1 else pieces[0]
    return flat if np.array_equal(order, np.arange(order.size)) else flat[order]


def _native_gate(op, native) -> bool:
    return isinstance(op, (GateOp, FusedOp)) and len(op.wires) - len(getattr(op, "controls", ())) <= native.MAX_TARGETS


def written_out(op, native) -> bool:
    """Whether `to_native` writes `repeat` ``op`` out into the surrounding native program, layer
    after layer (`UNROLL_MAX_LAYERS`), when the state's size is known."""
    return (isinstance(op, RepeatOp) and op.n_layers <= UNROLL_MAX_LAYERS
            and all(_native_gate(b, native) for b in op.body))


def _native_plan(program, native, dtype, n_qubits=None):
    """Static: the new program and, per new record, the old indices it covers (a ProgramOp covers
    a run of gate and fused records, and of short repeats; other records map to
    themselves, repeat bodies converted)."""
    new, groups, run = [], [], []

    def flush():
        if run:
            new.append(ProgramOp(_program_code(native, [program[i] for i in run]), False))
            groups.append(tuple(run))
            run.clear()

    for i, op in enumerate(program):
        if _native_gate(op, native) or (n_qubits is not None and written_out(op, native)):
            run.append(i)
            continue
        flush()
        if isinstance(op, RepeatOp):
            op = _native_repeat(op, native, dtype)
        new.append(op)
        groups.append((i,))
    flush()
    return tuple(new), tuple(groups)


def _native_params(program, plan, params, dtype):
    new, groups = plan
    return tuple((_program_coefs([program[i] for i in g], [params[i] for i in g], dtype),)
                 if isinstance(op, ProgramOp) and not isinstance(program[g[0]], ProgramOp)
                 else params[g[0]] for op, g in zip(new, groups))


# A `repeat` of at most this many layers is written out into the surrounding native program: one
# call instead of a scan of calls, and the layers' one-qubit runs merge across layer boundaries (an
# angle encoding with the first layer's rotations). The layers' coefficients come from one call
# vmapped over them and the native program is one call whatever its length, so the traced graph
# does not grow with the layers; reverse mode keeps one state for the whole program (the sweep
# recovers the rest), where a scan of calls keeps one per layer. At every size: an HEA step
# (L=4, batch 1) at n=20 took 67 ms in backprop and 45 ms in adjoint as a scan, 40 and 41 ms
# written out.
UNROLL_MAX_LAYERS = 16


def to_native(program, params, dtype, backend, n_qubits=None):
    """Runs of gate and fused records become one `ProgramOp` each, whose coefficients are computed
    here with ordinary (differentiable) JAX ops; repeat bodies too (short repeats, when ``n_qubits``
    is given, join the surrounding run). Unchanged without native kernels."""
    native = backend.programs
    if native is None:
        return program, params
    plan = _native_plan(program, native, dtype, n_qubits)
    return plan[0], _native_params(program, plan, params, dtype)


def _native_repeat(op, native, dtype):
    plan = _native_plan(op.body, native, dtype)

    def params_fn(w, *consts):
        return _native_params(op.body, plan, op.params_fn(w, *consts), dtype)

    return RepeatOp(plan[0], LayerFn(params_fn, ("native", op.params_fn)), op.n_layers)


def program_apply(op: ProgramOp, params, state, inverse=False):
    return native_cpu.apply_program(state, params[0], op.code, inverse)


def program_adjoint(op: ProgramOp, params, psi, lam):
    """(state before, co-state before, (coefficient cotangent,)) in one native sweep."""
    x, g, ct = native_cpu.program_adjoint(op.code, params[0], psi, lam, want_ct=not op.const)
    return x, g, (ct,)


def apply_signature(sig: Signature, state, mat, diag, backend, inverse=False):
    """Apply one step (or its inverse) given its padded blocks."""
    dim = 1 << len(sig.targets)
    if sig.structure == "permutation":
        perm = sig.perm
        if inverse:
            perm = _blocks.inverse_perm(perm)
        return backend.apply_permutation(state, perm, sig.targets, sig.controls)
    if sig.structure == "diagonal":
        d = diag[:dim]
        return backend.apply_diagonal(state, jnp.conj(d) if inverse else d, sig.targets)
    u = mat[:dim, :dim]
    return backend.apply_dense(state, jnp.conj(u).T if inverse else u, sig.targets, sig.controls)


def _bit_gather(n, order):
    """Index vector ``g`` with ``x[g]`` = ``x`` with wire ``order[j]`` moved to bit position ``j``
    (MSB first): ``order`` is a traced ``(n,)`` int vector, so one body serves every wire set."""
    i = jnp.arange(1 << n, dtype=jnp.int32)
    out = jnp.zeros_like(i)
    for j in range(n):
        out = out | (((i >> (n - 1 - order[j])) & 1) << (n - 1 - j))
    return out


def _gather_tables(op, n):
    """Per branch: the wire order putting its wires first, and its inverse (``(B, n)`` int32)."""
    orders = np.array([list(b.targets) + [w for w in range(n) if w not in b.targets] for b in op.branches],
                      np.int32)
    return jnp.asarray(orders), jnp.asarray(np.argsort(orders, axis=1).astype(np.int32))


def _gather_step(state, u, order, inv, k):
    """Dense ``u`` on the ``k`` leading wires of ``order``: gather them to the front, one matmul, scatter back."""
    n = state.shape[-1].bit_length() - 1
    front = state[_bit_gather(n, inv)].reshape(1 << k, -1)
    return jnp.matmul(u, front, precision=jax.lax.Precision.HIGHEST).reshape(-1)[_bit_gather(n, order)]


def _gathered(op, state):
    """Run ``op`` by gathers: its steps are padded dense blocks and the state is small (a larger
    state, when a caller lowered without saying how many qubits, takes the switch: the padded
    blocks are ordinary dense steps to `apply_signature`)."""
    return op.branches[0].structure == "gather" and state.shape[-1] <= 1 << GATHER_QUBITS


def _gather_scan(op, mats, state, inverse):
    orders, invs = _gather_tables(op, state.shape[-1].bit_length() - 1)

    def body(s, x):
        i, m = x
        return _gather_step(s, jnp.conj(m).T if inverse else m, orders[i], invs[i], op.k_max), None

    ids = jnp.asarray(np.asarray(op.ids, np.int32))
    state, _ = jax.lax.scan(body, state, (ids, mats), reverse=inverse)
    return state


def _gather_adjoint(op, mats, diags, psi, lam):
    orders, invs = _gather_tables(op, psi.shape[-1].bit_length() - 1)

    def body(carry, x):
        i, m = x
        psi, lam = carry
        psi = _gather_step(psi, jnp.conj(m).T, orders[i], invs[i], op.k_max)
        _, vjp = jax.vjp(lambda m_, s_: _gather_step(s_, m_, orders[i], invs[i], op.k_max), m, psi)
        gm, lam = vjp(lam)
        return (psi, lam), gm

    ids = jnp.asarray(np.asarray(op.ids, np.int32))
    (psi, lam), gms = jax.lax.scan(body, (psi, lam), (ids, mats), reverse=True)
    return psi, lam, (gms, jnp.zeros_like(diags))


def scan_apply(op: ScanOp, params, state, backend, inverse=False):
    mats, diags = params
    if _gathered(op, state):
        return _gather_scan(op, mats, state, inverse)
    branches = [lambda s, m, d, sig=sig: apply_signature(sig, s, m, d, backend, inverse) for sig in op.branches]

    def body(s, x):
        i, m, d = x
        return jax.lax.switch(i, branches, s, m, d), None

    ids = jnp.asarray(np.asarray(op.ids, np.int32))
    state, _ = jax.lax.scan(body, state, (ids, mats, diags), reverse=inverse)
    return state


def scan_adjoint(op: ScanOp, params, psi, lam, backend):
    """Reverse scan of adjoint steps; returns (state before, co-state before, (mat, diag) cotangents)."""
    mats, diags = params
    if _gathered(op, psi):
        return _gather_adjoint(op, mats, diags, psi, lam)

    def step(sig):
        def f(psi, lam, m, d):
            psi = apply_signature(sig, psi, m, d, backend, inverse=True)
            _, vjp = jax.vjp(lambda m_, d_, s_: apply_signature(sig, s_, m_, d_, backend), m, d, psi)
            gm, gd, lam = vjp(lam)
            return psi, lam, gm, gd
        return f

    branches = [step(sig) for sig in op.branches]

    def body(carry, x):
        i, m, d = x
        psi, lam, gm, gd = jax.lax.switch(i, branches, *carry, m, d)
        return (psi, lam), (gm, gd)

    ids = jnp.asarray(np.asarray(op.ids, np.int32))
    (psi, lam), grads = jax.lax.scan(body, (psi, lam), (ids, mats, diags), reverse=True)
    return psi, lam, grads
