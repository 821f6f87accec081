"""Running a recorded program: jitted entry points, repeat recording and sampling.

`final_state` and `expectations` jit one pure function per static program (the
op records, qubit count, dtype, gradient method and fusion width are static;
parameters, initial state and observable coefficients are traced), so eager
calls with new angles reuse the compiled executable and, inside a user's
`jax.jit`, the call is simply inlined.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from . import _adjoint, _backend, _fusion, _scan, _shift
from ._observables import pauli_expectations
from ._ops import GateOp, RepeatOp, run_program
from ._validate import check_memory, is_concrete

# statevectors each method holds at its peak (forward: input and output buffers)
# default fusion width per backend (chosen by measurement, see benchmarks)
DEFAULT_FUSION = {"cpu": 4, "gpu": 4}
STATES_HELD = {"backprop": 2, "adjoint": 4, "parameter-shift": 4}


def _initial(n, dtype, init):
    if init is not None:
        return init
    return jnp.zeros((1 << n,), dtype).at[0].set(1)


def _state(program, params, init, n, dtype, diff, fuse_k):
    state = _initial(n, dtype, init)
    program, params = _fusion.fuse(program, params, fuse_k)
    program, params = _scan.to_native(program, params, state.dtype)
    if diff == "adjoint":
        return _adjoint.run(program, params, state)
    return run_program(program, params, state)


@functools.partial(jax.jit, static_argnums=(0, 3, 4, 5, 6, 7))
def _state_jit(program, params, init, n, dtype, diff, fuse_k, kernels):
    del kernels   # only part of the cache key (`_backend.kernel_key`)
    return _state(program, params, init, n, dtype, diff, fuse_k)


@functools.partial(jax.jit, static_argnums=(0, 3, 4, 5, 6, 7, 8))
def _words_jit(program, params, init, n, dtype, diff, fuse_k, words, kernels):
    """Real ``<P>`` for every Pauli word (the coefficients are combined outside)."""
    def words_fn(state):
        return jnp.real(pauli_expectations(state, words))

    if diff == "parameter-shift":
        def state_fn(prog, prm, ini, adjoint):
            return _state(prog, prm, ini, n, dtype, "adjoint" if adjoint else "backprop", fuse_k)
        return _shift.values(state_fn, words_fn, program, params, init, n)
    return words_fn(_state(program, params, init, n, dtype, diff, fuse_k))


def fusion_width(circ) -> int:
    """The fusion width for ``circ``: its own setting, else the backend's default."""
    if circ.max_fused_qubits is not None:
        return circ.max_fused_qubits
    return DEFAULT_FUSION.get(jax.default_backend(), 4)


def _prepared(circ):
    """The program to run, and its fusion width.

    A long program whose parameters are all concrete (e.g. from QASM) is fused and
    lowered to a `ScanOp` here, eagerly, so the jitted function receives ready
    blocks and its compile time does not grow with the number of gates.
    """
    program, params = circ.program
    k = fusion_width(circ)
    if (len(program) >= _scan.MIN_OPS and all(isinstance(op, GateOp) for op in program)
            and all(is_concrete(x) for x in jax.tree.leaves(params))):
        program, params = _scan.lower_concrete(program, params, circ.dtype, k)
        k = 0
    return program, params, k


def final_state(circ, diff):
    program, params, k = _prepared(circ)
    check_memory(circ.n_qubits, circ.dtype, STATES_HELD[diff], "Circuit.state")
    return _state_jit(program, params, circ._init, circ.n_qubits, circ.dtype, diff, k,
                      _backend.kernel_key())


def expectations(circ, observables, diff):
    """Values of each observable (real, shape ``(len(observables),)``)."""
    check_memory(circ.n_qubits, circ.dtype, STATES_HELD[diff], f"Circuit.expectation(diff={diff!r})")
    program, params, k = _prepared(circ)
    words = tuple(w for o in observables for w in o.words)
    vals = _words_jit(program, params, circ._init, circ.n_qubits, circ.dtype, diff,
                      k, words, _backend.kernel_key())
    out, start = [], 0
    for o in observables:
        c = o.coeffs
        v = vals[start:start + len(o.words)]
        out.append(jnp.real(jnp.sum(c * v)) if jnp.iscomplexobj(c) else jnp.sum(c * v))
        start += len(o.words)
    return jnp.stack(out).astype(circ.real_dtype)


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
    return RepeatOp(recorded["body"], params_fn, n_layers), tuple(consts)


def sample_bits(key, p, shots, n_bits):
    """Inverse-CDF sampling of ``shots`` basis indices from ``p``, as bits (MSB first)."""
    cdf = jnp.cumsum(p)
    u = jax.random.uniform(key, (shots,), dtype=cdf.dtype) * cdf[-1]
    idx = jnp.clip(jnp.searchsorted(cdf, u, side="right"), 0, p.shape[0] - 1)
    shifts = jnp.arange(n_bits - 1, -1, -1)
    return ((idx[:, None] >> shifts) & 1).astype(jnp.int32)
