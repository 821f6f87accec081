"""Reading dynamic circuits (mid-circuit measurement, reset, classical control) and finite shots.

Two engines, chosen per call from static facts:

- *deferred measurement* (`_deferred`): the dynamic program becomes a unitary program on
  ``n + m`` wires. Its final state gives exact outcome-averaged ``probs()`` and
  ``expectation()`` (differentiable with every ``diff``), and ALL shots of `run`/`sample`
  from one simulation: the joint distribution of the classical bits is the marginal of
  that state on the wires that hold them;
- *trajectories* (`_trajectory`): one Born-rule run per shot, ``vmap``-ped over keys in
  chunks sized by memory (``lax.map`` over chunks); used for shots when the deferred
  program would not fit in memory or would cost more than the shots (``2**m > 2 * shots``),
  and for `Circuit.state` (one trajectory's state, with ``key=``). A long program (more than
  `SCAN_DYNAMIC_RUNS` runs of mid-circuit records) with concrete parameters runs each
  trajectory as ONE scan over host-lowered steps (`_dynscan`): its compile time does not
  grow with its length.

Finite-shot estimates of any circuit (`_shots`) sample the deferred (or plain) final
state, or one outcome per trajectory. Every entry point is a pure function of the
static program, the parameters and the key, so it works under ``jit`` and ``vmap``.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from . import _deferred, _dynscan, _scan, _shots, _simulate
from ._observables import combine_words
from ._ir import CondOp, GateOp, MeasureOp, ResetOp
from ._trajectory import RULES, as_key, prepare, run_prepared
from ._validate import StateTooLargeError, available_bytes, check_key, check_memory, check_shots, is_concrete

_CHUNK_AMPLITUDES = 1 << 22      # amplitudes of one batch of trajectories (per state copy)
_ALWAYS_DEFER = 16               # a deferred program on at most this many wires is always cheap
MAX_DYNAMIC_RUNS = 1000          # runs of non-unitary records one compiled trajectory may hold
SCAN_DYNAMIC_RUNS = 64           # more runs than this (and concrete parameters): one scan (`_dynscan`)
_SCAN_CHUNK_AMPLITUDES = 1 << 16  # amplitudes of one batch of scanned trajectories (n=21: one at a time)


class Exec(NamedTuple):
    """How to run a program (static): wires of its state, dtype, fusion width, kernels."""

    n: int
    dtype: object
    k: int
    backend: object


def _exec(circ, n=None):
    return Exec(circ.n_qubits if n is None else n, circ.dtype, _simulate.fusion_width(circ), circ.backend)


def _require_key(key, where, what):
    if key is None:
        raise ValueError(f"{where}: {what} needs a random key: pass key=jax.random.key(seed)")
    return as_key(check_key(key, where))


# ------------------------------------------------------------------ the deferred program ------
class Deferred(NamedTuple):
    plan: _deferred.Plan
    program: tuple
    params: tuple
    init: object
    ex: Exec


def defer(circ):
    """The circuit's deferred program, its parameters and initial state (lowered ahead of time
    when long with concrete parameters, as a static circuit is)."""
    program, params = tuple(circ._program), tuple(circ._params)
    plan = _deferred.plan(program, circ.n_qubits, circ.n_clbits, circ._init is None)
    prog, prm = plan.program, _deferred.params(plan, params)
    init = _deferred.initial_state(plan, circ._init, circ.n_qubits, circ.dtype)
    ex = _exec(circ, plan.n_wires)
    if (circ.backend.scan_concrete and len(prog) >= _scan.MIN_OPS and all(isinstance(op, GateOp) for op in prog)
            and all(is_concrete(x) for x in jax.tree.leaves(prm))):
        prog, prm = _scan.lower_concrete(prog, prm, circ.dtype, ex.k, circ.backend)
        ex = ex._replace(k=0)
    return Deferred(plan, prog, prm, init, ex)


def _check_deferred(d, circ, diff, where):
    """The memory guard for the deferred program; its error points to shots= (trajectories)."""
    traced = not all(is_concrete(x) for x in jax.tree.leaves((d.params, d.init)))
    n_states = _simulate.states_held(d.program, diff, circ.backend, d.ex.k) if traced else 2
    try:
        check_memory(d.plan.n_wires, circ.dtype, n_states, where)
    except StateTooLargeError as e:
        extra = d.plan.n_wires - circ.n_qubits
        raise StateTooLargeError(
            f"{e}. Exact results of this dynamic circuit use deferred measurement, which adds {extra} "
            f"wire(s) (one per reset and per measured wire used again) to its {circ.n_qubits}; for an "
            "estimate from trajectories of the circuit itself pass shots=... and key=...") from None


def _fits(d, circ, shots):
    """Whether all shots come from the deferred state (else: one trajectory per shot)."""
    n_wires, extra = d.plan.n_wires, d.plan.n_wires - circ.n_qubits
    need = (1 << n_wires) * circ.dtype.itemsize * 3
    cheap = n_wires <= _ALWAYS_DEFER or (1 << extra) <= 2 * shots
    return cheap and need <= available_bytes()[0] // 2


# ------------------------------------------------------------------ exact results ------
@functools.partial(jax.jit, static_argnums=(0, 1, 4))
def _probs_jit(ex, program, params, init, wires):
    state = _simulate._state(program, params, init, ex.n, ex.dtype, "backprop", ex.k, ex.backend)
    return _shots._marginal(state.real ** 2 + state.imag ** 2, ex.n, wires)


def exact_probs(circ, wires):
    d = defer(circ)
    _check_deferred(d, circ, "backprop", "Circuit.probs")
    wires = tuple(range(circ.n_qubits)) if wires is None else wires
    return _probs_jit(d.ex, d.program, d.params, d.init, tuple(d.plan.system[w] for w in wires))


def _on_wires(word, system):
    return tuple((system[w], p) for w, p in word)


def exact_expectations(circ, observables, diff):
    d = defer(circ)
    _check_deferred(d, circ, diff, f"Circuit.expectation(diff={diff!r})")
    words = tuple(w for o in observables for w in o.words)
    kept = [i for i, w in enumerate(words) if not any(p != "Z" and q in d.plan.dephased for q, p in w)]
    vals = jnp.zeros((len(words),), circ.real_dtype)
    if kept:
        phys = tuple(_on_wires(words[i], d.plan.system) for i in kept)
        got = _simulate._words_jit(d.program, d.params, d.init, d.ex.n, circ.dtype, diff, d.ex.k, phys,
                                   circ.backend)
        vals = vals.at[jnp.asarray(kept)].set(got.astype(circ.real_dtype))
    return combine_words(observables, vals, circ.real_dtype)


# ------------------------------------------------------------------ sampling ------
def _chunk(n, shots):
    return max(1, min(shots, _CHUNK_AMPLITUDES >> n))


def trajectories(ex, records, params, init, n_clbits, key, shots, finish):
    """``finish(state, clbits, key)`` of ``shots`` trajectories of `prepare`'s ``records``, stacked
    (leading axis ``shots``)."""
    state0 = _simulate._initial(ex.n, ex.dtype, init)
    run_one = lambda k: run_prepared(records, params, state0, k, n_clbits, ex.backend)  # noqa: E731
    return _map_shots(run_one, finish, key, shots, _chunk(ex.n, shots))


def _map_shots(run_one, finish, key, shots, chunk):
    """``finish(*run_one(k_run), k_finish)`` for ``shots`` keys split from ``key``: ``chunk`` at a
    time vmapped, the chunks one after another (`lax.map`); stacked, leading axis ``shots``."""
    keys = jax.random.split(key, shots)
    pad = (-shots) % chunk
    if pad:
        keys = jnp.concatenate([keys, keys[:pad]])

    def one(k):
        k_run, k_finish = jax.random.split(k)
        state, clbits = run_one(k_run)
        return finish(state, clbits, k_finish)

    out = jax.lax.map(jax.vmap(one), keys.reshape((-1, chunk)))
    return jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:])[:shots], out)


def _check_trajectories(circ, shots, where):
    check_memory(circ.n_qubits, circ.dtype, 4, where, batch=_chunk(circ.n_qubits, shots))


def _gather_bits(bits, wires, clbit_wires):
    """Columns of ``bits`` (sampled on ``wires``) for each classical bit (-1: 0)."""
    cols = [wires.index(w) if w >= 0 else -1 for w in clbit_wires]
    if not cols:
        return jnp.zeros((bits.shape[0], 0), jnp.int32)
    picked = bits[:, jnp.asarray([max(c, 0) for c in cols])]
    return jnp.where(jnp.asarray([c >= 0 for c in cols]), picked, 0).astype(jnp.int32)


@functools.partial(jax.jit, static_argnums=(0, 1, 4, 5, 7))
def _deferred_sample_jit(ex, program, params, init, wires, clbit_wires, key, shots):
    state = _simulate._state(program, params, init, ex.n, ex.dtype, "backprop", ex.k, ex.backend)
    if not wires:
        return jnp.zeros((shots, 0), jnp.int32)
    bits = _shots.sample_wires(state, wires, shots, key)
    return bits if clbit_wires is None else _gather_bits(bits, wires, clbit_wires)


class _Final:
    """Per-trajectory result: the classical bits, or one sample of the final ``wires`` (hashable)."""

    def __init__(self, wires):
        self.wires = wires

    def __call__(self, state, clbits, key):
        if self.wires is None:
            return clbits
        return _shots.sample_wires(state, self.wires, 1, key)[0]

    def __eq__(self, other):
        return isinstance(other, _Final) and other.wires == self.wires

    def __hash__(self):
        return hash(("final", self.wires))


@functools.partial(jax.jit, static_argnums=(0, 1, 4, 6, 7))
def _trajectory_jit(ex, records, params, init, n_clbits, key, shots, finish):
    return trajectories(ex, records, params, init, n_clbits, key, shots, finish)


def _dynamic_runs(program):
    """Runs of consecutive non-unitary records (one compiled step each in a `prepare`d trajectory)."""
    runs, previous = 0, False
    for op in program:
        dynamic = type(op) in RULES
        runs += dynamic and not previous
        previous = dynamic
    return runs


def _scannable(circ):
    """Whether trajectories of ``circ`` run as ONE scan over host-lowered steps (`_dynscan`): many
    mid-circuit runs, only gate/measure/reset/cond records, every parameter concrete."""
    program = circ._program
    return (_dynamic_runs(program) > SCAN_DYNAMIC_RUNS
            and all(isinstance(op, (GateOp, MeasureOp, ResetOp)) or
                    (isinstance(op, CondOp) and all(isinstance(g, GateOp) for g in op.body)) for op in program)
            and all(is_concrete(x) for x in jax.tree.leaves((circ._params, circ._init))))


def check_trajectory_size(program, where):
    """A trajectory compiles one step per run of consecutive non-unitary records: refuse programs
    whose compilation would take many minutes (at about 0.1 s per step); programs with concrete
    parameters take the scan path (`_scannable`) instead."""
    runs = _dynamic_runs(program)
    if runs > MAX_DYNAMIC_RUNS:
        raise ValueError(f"{where}: this circuit interleaves its gates with {runs} runs of mid-circuit "
                         f"measurements, resets or conditions, and one trajectory compiles into a program with "
                         f"a step for each (at most {MAX_DYNAMIC_RUNS}: compilation would take many minutes); "
                         "exact probs() and expectation() (no shots=) use deferred measurement instead, where "
                         "its extra wires fit in memory, and run()/sample()/state() with concrete parameters "
                         "run such programs as one scan")


def _prepared(circ, where, adjoint=False):
    """The circuit's trajectory records, lowered now (host blocks when the parameters are concrete)."""
    check_trajectory_size(circ._program, where)
    ex = _exec(circ)
    records, params = prepare(tuple(circ._program), tuple(circ._params), circ.dtype, circ.backend,
                              fuse_k=ex.k, adjoint=adjoint)
    return ex, records, params


def _sampled(circ, key, shots, wires, where):
    """``(shots, ...)`` int32: the classical bits (``wires`` None) or the final ``wires``' bits."""
    d = defer(circ)
    if _fits(d, circ, shots):
        if wires is None:
            held = tuple(sorted({w for w in d.plan.clbit_wires if w >= 0}))
            return _deferred_sample_jit(d.ex, d.program, d.params, d.init, held, d.plan.clbit_wires, key, shots)
        phys = tuple(d.plan.system[w] for w in wires)
        return _deferred_sample_jit(d.ex, d.program, d.params, d.init, phys, None, key, shots)
    if _scannable(circ):
        chunk = _scan_chunk(circ.n_qubits, shots)
        check_memory(circ.n_qubits, circ.dtype, 4, where, batch=chunk)
        ex, op, arrays = _scan_lowered(circ)
        return _scan_trajectory_jit(ex, op, arrays, circ._init, key, shots, _Final(wires), chunk)
    _check_trajectories(circ, shots, where)
    ex, records, params = _prepared(circ, where)
    return _trajectory_jit(ex, records, params, circ._init, circ.n_clbits, key, shots, _Final(wires))


# ------------------------------------------------------------------ long programs: one scan ------
def _scan_chunk(n, shots):
    """Trajectories per scan batch (the scan's per-step blocks are shared, its states are not)."""
    return max(1, min(shots, _SCAN_CHUNK_AMPLITUDES >> n))


def _scan_lowered(circ):
    ex = _exec(circ)
    op, arrays = _dynscan.lower(tuple(circ._program), tuple(circ._params), circ.dtype, ex.k, circ.backend,
                                circ.n_clbits)
    return ex, op, arrays


@functools.partial(jax.jit, static_argnums=(0, 1, 5, 6, 7))
def _scan_trajectory_jit(ex, op, arrays, init, key, shots, finish, chunk):
    state0 = _simulate._initial(ex.n, ex.dtype, init)
    run_one = lambda k: _dynscan.run(op, arrays, state0, k, ex.backend)  # noqa: E731
    return _map_shots(run_one, finish, key, shots, chunk)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _scan_state_jit(ex, op, arrays, init, key):
    return _dynscan.run(op, arrays, _simulate._initial(ex.n, ex.dtype, init), key, ex.backend)[0]


def run(circ, key, shots):
    """The classical bits of ``shots`` runs: int32 ``(shots, n_clbits)``."""
    return _sampled(circ, as_key(key), shots, None, "Circuit.run")


def sample(circ, key, shots, wires):
    """``shots`` samples of the final ``wires``: int32 ``(shots, len(wires))``."""
    return _sampled(circ, as_key(key), shots, tuple(wires), "Circuit.sample")


def state(circ, diff, *, key):
    """One trajectory's final state (a dynamic circuit's state depends on its outcomes)."""
    if key is None:
        raise ValueError("Circuit.state: a dynamic circuit's state depends on its measurement outcomes: pass "
                         "key=jax.random.key(seed) for one trajectory's state, or use probs() / expectation() "
                         "for results averaged over the outcomes")
    key = as_key(check_key(key, "Circuit.state"))
    check_memory(circ.n_qubits, circ.dtype, 4, "Circuit.state")
    if _scannable(circ) and diff != "adjoint":
        ex, op, arrays = _scan_lowered(circ)
        return _scan_state_jit(ex, op, arrays, circ._init, key)
    ex, records, params = _prepared(circ, "Circuit.state", adjoint=diff == "adjoint")
    return _state_jit(ex, records, params, circ._init, circ.n_clbits, key)


@functools.partial(jax.jit, static_argnums=(0, 1, 4))
def _state_jit(ex, records, params, init, n_clbits, key):
    state0 = _simulate._initial(ex.n, ex.dtype, init)
    return run_prepared(records, params, state0, key, n_clbits, ex.backend)[0]


# ------------------------------------------------------------------ the Circuit readers ------
def probs(circ, wires, *, shots, key):
    """Exact outcome-averaged probabilities, or with ``shots`` the empirical frequencies."""
    if shots is None:
        if key is not None:
            raise ValueError("Circuit.probs: key= is used with shots= (empirical frequencies); pass shots=... "
                             "too, or drop key= for the exact probabilities")
        return exact_probs(circ, wires)
    shots = check_shots(shots, "Circuit.probs")
    key = _require_key(key, "Circuit.probs", "probs(shots=...)")
    wires = tuple(range(circ.n_qubits)) if wires is None else tuple(wires)
    bits = sample(circ, key, shots, wires) if circ.is_dynamic else \
        _simulate.sample_bits(key, circ.probs(wires), shots, len(wires))
    index = jnp.sum(bits << jnp.arange(len(wires) - 1, -1, -1), axis=1)
    return (jnp.bincount(index, length=1 << len(wires)) / shots).astype(circ.real_dtype)


def expectations(circ, observables, diff, *, shots, key):
    """Exact values (deferred measurement) or, with ``shots``, finite-shot estimates."""
    if shots is None:
        if key is not None:
            raise ValueError("Circuit.expectation: key= is used with shots= (a finite-shot estimate); pass "
                             "shots=... too, or drop key= for the exact value")
        return exact_expectations(circ, observables, diff)
    shots = check_shots(shots, "Circuit.expectation")
    key = _require_key(key, "Circuit.expectation", "expectation(shots=...)")
    words = tuple(w for o in observables for w in o.words)
    where = f"Circuit.expectation(shots={shots})"
    if not circ.is_dynamic:
        program, params, k = _simulate._prepared(circ)
        _simulate._check_memory(circ, program, params, k, "backprop", where)
        est = StateEstimator(_exec(circ)._replace(k=k), words, shots, (), frozenset(circ.measurements))
        vals = _values_jit(est, program, params, circ._init, key, diff)
    else:
        d = defer(circ)
        if _fits(d, circ, shots):
            _check_deferred(d, circ, "backprop", where)
            est = StateEstimator(d.ex, words, shots, d.plan.system, d.plan.dephased)
            vals = _values_jit(est, d.program, d.params, d.init, key, diff)
        else:
            _check_trajectories(circ, shots, where)
            check_trajectory_size(circ._program, where)
            est = TrajectoryEstimator(_exec(circ), words, shots, circ.n_clbits)
            vals = _values_jit(est, tuple(circ._program), tuple(circ._params), circ._init, key, diff)
    return combine_words(observables, vals, circ.real_dtype)


# Finite-shot word estimates, jitted per static estimator and program (eager calls compile once).
_values_jit = jax.jit(_shots.values, static_argnums=(0, 1, 5))


class _Hashable:
    def __eq__(self, other):
        return type(other) is type(self) and other.key == self.key

    def __hash__(self):
        return hash(self.key)


class StateEstimator(_Hashable):
    """Word estimates from the final state of a unitary program (``system``: the wire of each
    logical wire, empty for the identity map; ``dephased``: logical wires holding a measured bit)."""

    def __init__(self, ex, words, shots, system, dephased):
        self.key = (ex, words, shots, system, dephased)

    def __call__(self, program, params, init, key):
        ex, words, shots, system, dephased = self.key
        state = _simulate._state(program, params, init, ex.n, ex.dtype, "backprop", ex.k, ex.backend)
        wire_of = dict(enumerate(system))
        return _shots.estimate_words(state, words, shots, key, ex.backend, wire_of, dephased)


class TrajectoryEstimator(_Hashable):
    """Word estimates from trajectories: each group measured on ``shots`` trajectories of its own."""

    def __init__(self, ex, words, shots, n_clbits):
        self.key = (ex, words, shots, n_clbits)

    def __call__(self, program, params, init, key):
        ex, words, shots, n_clbits = self.key
        records, prm = prepare(program, params, ex.dtype, ex.backend, fuse_k=ex.k)
        groups = _shots.qwc_groups(words)
        per_group = []
        for g, group in enumerate(groups):
            def finish(state, clbits, k, group=group):
                return _shots.sample_group(state, group, 1, k, ex.backend)[0]
            bits = trajectories(ex, records, prm, init, n_clbits, jax.random.fold_in(key, g), shots, finish)
            per_group.append(_shots.parities(bits, group, words, jnp.finfo(ex.dtype).dtype))
        return _shots.assemble(words, groups, per_group, jnp.finfo(ex.dtype).dtype)
