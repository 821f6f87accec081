"""Unravelling noise channels into statevector trajectories (the ``method="trajectories"`` engine).

At a channel with Kraus operators ``K_i`` a trajectory takes branch ``i`` with probability
``p_i = ||K_i psi||^2`` and continues with ``K_i psi / sqrt(p_i)`` (`channel_rule`, registered
in the shared trajectory executor `_trajectory.RULES`, so noisy and dynamic circuits share
it). A Pauli mixture (depolarizing, bit/phase flip, Pauli channel) has state-independent
``p_i``: `trajectory` draws all its branches up front (`draw_branches`), each becomes a gate
(the branch's Pauli) fused with its neighbours like any gate, and a vmapped batch of
trajectories runs every fused block once with per-trajectory coefficients. A `repeat` whose
layer holds other channels runs layer by layer (`NoisyRepeat`).

Derivatives: the branch is renormalised by ``sqrt(stop_gradient(p_i))`` (a drawn Pauli is
scaled by ``sqrt(p_i / stop_gradient(p_i))``, which is 1), so a trajectory is
``psi_b / sqrt(P_b)`` in value while its derivative is that of the unnormalised branch
``psi_b`` over ``P_b``: the mean of per-trajectory gradients is unbiased (see `_noise`).
`batched` runs a function of one key over many keys in cache-sized vmapped chunks.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from . import _channels, _trajectory
from ._executor import run_program
from ._gates import GateDef, user_matrix
from ._ir import ChannelOp, GateOp, LayerFn, MeasureOp, RepeatOp
from ._validate import available_bytes
from .backends.xla import split_shape

_BATCH_SHARE = 0.25          # a chunk of trajectories may use this share of free memory
STATES_PER_TRAJECTORY = 8    # states one trajectory holds at its peak (with backprop inside a chunk)
_BRANCH_SALT = 0x7A3         # the uniforms picking Pauli branches: fold_in(trajectory key, salt)
_CACHE_BYTES = 2 << 20       # states of one chunk of trajectories (the L2 cache of the CPUs measured)


# ------------------------------------------------------------------ trajectory rules ------

def _choose(u, p):
    """The branch index that the uniform ``u`` in [0, 1) picks with probabilities ``p`` (not differentiated)."""
    c = jnp.cumsum(jax.lax.stop_gradient(jnp.clip(p, 0, None)))
    i = jnp.sum(c <= u.astype(c.dtype) * c[-1])
    return jnp.clip(i, 0, p.shape[0] - 1)


def _reduced(state, wires):
    """The reduced density matrix ``(2**k, 2**k)`` of a flat state on ``wires`` (in that order)."""
    n = state.shape[-1].bit_length() - 1
    shape, axis_of = split_shape(n, wires)
    t = jnp.moveaxis(state.reshape(shape), [axis_of[w] for w in wires], range(len(wires)))
    t = t.reshape(1 << len(wires), -1)
    return jnp.matmul(t, jnp.conj(t).T, precision=jax.lax.Precision.HIGHEST)


def channel_rule(op: ChannelOp, params, state, key, clbits, backend):
    """One Born-rule jump of ``state`` through the channel (see the module docstring)."""
    if _channels.is_mixture(op.name):
        u = jax.random.uniform(key, (), jnp.finfo(state.dtype).dtype)
        return backend.apply_dense(state, _branch(op, params, u, state.dtype), op.wires), clbits
    k = _channels.kraus_ops(op.name, params, state.dtype)
    rho = _reduced(state, op.wires)
    p = jnp.real(jnp.einsum("iab,bc,iac->i", k, rho, jnp.conj(k), precision=jax.lax.Precision.HIGHEST))
    i = _choose(jax.random.uniform(key, (), p.dtype), p)
    pi = jax.lax.stop_gradient(p[i])
    scale = jnp.where(pi > 0, jax.lax.rsqrt(jnp.where(pi > 0, pi, 1)), 0).astype(state.dtype)
    return backend.apply_dense(state, k[i] * scale, op.wires), clbits


@dataclass(frozen=True)
class NoisyRepeat:
    """A `repeat` whose layer holds channels, run by the trajectory executor one layer at a time
    (layer ``l`` draws from ``fold_in(key, l)``)."""

    body: tuple
    params_fn: LayerFn
    n_layers: int


def noisy_repeat_rule(op: NoisyRepeat, params, state, key, clbits, backend):
    stacked, consts = params

    def layer(carry, x):
        s, bits = carry
        w, index = x
        s, bits = run_records(op.body, op.params_fn(w, *consts), s, jax.random.fold_in(key, index), bits, backend)
        return (s, bits), None

    (state, clbits), _ = jax.lax.scan(layer, (state, clbits), (stacked, jnp.arange(op.n_layers)))
    return state, clbits


def run_records(program, params, state, key, clbits, backend, k=4):
    """`_trajectory.run_prepared` from given classical bits (for one layer of a `NoisyRepeat`)."""
    records, params = _trajectory.prepare(program, params, state.dtype, backend, fuse_k=k)
    random = [i for i, op in enumerate(records) if not isinstance(op, _trajectory.Run)]
    keys = dict(zip(random, jax.random.split(key, len(random)))) if random else {}
    for i, (op, p) in enumerate(zip(records, params)):
        if isinstance(op, _trajectory.Run):
            state = run_program(op.program, p, state, backend)
        else:
            state, clbits = _trajectory.RULES[type(op)](op, p, state, keys[i], clbits, backend)
    return state, clbits


_trajectory.RULES[ChannelOp] = channel_rule
_trajectory.RULES[NoisyRepeat] = noisy_repeat_rule


# ------------------------------------------------------------------ Pauli branches drawn up front ------
# A Pauli mixture's branch does not depend on the state, so a trajectory draws it before running:
# the channel becomes a gate (the branch's Pauli), fused with its neighbours like any gate, and a
# batch of trajectories runs each fused block once for all of them (per-trajectory coefficients).

@functools.lru_cache(maxsize=None)
def branch_gate(k):
    """A dense k-wire gate whose parameter is its matrix (the drawn branch of a channel)."""
    return GateDef(f"noise_branch{k}", k, 1, "dense", 0, user_matrix, None, None)


def _branch(op, params, u, dtype):
    """The branch that the uniform ``u`` picks, its unitary scaled by ``sqrt(p_i / stop_gradient(p_i))``
    (1 in value: the derivative of the branch probability, see the module docstring)."""
    p, mats = _channels.mixture(op.name, params, dtype)
    i = _choose(u, p)
    weight = p[i] / jax.lax.stop_gradient(jnp.where(p[i] > 0, p[i], 1))
    return mats[i] * jnp.sqrt(weight).astype(dtype)


def _mixes(op):
    return isinstance(op, ChannelOp) and _channels.is_mixture(op.name)


def _draws(program):
    """How many uniforms `draw_branches` consumes for ``program``."""
    return sum(op.n_layers * _draws(op.body) if isinstance(op, (RepeatOp, NoisyRepeat)) else int(_mixes(op))
               for op in program)


def draw_branches(program, params, u, dtype):
    """``program`` with every Pauli-mixture channel replaced by a gate: the branch its uniform in
    ``u`` (shape ``(_draws(program),)``, consumed in program order) picks."""
    prog, prm, used = [], [], 0
    for op, p in zip(program, params):
        if _mixes(op):
            op, p = GateOp(branch_gate(len(op.wires)), op.wires), (_branch(op, p, u[used], dtype),)
            used += 1
        elif isinstance(op, (RepeatOp, NoisyRepeat)) and _draws(op.body):
            size = op.n_layers * _draws(op.body)
            op, p = _drawn_repeat(op, p, u[used:used + size].reshape(op.n_layers, -1), dtype)
            used += size
        prog.append(op)
        prm.append(p)
    return tuple(prog), tuple(prm)


def _drawn_repeat(op, params, u, dtype):
    """The repeat with its layers' mixtures as drawn gates; each layer's uniforms join its slice."""
    stacked, consts = params
    body = tuple(GateOp(branch_gate(len(b.wires)), b.wires) if _mixes(b) else b for b in op.body)
    fn = op.params_fn

    def params_fn(w, *c):
        inner, layer_u = w
        return draw_branches(op.body, fn(inner, *c), layer_u, dtype)[1]

    kind = NoisyRepeat if any(isinstance(b, ChannelOp) for b in body) else RepeatOp
    return kind(body, LayerFn(params_fn, ("branches", fn, np.dtype(dtype).name)), op.n_layers), ((stacked, u), consts)


def trajectory(program, params, state, key, n_clbits, backend, k):
    """One trajectory: ``(final state, classical bits)`` (branches of Pauli mixtures drawn first)."""
    key = _trajectory.as_key(key)
    u = jax.random.uniform(jax.random.fold_in(key, _BRANCH_SALT), (_draws(program),), jnp.finfo(state.dtype).dtype)
    program, params = draw_branches(program, params, u, state.dtype)
    return _trajectory.run_trajectory(program, params, state, key, n_clbits, backend, fuse_k=k)


def trajectory_program(circ, keep_measurements=False):
    """The records a trajectory runs: repeats with channels as `NoisyRepeat`; terminal measurements
    dropped (when the circuit is not dynamic) unless ``keep_measurements``."""
    program, params = circ.program
    dynamic = circ.is_dynamic
    prog, prm = [], []
    for op, p in zip(program, params):
        if isinstance(op, MeasureOp) and not (dynamic or keep_measurements):
            continue
        if isinstance(op, RepeatOp) and any(isinstance(b, (ChannelOp,)) for b in op.body):
            op = NoisyRepeat(op.body, op.params_fn, op.n_layers)
        prog.append(op)
        prm.append(p)
    return tuple(prog), tuple(prm)


# ------------------------------------------------------------------ batches of trajectories ------

def initial(init, n, dtype):
    return jnp.zeros((1 << n,), dtype).at[0].set(1) if init is None else init


def chunk_size(n, dtype, count, states=STATES_PER_TRAJECTORY):
    """Trajectories per vmapped chunk: their states fill about `_CACHE_BYTES` (a chunk runs from
    cache: 2x faster per trajectory at n=16 than one batch streaming from memory), within
    `_BATCH_SHARE` of free memory."""
    state = jnp.dtype(dtype).itemsize << n
    fit = (_BATCH_SHARE * available_bytes()[0]) // (state * states)
    return int(max(1, min(count, _CACHE_BYTES // state, fit)))


def batched(fn, keys, batch):
    """``fn(key)`` for every key: one vmapped batch, or ``batch`` of them per vmapped chunk, each
    under `jax.checkpoint` (backprop then saves a chunk's inputs, not every trajectory's states)."""
    if batch >= keys.shape[0]:
        return jax.vmap(fn)(keys)
    return jax.lax.map(jax.checkpoint(fn), keys, batch_size=batch)
