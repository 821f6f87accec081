"""Running a recorded program: jitted entry points, repeat recording and sampling.

`final_state` and `expectations` jit one pure function per static program (the
op records, qubit count, dtype, gradient method and fusion width are static;
parameters, initial state and observable coefficients are traced), so eager
calls with new angles reuse the compiled executable and, inside a user's
`jax.jit`, the call is simply inlined.
"""

from __future__ import annotations

import functools
import hashlib

import jax
import jax.numpy as jnp
import numpy as np

from . import _adjoint, _fusion, _host, _scan, _shift
from ._executor import run_program
from ._ir import GateOp, LayerFn, ProgramOp, RepeatOp
from ._observables import combine_words, pauli_expectations
from ._product_start import with_projector
from ._validate import check_memory, is_concrete

# default fusion width per backend name, else per platform (chosen by measurement, see
# benchmarks; "gpu": the GPU backend, pending `python -m benchmarks.gpu_device` on a device)
DEFAULT_FUSION = {"cpu": 4, "gpu": 4}


def _saved_states(program, backend, k, written_out=True) -> int:
    """States backprop saves: one per fused op (pure JAX) or per native program (a run of
    gates, and of the short repeats written out into it when ``written_out``), per layer of
    any other `repeat`."""
    if backend.programs is None:
        return _fusion.count_passes(program, k)
    saved, in_run = 0, False
    for op in program:
        joins = isinstance(op, GateOp) or (written_out and _scan.written_out(op, backend.programs))
        if isinstance(op, RepeatOp) and not joins:
            saved += op.n_layers * _saved_states(op.body, backend, k, written_out)
        elif not in_run or isinstance(op, ProgramOp):
            saved += 1
        in_run = joins
    return saved


def states_held(program, diff, backend, k, written_out=True) -> int:
    """Statevectors a gradient method holds at its peak for ``program``.

    The forward pass holds its input and output; the adjoint walk and the parameter-shift
    rule (whose exact parts use it) add a state and a co-state; backprop keeps, in
    addition, the states of `_saved_states` (it is also the default ``diff``, so a deep
    circuit that only runs forwards is budgeted as if differentiated: use ``diff="adjoint"``
    for memory independent of depth). ``written_out=False``: the executor runs every `repeat`
    as a scan (a sharded state, whose swaps split the program).
    """
    if diff != "backprop":
        return 4
    return 2 + _saved_states(program, backend, k, written_out)


def _initial(n, dtype, init):
    if init is not None:
        return init
    return jnp.zeros((1 << n,), dtype).at[0].set(1)


def _state(program, params, init, n, dtype, diff, fuse_k, backend):
    state = _initial(n, dtype, init)
    if init is None:
        program, params = with_projector(program, params, backend, n)
    program, params = _fusion.fuse(program, params, fuse_k)
    program, params = _scan.to_native(program, params, state.dtype, backend, n)
    if diff == "adjoint":
        return _adjoint.run(program, params, state, backend)
    return run_program(program, params, state, backend)


@functools.partial(jax.jit, static_argnums=(0, 3, 4, 5, 6, 7))
def _state_jit(program, params, init, n, dtype, diff, fuse_k, backend):
    return _state(program, params, init, n, dtype, diff, fuse_k, backend)


class _WordsFn:
    """Real ``<P>`` of each Pauli word of a state (hashable: part of a static key)."""

    def __init__(self, words):
        self.words = words

    def __call__(self, state):
        return jnp.real(pauli_expectations(state, self.words))

    def __eq__(self, other):
        return isinstance(other, _WordsFn) and other.words == self.words

    def __hash__(self):
        return hash(self.words)


class _StateFn:
    """``(program, params, init, adjoint) -> state`` for the parameter-shift rule (hashable)."""

    def __init__(self, n, dtype, fuse_k, backend):
        self.key = (n, dtype, fuse_k, backend)

    def __call__(self, program, params, init, adjoint):
        n, dtype, fuse_k, backend = self.key
        return _state(program, params, init, n, dtype, "adjoint" if adjoint else "backprop", fuse_k, backend)

    def __eq__(self, other):
        return isinstance(other, _StateFn) and other.key == self.key

    def __hash__(self):
        return hash(self.key)


@functools.partial(jax.jit, static_argnums=(0, 3, 4, 5, 6, 7, 8))
def _words_jit(program, params, init, n, dtype, diff, fuse_k, words, backend):
    """Real ``<P>`` for every Pauli word (the coefficients are combined outside)."""
    words_fn = _WordsFn(words)
    if diff == "parameter-shift":
        state_fn = _StateFn(n, dtype, fuse_k, backend)
        return _shift.values(state_fn, words_fn, program, params, init, n)
    return words_fn(_state(program, params, init, n, dtype, diff, fuse_k, backend))


def fusion_width(circ) -> int:
    """The fusion width for ``circ``: its own setting, else the backend's default."""
    if circ.max_fused_qubits is not None:
        return circ.max_fused_qubits
    return DEFAULT_FUSION.get(circ.backend.name, DEFAULT_FUSION.get(jax.default_backend(), 4))


def _prepared(circ):
    """The program to run, and its fusion width.

    A long program whose parameters are all concrete (e.g. from QASM) is fused and
    lowered to a `ScanOp` here, eagerly, so the jitted function receives ready
    blocks and its compile time does not grow with the number of gates. Its blocks
    are multiplied in complex128 on the host (`_host`), wider on small circuits, and
    the lowered program is kept on the circuit (``circ._lowered``, keyed by the
    program's length and settings; `Circuit._record` drops it), so reading the same
    circuit again reuses it and the compiled executable.
    """
    key = (len(circ._program), circ.dtype, circ.backend, circ.max_fused_qubits)
    kept = getattr(circ, "_lowered", None)
    if kept is not None and kept[0] == key:
        return kept[1]
    program, params = circ.program
    k = fusion_width(circ)
    if (circ.backend.scan_concrete and len(program) >= _scan.MIN_OPS
            and all(isinstance(op, GateOp) for op in program)
            and all(is_concrete(x) for x in jax.tree.leaves(params))):
        if circ.max_fused_qubits is None:
            k = _host.concrete_width(circ.n_qubits, k)
        program, params = _scan.lower_concrete(program, params, circ.dtype, k, circ.backend, circ.n_qubits)
        circ._lowered = (key, (program, params, 0))
        return program, params, 0
    return program, params, k


def _check_memory(circ, program, params, k, diff, where):
    """The memory guard; a program with no traced value (nothing to differentiate) runs forwards."""
    traced = not all(is_concrete(x) for x in jax.tree.leaves((params, circ._init)))
    n_states = states_held(program, diff, circ.backend, k) if traced else 2
    check_memory(circ.n_qubits, circ.dtype, n_states, where)


def final_state(circ, diff):
    program, params, k = _prepared(circ)
    _check_memory(circ, program, params, k, diff, "Circuit.state")
    return _state_jit(program, params, circ._init, circ.n_qubits, circ.dtype, diff, k, circ.backend)


def expectations(circ, observables, diff):
    """Values of each observable (real, shape ``(len(observables),)``)."""
    program, params, k = _prepared(circ)
    _check_memory(circ, program, params, k, diff, f"Circuit.expectation(diff={diff!r})")
    words = tuple(w for o in observables for w in o.words)
    vals = _words_jit(program, params, circ._init, circ.n_qubits, circ.dtype, diff,
                      k, words, circ.backend)
    return combine_words(observables, vals, circ.real_dtype)


def record_layer(circ, layer, params, n_layers):
    """Trace ``layer`` once on an empty circuit; return its `RepeatOp` and the hoisted constants.

    The layer's gate parameters become a function of one slice of ``params``;
    traced values the layer closes over are hoisted out (``jax.closure_convert``)
    so every gradient method sees them as explicit inputs.
    """
    recorded = {}

    def layer_params(w):
        sub = circ._sub()
        result = layer(sub, w)
        if result is not None and result is not sub:
            raise TypeError("Circuit.repeat: layer(c, p) must add gates to c and return None or c, "
                            f"got {type(result).__name__}")
        if any(isinstance(op, RepeatOp) for op in sub._program):
            raise ValueError("Circuit.repeat: a layer may not itself call repeat")
        recorded["body"] = tuple(sub._program)
        return tuple(sub._params)

    w0 = jax.tree.map(lambda x: x[0], params)
    params_fn, consts = jax.closure_convert(layer_params, w0)
    traced = jax.make_jaxpr(params_fn)(w0, *consts)
    key = (str(traced.jaxpr), tuple(_const_key(c) for c in traced.consts))
    return RepeatOp(recorded["body"], LayerFn(params_fn, key), n_layers), tuple(consts)


def _const_key(c):
    """A value key for a constant baked into a layer's trace (identity for a tracer)."""
    if is_concrete(c):
        a = np.asarray(c)
        return (a.shape, str(a.dtype), hashlib.sha1(a.tobytes()).hexdigest())
    return ("traced", id(c))


def _inverse_cdf(p, u):
    """The first index whose cumulative probability exceeds ``u * total`` (``p`` short)."""
    cdf = jnp.cumsum(p)
    return jnp.clip(jnp.searchsorted(cdf, u * cdf[-1], side="right"), 0, p.shape[0] - 1)


def sample_bits(key, p, shots, n_bits):
    """Inverse-CDF sampling of ``shots`` basis indices from ``p``, as bits (MSB first).

    Over more than ``2**12`` outcomes the draw has two levels: a row of ``p`` viewed as
    ``(2**a, 2**b)`` from the rows' totals, then an entry from that row's own cumulative sum
    (a binary search per shot). One cumulative sum over all of a large ``p`` would hold
    values near 1 whose float32 rounding (6e-8) is the size of each outcome's probability
    (2^-22 ~ 2.4e-7 at n=22) and would bias the draw.
    """
    k_row, k_col = jax.random.split(key)
    n = p.shape[0].bit_length() - 1
    if n <= 12:
        idx = _inverse_cdf(p, jax.random.uniform(key, (shots,), dtype=p.dtype))
    else:
        b = n // 2
        rows = p.reshape(-1, 1 << b)
        r = _inverse_cdf(jnp.sum(rows, axis=1), jax.random.uniform(k_row, (shots,), dtype=p.dtype))
        cdf = jnp.cumsum(rows, axis=1)
        target = jax.random.uniform(k_col, (shots,), dtype=p.dtype) * cdf[r, -1]
        lo, hi = jnp.zeros_like(r), jnp.full_like(r, (1 << b) - 1)
        for _ in range(b):                     # smallest j with cdf[r, j] > target
            mid = (lo + hi) // 2
            right = cdf[r, mid] <= target
            lo, hi = jnp.where(right, mid + 1, lo), jnp.where(right, hi, mid)
        idx = (r << b) + lo
    shifts = jnp.arange(n_bits - 1, -1, -1)
    return ((idx[:, None] >> shifts) & 1).astype(jnp.int32)
