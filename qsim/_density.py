"""The density-matrix engine: rho as a statevector of 2n wires, run by the statevector machinery.

``rho`` (``2**n x 2**n``) is held flat as a state of 2n wires: row wires ``0..n-1``, column
wires ``n..2n-1``, so ``state.reshape(2**n, 2**n)`` is the matrix (wire 0 the most
significant bit of a row index, as everywhere). `_superop.lower` turns a logical program
(gates, channels, measurements, resets, repeats) into a program on those wires: gates
doubled (``U`` on the rows, ``conj(U)`` on the columns) and superoperator blocks; it then
runs through the statevector passes and kernels (`_fusion`, `_scan`, `_executor`), native
on CPU or pure JAX.

Reading: probabilities are the real diagonal; ``Tr(P rho)`` of a Pauli word ``P`` with
flip mask ``m`` and sign mask ``s`` (its Y and Z wires) is
``i^{#Y} sum_j (-1)^{|j & s|} rho[j, j ^ m]``: a gather of ``2**n`` entries, never a
``2**n x 2**n`` product. Classically controlled gates go through the deferred-measurement
pass (`_deferred`: measured bits on extra wires, traced out at the end). Gradients: backprop
(checkpointed when the saved states would not fit) or the parameter-shift rule of the
logical gates (`_shift` driven by a density-matrix state function).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import _fusion, _scan, _shift
from ._observables import combine_words
from ._executor import run_program
from ._gates import GateDef
from ._ir import ChannelOp, CondOp, GateOp, MeasureOp, RepeatOp
from ._superop import LOGICAL_FUSION, checkpoint, checkpointed_saved, lower, saved
from ._validate import available_bytes, check_memory, is_concrete

_MEMORY_SHARE = 0.5         # checkpoint when backprop's saved states would pass this share of memory


# ------------------------------------------------------------------ running ------

def initial(init, n, dtype):
    """``|0><0|`` (or ``|psi><psi|`` for an initial state ``psi``) as a flat state of 2n wires."""
    if init is None:
        return jnp.zeros((1 << (2 * n),), dtype).at[0].set(1)
    return (init[:, None] * jnp.conj(init)[None, :]).reshape(-1).astype(dtype)


def partial_trace(rho, n, keep, dephased=()):
    """The flat rho of the wires ``keep`` (in that order) of a flat rho of ``n`` wires; the kept
    wires at positions ``dephased`` lose their coherences (a measured bit without a copy)."""
    letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    rows = [letters[i] for i in range(n)]
    cols = [letters[n + i] if i in keep else rows[i] for i in range(n)]
    out = [rows[w] for w in keep] + [cols[w] for w in keep]
    t = jnp.einsum(f"{''.join(rows + cols)}->{''.join(out)}", rho.reshape((2,) * (2 * n)))
    m = len(keep)
    for j in dephased:
        mask = np.ones((2,) * (2 * m))
        idx = [slice(None)] * (2 * m)
        for a, b in ((0, 1), (1, 0)):
            idx[j], idx[m + j] = a, b
            mask[tuple(idx)] = 0
        t = t * jnp.asarray(mask, t.real.dtype)
    return t.reshape(-1)


def run(program, params, init, n, dtype, k, backend, remat, reduce=None):
    """The final rho (flat, ``4**n``) of a logical program; ``k`` is the fusion width on rho's wires;
    ``reduce``: ``(keep, dephased)`` for `partial_trace` (deferred measurement), or None."""
    state = initial(init, n, dtype)
    prog, prm = lower(program, params, n, min(LOGICAL_FUSION, k // 2) if k else 0)
    prog, prm = _fusion.fuse(prog, prm, k)
    prog, prm = _scan.to_native(prog, prm, state.dtype, backend)
    if remat:
        prog, prm = checkpoint(prog, prm)
    rho = run_program(prog, prm, state, backend)
    return rho if reduce is None else partial_trace(rho, n, *reduce)


@functools.partial(jax.jit, static_argnums=(0, 3, 4, 5, 6, 7, 8))
def _run_jit(program, params, init, n, dtype, k, backend, remat, reduce):
    return run(program, params, init, n, dtype, k, backend, remat, reduce)


def _basis(n):
    return jnp.arange(1 << n, dtype=jnp.int64 if 2 * n > 31 else jnp.int32)


def diagonal(rho, n):
    """The real diagonal of a flat rho: the probabilities, shape ``(2**n,)``."""
    return jnp.real(rho[_basis(n) * ((1 << n) + 1)])


def pauli_traces(rho, words, n):
    """Real ``Tr(P rho)`` of each Pauli word (shape ``(len(words),)``) by gathers of ``2**n`` entries."""
    j = _basis(n)
    dim = 1 << n
    out, cache = [], {}
    for word in words:
        flip = sum(1 << (n - 1 - q) for q, p in word if p in "XY")
        sign = sum(1 << (n - 1 - q) for q, p in word if p in "YZ")
        if flip not in cache:
            cache[flip] = rho[j * dim + (j ^ flip)]
        signs = 1 - 2 * (np.bitwise_count(np.arange(dim) & sign) & 1).astype(np.int64)
        val = jnp.sum(cache[flip] * jnp.asarray(signs, jnp.real(rho).dtype))
        out.append(jnp.real(val * (1j) ** sum(p == "Y" for _, p in word)))
    return jnp.stack(out)


class _WordsFn:
    """``rho -> Tr(P rho)`` for each word (hashable: part of a static key)."""

    def __init__(self, words, n):
        self.key = (words, n)

    def __call__(self, rho):
        return pauli_traces(rho, *self.key)

    def __eq__(self, other):
        return isinstance(other, _WordsFn) and other.key == self.key

    def __hash__(self):
        return hash(self.key)


class _StateFn:
    """``(program, params, init, adjoint) -> rho`` for the parameter-shift rule (backprop inside)."""

    def __init__(self, n, dtype, k, backend, remat, reduce):
        self.key = (n, dtype, k, backend, remat, reduce)

    def __call__(self, program, params, init, adjoint):
        return run(program, params, init, *self.key)

    def __eq__(self, other):
        return isinstance(other, _StateFn) and other.key == self.key

    def __hash__(self):
        return hash(self.key)


@functools.partial(jax.jit, static_argnums=(0, 3, 4, 5, 6, 7, 8, 9, 10))
def _words_jit(program, params, init, n, dtype, k, backend, remat, reduce, diff, words):
    n_out = n if reduce is None else len(reduce[0])
    words_fn = _WordsFn(words, n_out)
    if diff == "parameter-shift":
        state_fn = _StateFn(n, dtype, k, backend, remat, reduce)
        return _shift.values(state_fn, words_fn, program, params, init, 2 * n)
    return words_fn(run(program, params, init, n, dtype, k, backend, remat, reduce))


# ------------------------------------------------------------------ what to run ------

class Job(NamedTuple):
    """A circuit as the engine runs it: a program on ``n_wires`` wires (more than the circuit's
    when measurements are deferred), its parameters and initial state, and the reduction."""

    program: tuple
    params: tuple
    init: object
    n_wires: int
    reduce: tuple | None        # (kept wires, dephased positions) or None
    clbit_wires: tuple          # the wire holding each classical bit (-1: never written)


@dataclass(frozen=True)
class _ChannelMark:
    """A channel carried through the deferred-measurement pass as a placeholder gate."""

    name: str

    def __call__(self, *params):
        raise TypeError("qsim: a channel placeholder has no matrix")


def _mark(op):
    if isinstance(op, ChannelOp):
        return GateOp(GateDef(f"channel:{op.name}", len(op.wires), 0, "dense", 0, _ChannelMark(op.name), None, None),
                      op.wires)
    if isinstance(op, RepeatOp):
        return RepeatOp(tuple(_mark(b) for b in op.body), op.params_fn, op.n_layers)
    return op


def _unmark(op):
    if isinstance(op, GateOp) and isinstance(op.gate.matrix, _ChannelMark):
        return ChannelOp(op.gate.matrix.name, op.wires)
    if isinstance(op, RepeatOp):
        return RepeatOp(tuple(_unmark(b) for b in op.body), op.params_fn, op.n_layers)
    return op


def _has_cond(program):
    return any(isinstance(op, CondOp) or (isinstance(op, RepeatOp) and _has_cond(op.body)) for op in program)


def job(circ, need_clbits=False):
    """The `Job` of ``circ``: measurements and resets as channels, or (with classical control, or
    when the classical bits are wanted) the deferred-measurement program."""
    from . import _deferred
    n = circ.n_qubits
    program, params = circ.program
    if not (_has_cond(program) or (need_clbits and circ.is_dynamic)):
        program, params = logical_program(circ)
        clbits = [-1] * circ.n_clbits
        for op in circ.program[0]:
            if isinstance(op, MeasureOp):
                clbits[op.clbit] = op.wire
        return Job(program, params, circ._init, n, None, tuple(clbits))
    plan = _deferred.plan(tuple(_mark(op) for op in program), n, circ.n_clbits, circ._init is None)
    prog = tuple(_unmark(op) for op in plan.program)
    init = _deferred.initial_state(plan, circ._init, n, circ.dtype)
    dephased = tuple(sorted(plan.dephased))
    return Job(prog, _deferred.params(plan, params), init, plan.n_wires, (plan.system, dephased),
               plan.clbit_wires)


# ------------------------------------------------------------------ entry points ------

def logical_program(circ):
    """The records the engine runs: terminal measurements dropped when the circuit is not dynamic."""
    program, params = circ.program
    if circ.is_dynamic:
        return program, params
    keep = [i for i, op in enumerate(program) if not isinstance(op, MeasureOp)]
    return tuple(program[i] for i in keep), tuple(params[i] for i in keep)


def _check_diff(diff, where):
    if diff == "adjoint":
        raise ValueError(f"{where}: diff='adjoint' needs a unitary circuit (it un-applies each gate), but this "
                         "circuit has noise channels or measurements; use diff='backprop' or "
                         "diff='parameter-shift'")


def _remat(j, dtype, k, diff, where):
    """Whether to checkpoint (backprop's saved states would not fit), after the memory guard."""
    n = j.n_wires
    traced = not all(is_concrete(x) for x in jax.tree.leaves((j.params, j.init)))
    check_memory(2 * n, dtype, 2, where)
    if not traced or diff == "parameter-shift":
        return False
    prog, _ = lower(j.program, tuple(() for _ in j.program), n, min(LOGICAL_FUSION, k // 2) if k else 0)
    held = saved(_fusion.fuse(prog, tuple(() for _ in prog), k)[0])
    state_bytes = jnp.dtype(dtype).itemsize << (2 * n)
    remat = (2 + held) * state_bytes > _MEMORY_SHARE * available_bytes()[0]
    check_memory(2 * n, dtype, 2 + (checkpointed_saved(prog) if remat else held), where)
    return remat


def _prepare(circ, diff, where, need_clbits=False):
    from ._simulate import fusion_width
    _check_diff(diff, where)
    j = job(circ, need_clbits)
    k = fusion_width(circ)
    return j, k, _remat(j, circ.dtype, k, diff, where)


def state(circ, diff="backprop", where="Circuit.density_matrix"):
    """The final rho of ``circ``'s wires as a flat array of ``4**n`` entries."""
    j, k, remat = _prepare(circ, diff, where)
    return _run_jit(j.program, j.params, j.init, j.n_wires, circ.dtype, k, circ.backend, remat, j.reduce)


def density_matrix(circ, diff="backprop"):
    """The final density matrix ``(2**n, 2**n)``: ``|psi><psi|`` for a static noiseless circuit."""
    n = circ.n_qubits
    if not circ.is_noisy and not circ.is_dynamic:
        psi = circ.state(diff)
        return psi[:, None] * jnp.conj(psi)[None, :]
    return state(circ, diff).reshape(1 << n, 1 << n)


def expectations(circ, observables, diff):
    """``Tr(H rho)`` of each observable: real, shape ``(len(observables),)``."""
    j, k, remat = _prepare(circ, diff, f"Circuit.expectation(diff={diff!r})")
    words = tuple(w for o in observables for w in o.words)
    vals = _words_jit(j.program, j.params, j.init, j.n_wires, circ.dtype, k, circ.backend, remat, j.reduce,
                      diff, words)
    return combine_words(observables, vals, circ.real_dtype)


def probs(circ):
    """The probabilities of the final wires, shape ``(2**n,)`` (the real diagonal of rho)."""
    return diagonal(state(circ, where="Circuit.probs"), circ.n_qubits)


def sample_clbits(circ, key, shots):
    """``shots`` draws of the classical bits from the exact joint distribution: int32 ``(shots, n_clbits)``."""
    from ._simulate import sample_bits
    j, k, remat = _prepare(circ, "backprop", "Circuit.run", need_clbits=True)
    rho = _run_jit(j.program, j.params, j.init, j.n_wires, circ.dtype, k, circ.backend, remat, None)
    written = tuple(w for w in j.clbit_wires if w >= 0)
    if not written:
        return jnp.zeros((shots, len(j.clbit_wires)), jnp.int32)
    p = diagonal(rho, j.n_wires).reshape((2,) * j.n_wires)
    wires = tuple(dict.fromkeys(written))
    p = jnp.sum(p, axis=tuple(w for w in range(j.n_wires) if w not in wires))
    p = jnp.transpose(p, tuple(int(i) for i in np.argsort(np.argsort(wires)))).reshape(-1)
    bits = sample_bits(key, jnp.clip(p, 0, None), shots, len(wires))
    cols = [wires.index(w) if w >= 0 else -1 for w in j.clbit_wires]
    zero = jnp.zeros((shots,), jnp.int32)
    return jnp.stack([bits[:, c] if c >= 0 else zero for c in cols], axis=1)
