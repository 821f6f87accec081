"""A statevector sharded over the devices of a mesh: ``Circuit(n, mesh=mesh)``.

The flat state of 2**n amplitudes is split row-major over the D = 2**g devices
of a one-axis `jax.sharding.Mesh` (``NamedSharding(mesh, P(axis))``), so the
top g wires are *global*: they index the device. Everything runs inside one
``jax.shard_map``, where each device holds its 2**(n - g) amplitudes as an
ordinary (n - g)-qubit state: the wire-layout plan (`_layout`) rewrites the
program into gates on local wires (device-dependent where a diagonal or a
control sits on a global wire) and `SwapOp` records, then the usual pipeline
runs on each shard: fusion within each segment between swaps, the native
program on CPU hosts (XLA kernels elsewhere), the adjoint walk. A `SwapOp`
trades half of each shard with the partner device in place, a chunk at a time:
a loop of ``ppermute``s over the mesh axis of its global bit, each chunk sliced
out of the loop-carried shard and written back over it (`swap`), so a device
holds its shard and two chunks of 1/16 of it, not the three shards of one
``all_to_all`` (the shard, XLA's transposed copy, the output). JAX is the whole
transport, so ``jit``, ``grad``, ``vmap`` and ``jax.distributed`` (several
hosts) apply unchanged.

Inside, the user's mesh is viewed as g axes of size 2 (same devices, same
order), one per global bit, so that a swap talks to exactly the partner that
differs in that bit. Results are read in the permuted layout where they can be
(Pauli words and marginals use the wire map: a flip on a global wire fetches
the partner's shard with ``ppermute``, global signs and marginal bits come from
the device index); only `state`, the full `probs` and `sample` put the wires
back in natural order first.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, PartitionSpec as P

from . import _executor, _shift, _simulate
from ._gates import gate_matrix
from ._ir import LayerFn, RepeatOp
from ._layout import Step, SwapOp, plan, undo
from ._linear import custom_linear
from ._observables import _sign_tensor, combine_words
from ._validate import StateTooLargeError, available_bytes, fmt_bytes, is_concrete
from .backends.xla import split_shape

_AXIS = "qsim_bit{}"     # axis of global position a in the internal mesh (size 2 each)
_ONE = "qsim_device"     # the single axis of a one-device mesh


# ------------------------------------------------------------------ mesh and memory ------

def check_mesh(mesh, n, where="Circuit"):
    """``mesh`` if it is a one-axis `jax.sharding.Mesh` of D = 2**g devices with D <= 2**(n-1)."""
    if mesh is None:
        return None
    if not isinstance(mesh, Mesh):
        raise TypeError(f"{where}: mesh must be a jax.sharding.Mesh with one axis, e.g. "
                        f"Mesh(jax.devices(), ('d',)), got {type(mesh).__name__}")
    if len(mesh.axis_names) != 1:
        raise ValueError(f"{where}: mesh must have exactly one axis, got axes {mesh.axis_names} of shape "
                         f"{tuple(mesh.devices.shape)}; reshape its devices to one axis")
    d = mesh.size
    if d & (d - 1):
        raise ValueError(f"{where}: mesh must hold a power of 2 devices (1, 2, 4, 8, ...), got {d}")
    if d > 1 << (n - 1):
        raise ValueError(f"{where}: {d} devices need at least {d.bit_length()} qubits (each device keeps "
                         f"at least 2 amplitudes), got n_qubits={n}; use at most {1 << (n - 1)} devices")
    return mesh


def n_global(mesh) -> int:
    """g: the number of wires that index the devices of ``mesh``."""
    return mesh.size.bit_length() - 1


@functools.lru_cache(maxsize=64)
def _inner(mesh):
    """The devices of ``mesh`` as one axis of size 2 per global bit, and the axis names."""
    g = n_global(mesh)
    names = tuple(_AXIS.format(a) for a in range(g)) or (_ONE,)
    return Mesh(mesh.devices.reshape((2,) * g or (1,)), names), names


def device_bytes(mesh) -> tuple[int, str]:
    """Memory free for states on each device of ``mesh``, and where it was read.

    Accelerators report their own; CPU devices of one process share its host RAM.
    """
    local = [d for d in mesh.devices.flat if d.process_index == jax.process_index()]
    if local[0].platform != "cpu":
        stats = [d.memory_stats() or {} for d in local]
        if all("bytes_limit" in s for s in stats):
            free = min(int(s["bytes_limit"]) - int(s.get("bytes_in_use", 0)) for s in stats)
            return free, f"{local[0].device_kind} memory per device"
    have, what = available_bytes()
    return have // len(local), f"{what} shared by {len(local)} device(s)"


def check_memory(n, dtype, n_states, where, mesh):
    """Raise `StateTooLargeError` if ``n_states`` shards of an ``n``-qubit state, and the swaps'
    two exchange chunks (`swap_buffer_bytes`: the swap runs in place), do not fit on each device."""
    d = mesh.size
    itemsize = jnp.dtype(dtype).itemsize
    per_state = (1 << n) // d * itemsize
    buffers = swap_buffer_bytes(n - n_global(mesh), itemsize) if d > 1 else 0
    need = per_state * n_states + buffers
    have, what = device_bytes(mesh)
    if need > have:
        helps = ["fewer qubits", "more devices"] + (["complex64"] if jnp.dtype(dtype) == jnp.complex128 else [])
        helps += ['diff="adjoint" (no saved state per layer)'] if n_states > 4 else []
        raise StateTooLargeError(
            f"{where}: {n} qubits in {jnp.dtype(dtype).name} over {d} devices need {fmt_bytes(need)} per "
            f"device ({n_states} shard(s) of {fmt_bytes(per_state)}"
            f"{f' and {fmt_bytes(buffers)} of swap chunks' if buffers else ''}), "
            f"but only {fmt_bytes(have)} of {what} is free; what would help: {', '.join(helps)}")


def _guard(circ, program, params, k, diff, where):
    traced = not all(is_concrete(x) for x in jax.tree.leaves((params, circ._init)))
    n_states = _simulate.states_held(program, diff, circ.backend, k, written_out=False) if traced else 2
    check_memory(circ.n_qubits, circ.dtype, n_states, where, circ.mesh)


# ------------------------------------------------------------------ shard-local pieces ------

def _bit(position):
    """This device's global bit at ``position`` (int32 scalar; inside the shard_map)."""
    return jax.lax.axis_index(_AXIS.format(position))


def _device_index(g):
    return sum((_bit(a) << (g - 1 - a) for a in range(g)), jnp.int32(0))


# The swaps exchange each shard in place, a chunk at a time: one ``all_to_all`` of the whole
# moving half would hold the shard, XLA's transposed copy of it and the collective's output
# (3 shards per device). A chunk is 1/_CHUNK_PARTS of the shard, at least _CHUNK_FLOOR bytes
# (fewer, larger messages for small shards) and at most the half that moves.
_CHUNK_PARTS = 16
_CHUNK_FLOOR = 64 << 10
_FLAT_MAX = 1 << 31              # shards this big index their chunks by int32 offsets


def chunk_amplitudes(n_local: int, itemsize: int) -> int:
    """Amplitudes in one exchanged chunk of a swap on a shard of ``n_local`` qubits (a power of 2)."""
    half = 1 << (n_local - 1)
    want = max((1 << n_local) // _CHUNK_PARTS, _CHUNK_FLOOR // itemsize, 1)
    return min(half, 1 << (want.bit_length() - 1))


def swap_buffer_bytes(n_local: int, itemsize: int) -> int:
    """Bytes a swap holds beside the shard: the chunk sent and the chunk received."""
    return 2 * chunk_amplitudes(n_local, itemsize) * itemsize


def _exchange(state, op: SwapOp):
    """The shard after the swap, updated in place (`swap`'s map, without its transpose rule).

    Local wire ``op.local_wire`` splits the shard into rows of 2R amplitudes, R for each of
    its values. Device c keeps the half where that wire equals its global bit c and trades
    the other half with its partner (which sends its half where the wire is c; it lands in
    the same place): a loop over the chunks of that half, each one ``dynamic_slice``, one
    ``ppermute`` and a ``dynamic_update_slice`` into the loop-carried shard, which XLA then
    updates in place. ``ppermute`` sends only the half that moves (an ``all_to_all`` would
    also hand the staying half to itself: twice the buffers). Where a row's half is at least a
    chunk, a chunk is a run of it; where rows are shorter, a chunk is a block of whole rows and
    only its moving half travels. Slices are 1-d on the flat shard: a reshape of the carried
    shard made XLA copy the whole shard in every iteration (the in-place update through a
    bitcast is not recognised), or, carried reshaped, before the native program. Past
    ``_FLAT_MAX`` amplitudes (int32 offsets) the loop carries rows of one chunk instead,
    correct but with that copy on the native CPU path.
    """
    lead, dim = state.shape[:-1], state.shape[-1]
    nl = dim.bit_length() - 1
    row = 1 << (nl - 1 - op.local_wire)                  # R
    k = chunk_amplitudes(nl, state.dtype.itemsize)
    axis = _AXIS.format(op.global_pos)
    away = 1 - jax.lax.axis_index(axis)                  # the half this device sends away
    last = len(lead)
    if dim <= _FLAT_MAX:                                 # chunk j starts at amplitude j * k
        x = state
        take = lambda x, j: jax.lax.dynamic_slice_in_dim(x, j * k, k, last)  # noqa: E731
        put = lambda x, v, j: jax.lax.dynamic_update_slice_in_dim(x, v, j * k, last)  # noqa: E731
    else:                                                # int32 offsets would overflow: row j of chunks
        x = state.reshape(lead + (dim // k, k))
        take = lambda x, j: jax.lax.dynamic_index_in_dim(x, j, last, False)  # noqa: E731
        put = lambda x, v, j: jax.lax.dynamic_update_index_in_dim(x, v, j, last)  # noqa: E731

    def trade(v):
        return jax.lax.ppermute(v, axis, [(0, 1), (1, 0)])

    if row >= k:
        runs = row // k
        n_chunks = dim // 2 // k

        def body(i, x):
            i = jnp.asarray(i, jnp.int32)                 # int64 loop index under x64
            j = i // runs * 2 * runs + away * runs + i % runs
            return put(x, trade(take(x, j)), j)
    else:
        n_chunks = dim // k

        def body(i, x):
            j = jnp.asarray(i, jnp.int32)
            block = take(x, j).reshape(lead + (k // (2 * row), 2, row))
            moved = trade(jax.lax.dynamic_index_in_dim(block, away, last + 1))
            block = jax.lax.dynamic_update_index_in_dim(block, moved, away, last + 1)
            return put(x, block.reshape(lead + (k,)), j)

    x = jax.lax.fori_loop(0, n_chunks, body, x) if n_chunks > 1 else body(0, x)
    return x.reshape(state.shape)


def swap(state, op: SwapOp):
    """Exchange global bit ``op.global_pos`` with local wire ``op.local_wire`` (see `_exchange`).

    A bit swap is a permutation that is its own inverse, so it is its own transpose: as a
    `custom_linear` map, ``grad`` runs the same in-place loop on the cotangent instead of
    transposing the loop's slices (which would pad every chunk to a full shard).
    """
    return custom_linear(lambda _, x: _exchange(x, op), lambda _, ct: _exchange(ct, op), (), state)


def _swap_apply(op, params, state, backend, inverse=False):
    return swap(state, op)        # a bit swap is its own inverse


def _swap_backward(op, params, psi, lam, backend):
    return swap(psi, op), swap(lam, op), ()


_executor.APPLY[SwapOp] = _swap_apply
_executor.BACKWARD[SwapOp] = _swap_backward


def _sliced(where, params, dtype):
    """The parameters of a gate sliced by this device's global bits (see `_layout.Slice`)."""
    block = gate_matrix(where.gate, params, dtype)
    bits = [(axis, _bit(p)) for axis, p in zip(where.axes, where.positions)]
    if where.kind == "control":
        on = jnp.all(jnp.stack([b for _, b in bits]) == 1)
        return (jnp.where(on, block, jnp.eye(block.shape[0], dtype=block.dtype)),)
    t = block.reshape((2,) * (block.shape[0].bit_length() - 1))
    for axis, b in sorted(bits, key=lambda ab: -ab[0]):
        t = jax.lax.dynamic_index_in_dim(t, b, axis, keepdims=False)
    return (jnp.broadcast_to(t, (2,)) if t.ndim == 0 else t.reshape(-1),)


def _steps(steps, params, dtype):
    """Records and parameters of a run of `Step`s (``params``: those of the logical ops)."""
    prm = tuple(() if s.source is None else params[s.source] if s.slice is None
                else _sliced(s.slice, params[s.source], dtype) for s in steps)
    return tuple(s.record for s in steps), prm


def _period_fn(params_fn, period, dtype):
    """A `LayerFn` giving the parameters of one period (m layers stacked on the slice's axis 0)."""
    def fn(w, *consts):
        out = ()
        for t, steps in enumerate(period):
            out += _steps(steps, params_fn(jax.tree.map(lambda x: x[t], w), *consts), dtype)[1]
        return out
    return LayerFn(fn, ("sharded", params_fn, period, jnp.dtype(dtype).name))


def physical(the_plan, program, params, dtype):
    """The shard-local program (records on local wires, `SwapOp`s, period scans) and its params."""
    prog, prm = [], []

    def emit(steps, p):
        r, q = _steps(steps, p, dtype)
        prog.extend(r)
        prm.extend(q)

    for item in the_plan.items:
        if isinstance(item, Step):
            emit((item,), params)
            continue
        op, (stacked, consts) = program[item.source], params[item.source]
        layer = lambda j: op.params_fn(jax.tree.map(lambda x: x[j], stacked), *consts)  # noqa: E731
        for j, steps in enumerate(item.prefix):
            emit(steps, layer(j))
        start, m, q = len(item.prefix), len(item.period), item.n_periods
        if q:
            body = tuple(s.record for steps in item.period for s in steps)
            prog.append(RepeatOp(body, _period_fn(op.params_fn, item.period, dtype), q))
            prm.append((jax.tree.map(lambda x: x[start:start + q * m].reshape((q, m) + x.shape[1:]), stacked),
                        consts))
        for t in range(item.remainder):
            emit(item.period[t], layer(start + q * m + t))
    return tuple(prog), tuple(prm)


def _local_run(program, params, init, n, dtype, diff, fuse_k, backend, g):
    """This device's shard after ``program``, in the plan's final layout."""
    prog, prm = physical(plan(program, n, g), program, params, dtype)
    if init is None:
        first = (_device_index(g) == 0).astype(dtype)
        init = jnp.zeros((1 << (n - g),), dtype).at[0].set(first)
    return _simulate._state(prog, prm, init, n - g, dtype, diff, fuse_k, backend)


def _natural(state, final, n, g):
    """The shard with every wire back in natural order (global swaps, then one local transpose)."""
    swaps, axes = undo(final, n, g)
    for s in swaps:
        state = swap(state, s)
    if axes != tuple(range(n - g)):
        state = jnp.transpose(state.reshape((2,) * (n - g)), axes).reshape(-1)
    return state


def _sharded(fn, mesh, n_args, out_replicated):
    """``fn(params, *shards)`` in a shard_map over ``mesh``'s bits (params replicated)."""
    inner, names = _inner(mesh)
    out = P() if out_replicated else P(names)
    return jax.shard_map(fn, mesh=inner, in_specs=(P(),) + (P(names),) * n_args, out_specs=out,
                         check_vma=False)


# ------------------------------------------------------------------ entry points ------

def _state(program, params, init, n, dtype, diff, fuse_k, backend, mesh, natural):
    g = n_global(mesh)

    def body(params, init):
        s = _local_run(program, params, init, n, dtype, diff, fuse_k, backend, g)
        return _natural(s, plan(program, n, g).final, n, g) if natural else s
    return _sharded(body, mesh, 1, False)(params, init)


_state_jit = jax.jit(_state, static_argnums=(0, 3, 4, 5, 6, 7, 8, 9))


def _diagonal_words(t, signed, g):
    """This device's part of ``sum_i |t_i|^2 (-1)^(bits of i at positions s)`` for each list ``s``
    in ``signed`` (Z words), a chunk of the shard at a time: ``|t|^2`` of the whole shard would
    hold half a shard more than the swaps do. The top h local wires index the chunk, so their
    signs come from the chunk's index, the others' from a sign tensor over the chunk."""
    nl = t.shape[-1].bit_length() - 1
    k = chunk_amplitudes(nl, t.dtype.itemsize)
    h = nl - (k.bit_length() - 1)
    real = t.real.dtype
    shape, axis_of = split_shape(nl - h, sorted({q - g - h for s in signed for q in s if q >= g + h}))
    glob = [sum((_bit(q) for q in s if q < g), jnp.int32(0)) for s in signed]

    def chunk(acc, cx):
        c, x = cx
        p = (x.real ** 2 + x.imag ** 2).reshape(shape)
        vals = []
        for s, par in zip(signed, glob):
            par = par + sum(((c >> (h - 1 - (q - g))) & 1 for q in s if g <= q < g + h), jnp.int32(0))
            local = _sign_tensor(shape, axis_of, [q - g - h for q in s if q >= g + h], real)
            vals.append(jnp.sum(p * local) * (1 - 2 * (par % 2)).astype(real))
        return acc + jnp.stack(vals), None

    xs = (jnp.arange(1 << h, dtype=jnp.int32), t.reshape(1 << h, k))
    return jax.lax.scan(chunk, jnp.zeros((len(signed),), real), xs)[0]


def _local_words(t, words, pos, g, names):
    """This device's part of ``<psi|P|psi>`` for each word, the wires at positions ``pos``."""
    nl = t.shape[-1].bit_length() - 1
    phys = [tuple((pos[w], p) for w, p in word) for word in words]
    groups: dict[tuple, list[int]] = {}
    for i, word in enumerate(phys):
        groups.setdefault(tuple(sorted(q for q, p in word if p in "XY")), []).append(i)
    out = [None] * len(words)
    for flips, idx in groups.items():
        if not flips:
            signed = [[q for q, _ in phys[i]] for i in idx]
            for i, v in zip(idx, _diagonal_words(t, signed, g)):
                out[i] = v
            continue
        shape, axis_of = split_shape(nl, sorted({q - g for i in idx for q, _ in phys[i] if q >= g}))
        x = t.reshape(shape)
        mask = sum(1 << (g - 1 - q) for q in flips if q < g)
        y = x if not mask else jax.lax.ppermute(x, names, [(s, s ^ mask) for s in range(1 << g)])
        prod = jnp.conj(x) * jnp.flip(y, [axis_of[q - g] for q in flips if q >= g])
        for i in idx:
            signed = [q for q, p in phys[i] if p in "YZ"]
            local = _sign_tensor(shape, axis_of, [q - g for q in signed if q >= g], prod.real.dtype)
            parity = sum((_bit(q) for q in signed if q < g), jnp.int32(0)) % 2
            n_y = sum(p == "Y" for _, p in phys[i])
            out[i] = jnp.sum(prod * local) * (1 - 2 * parity).astype(prod.real.dtype) * (-1j) ** n_y
    return jnp.stack([jnp.asarray(v, t.dtype) for v in out])


class _WordsFn:
    """Real ``<P>`` of each word of a sharded state in layout ``pos`` (hashable)."""

    def __init__(self, words, pos, mesh):
        self.key = (words, pos, mesh)

    def __call__(self, state):
        words, pos, mesh = self.key
        names = _inner(mesh)[1]

        def body(_, t):
            return jax.lax.psum(jnp.real(_local_words(t, words, pos, n_global(mesh), names)), names)
        return _sharded(body, mesh, 1, True)((), state)

    def __eq__(self, other):
        return isinstance(other, _WordsFn) and other.key == self.key

    def __hash__(self):
        return hash(self.key)


class _StateFn:
    """``(program, params, init, adjoint) -> sharded state`` in the plan's layout, for `_shift`."""

    def __init__(self, n, dtype, fuse_k, backend, mesh):
        self.key = (n, dtype, fuse_k, backend, mesh)

    def __call__(self, program, params, init, adjoint):
        n, dtype, fuse_k, backend, mesh = self.key
        diff = "adjoint" if adjoint else "backprop"
        return _state(program, params, init, n, dtype, diff, fuse_k, backend, mesh, False)

    def __eq__(self, other):
        return isinstance(other, _StateFn) and other.key == self.key

    def __hash__(self):
        return hash(self.key)


@functools.partial(jax.jit, static_argnums=(0, 3, 4, 5, 6, 7, 8, 9))
def _words_jit(program, params, init, n, dtype, diff, fuse_k, words, backend, mesh):
    words_fn = _WordsFn(words, plan(program, n, n_global(mesh)).final, mesh)
    state_fn = _StateFn(n, dtype, fuse_k, backend, mesh)
    if diff == "parameter-shift":
        return _shift.values(state_fn, words_fn, program, params, init, n)
    return words_fn(state_fn(program, params, init, diff == "adjoint"))


@functools.partial(jax.jit, static_argnums=(0, 3, 4, 5, 6, 7, 8))
def _marginal_jit(program, params, init, n, dtype, fuse_k, backend, mesh, wires):
    g = n_global(mesh)
    names = _inner(mesh)[1]
    pos = plan(program, n, g).final

    def body(params, init):
        t = _local_run(program, params, init, n, dtype, "backprop", fuse_k, backend, g)
        local = sorted(pos[w] - g for w in wires if pos[w] >= g)
        p = (t.real ** 2 + t.imag ** 2).reshape((2,) * (n - g))
        m = jnp.sum(p, axis=tuple(a for a in range(n - g) if a not in local))
        labels = [w for q in local for w in wires if pos[w] == q + g]
        for w in wires:
            if pos[w] < g:
                b = _bit(pos[w])
                m = m[..., None] * jnp.stack([1 - b, b]).astype(m.dtype)
                labels.append(w)
        m = jnp.transpose(m, [labels.index(w) for w in wires]).reshape(-1)
        return jax.lax.psum(m, names)
    return _sharded(body, mesh, 1, True)(params, init)


@functools.partial(jax.jit, static_argnums=(0, 3, 4, 5, 6, 7))
def _sample_jit(program, params, init, n, dtype, fuse_k, backend, mesh, u):
    """Inverse-CDF sampling over the natural order, as `_simulate.sample_bits` does on one device:
    the device totals locate each shot's device, that device's local CDF its amplitude."""
    g = n_global(mesh)
    names = _inner(mesh)[1]

    def body(replicated, init):
        params, u = replicated
        t = _local_run(program, params, init, n, dtype, "backprop", fuse_k, backend, g)
        t = _natural(t, plan(program, n, g).final, n, g)
        cdf = jnp.cumsum(t.real ** 2 + t.imag ** 2)
        totals = jax.lax.all_gather(cdf[-1], names).reshape(-1)
        ends = jnp.cumsum(totals)
        x = u * ends[-1]
        me = _device_index(g)
        owner = jnp.clip(jnp.searchsorted(ends, x, side="right"), 0, (1 << g) - 1)
        local = jnp.clip(jnp.searchsorted(cdf, x - (ends[me] - totals[me]), side="right"), 0, cdf.shape[0] - 1)
        shifts = jnp.arange(n - g - 1, -1, -1)
        device = jnp.stack([_bit(a) for a in range(g)]) if g else jnp.zeros((0,), jnp.int32)
        bits = jnp.concatenate([jnp.broadcast_to(device, (u.shape[0], g)), (local[:, None] >> shifts) & 1], 1)
        return jax.lax.psum(jnp.where((owner == me)[:, None], bits, 0).astype(jnp.int32), names)
    return _sharded(body, mesh, 1, True)((params, u), init)


# ------------------------------------------------------------------ Circuit methods ------

def _prepared(circ, diff, where):
    program, params = circ.program
    plan(program, circ.n_qubits, n_global(circ.mesh), where)        # rejects records it cannot run
    k = _simulate.fusion_width(circ)
    _guard(circ, program, params, k, diff, where)
    return program, params, k


def final_state(circ, diff):
    """The state in natural order, shape ``(2**n,)``, sharded over the mesh."""
    program, params, k = _prepared(circ, diff, "Circuit.state")
    return _state_jit(program, params, circ._init, circ.n_qubits, circ.dtype, diff, k, circ.backend,
                      circ.mesh, True)


def probs(circ, wires, shots=None):
    """Probabilities (sharded, natural order) or the marginal on ``wires`` (replicated)."""
    if shots is not None:
        raise ValueError("Circuit.probs: shots= is not supported on a circuit sharded over a mesh; "
                         "use Circuit.sample(key, shots) and count the bits")
    if wires is None:
        return jnp.abs(final_state(circ, "backprop")) ** 2
    program, params, k = _prepared(circ, "backprop", "Circuit.probs")
    return _marginal_jit(program, params, circ._init, circ.n_qubits, circ.dtype, k, circ.backend,
                         circ.mesh, tuple(wires))


def expectations(circ, observables, diff, shots=None):
    """Values of each observable (real, shape ``(len(observables),)``), as `_simulate.expectations`."""
    if shots is not None:
        raise ValueError("Circuit.expectation: shots= is not supported on a circuit sharded over a mesh; "
                         "use the exact value (no shots) or Circuit.sample")
    program, params, k = _prepared(circ, diff, f"Circuit.expectation(diff={diff!r})")
    words = tuple(w for o in observables for w in o.words)
    vals = _words_jit(program, params, circ._init, circ.n_qubits, circ.dtype, diff, k, words, circ.backend,
                      circ.mesh)
    return combine_words(observables, vals, circ.real_dtype)


def sample(circ, key, shots, wires):
    """``shots`` samples of ``wires``: a marginal that fits one shard is sampled as on one device;
    otherwise every wire is sampled in natural order (same bits as one device, up to rounding
    of the CDF) and the columns of ``wires`` kept."""
    n, g = circ.n_qubits, n_global(circ.mesh)
    if len(wires) <= n - g and wires != tuple(range(n)):
        return _simulate.sample_bits(key, probs(circ, wires), shots, len(wires))
    program, params, k = _prepared(circ, "backprop", "Circuit.sample")
    u = jax.random.uniform(key, (shots,), dtype=circ.real_dtype)
    bits = _sample_jit(program, params, circ._init, n, circ.dtype, k, circ.backend, circ.mesh, u)
    return bits if wires == tuple(range(n)) else bits[:, np.asarray(wires)]


def layout_plan(circ):
    """The `_layout.Plan` of a sharded circuit (swap counts for tests and benchmarks)."""
    return plan(circ.program[0], circ.n_qubits, n_global(circ.mesh))
