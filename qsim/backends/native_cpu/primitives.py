"""Native programs as differentiable, batchable JAX functions.

`program(x, c, code, mode)` runs a whole step list (`steps`) in ONE FFI call;
`sweep(y, g, c, code)` is the adjoint sweep that walks it backwards. Their
transforms:

Each is a JAX primitive (abstract evaluation, lowering to the FFI call, batching and JVP
rules), so no transform ever meets a bare FFI call:

- ``vmap``: the batching rule keeps coefficients shared by every state shared
  (vmapping over inputs only must not copy every gate matrix per sample) and
  broadcasts an unbatched state when the coefficients are batched;
- reverse mode (``grad``, ``jacrev``): the tangent of `program` is a `custom_linear`
  map whose transpose is ONE native sweep (state and coefficient cotangents
  together, in the memory of two states); with constant coefficients it is the
  transposed program;
- forward mode (``jvp``, ``jacfwd``, ``linearize``) and every higher order: the
  coefficient tangent and the sweep's own derivatives come from the pure-JAX
  reference executor (`reference.run_code`) of the same steps, so Hessians are
  exact. The sweep recovers each step's input by un-applying it, which assumes
  unitary steps: every gate and fused block of a circuit is one, and tangents of
  gate parameters stay tangent to the unitaries.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import core
from jax.extend.core import Primitive
from jax.interpreters import ad, batching, mlir

from ... import _linear
from . import merge, reference
from .steps import DENSE, DIAGONAL, decode, unfuse

FORWARD, INVERSE, TRANSPOSE = 0, 1, 2


def _like(x):
    return jax.ShapeDtypeStruct(x.shape, x.dtype)


def _unbroadcast(ct, shape):
    """Sum a per-state cotangent over the leading axes that the coefficients lack."""
    extra = ct.ndim - len(shape)
    return ct.sum(axis=tuple(range(extra))) if extra > 0 else ct


def _lift(a, batched, lead):
    """``a`` with ``lead`` leading batch axes: the vmapped axis first (size 1 when ``a`` is not
    batched), then the axes of inner vmaps (size 1 where ``a`` lacks them)."""
    if not batched:
        a = a[None]
    return a.reshape(a.shape[:1] + (1,) * (lead - (a.ndim - 1)) + a.shape[1:])


def _batch_rule(prim, n_states):
    """Batching of a native primitive: coefficients shared by every state stay shared (vmapping
    over inputs only must not copy every gate matrix per sample); everything else is broadcast
    to one batch shape, which the kernels take as leading axes."""
    def rule(args, dims, **params):
        batched = [d is not None for d in dims]
        args = [jnp.moveaxis(a, d, 0) if d is not None else a for a, d in zip(args, dims)]
        lead = 1 + max(a.ndim - 1 - int(b) for a, b in zip(args, batched))
        lifted = [_lift(a, b, lead) for a, b in zip(args, batched)]
        batch = jnp.broadcast_shapes(*(x.shape[:-1] for x in lifted))
        states = [jnp.broadcast_to(x, batch + x.shape[-1:]) for x in lifted[:n_states]]
        coefs = [c if not b and c.ndim == 1 else jnp.broadcast_to(x, batch + x.shape[-1:])
                 for c, x, b in zip(args[n_states:], lifted[n_states:], batched[n_states:])]
        out = prim.bind(*states, *coefs, **params)
        return out, ([0] * len(out) if prim.multiple_results else 0)
    return rule


@functools.lru_cache(maxsize=1024)
def _jitted(impl, params):
    """Eager evaluation: ``impl`` compiled once per static parameters."""
    return jax.jit(functools.partial(impl, **dict(params)))


def _define(name, impl, abstract, n_states, multiple_results=False):
    """A JAX primitive run by ``impl`` (FFI calls), with ``abstract`` eval and the batch rule."""
    prim = Primitive(name)
    prim.multiple_results = multiple_results
    prim.def_impl(lambda *args, **params: _jitted(impl, tuple(sorted(params.items())))(*args))
    prim.def_abstract_eval(abstract)
    mlir.register_lowering(prim, mlir.lower_fun(impl, multiple_results=multiple_results), platform="cpu")
    batching.primitive_batchers[prim] = _batch_rule(prim, n_states)
    return prim


def _aval(x):
    return core.ShapedArray(x.shape, x.dtype)


def _program_impl(x, c, *, code, mode):
    return jax.ffi.ffi_call("qsim_native_program", _like(x), input_output_aliases={0: 0})(
        x, c, code=np.asarray(code, np.int64), mode=np.int64(mode))


def _sweep_impl(y, g, c, *, code, want_ct):
    ct = jax.ShapeDtypeStruct(y.shape[:-1] + c.shape[-1:], y.dtype)
    return jax.ffi.ffi_call("qsim_native_program_vjp", (_like(y), _like(g), ct),
                            input_output_aliases={0: 0, 1: 1})(
        y, g, c, code=np.asarray(code, np.int64), want_ct=np.int64(want_ct))


def _sweep_abstract(y, g, c, *, code, want_ct):
    return _aval(y), _aval(g), core.ShapedArray(y.shape[:-1] + c.shape[-1:], y.dtype)


def _step_vjp_impl(x, g, c, *, code):
    (step,) = _steps(code)
    attrs = {"targets": np.asarray(step.targets, np.int64)}
    ct = jax.ShapeDtypeStruct(g.shape[:-1] + c.shape[-1:], g.dtype)
    if step.kind == DENSE:
        attrs["controls"] = np.asarray(step.controls, np.int64)
        d = 1 << len(step.targets)
        block, ct_b = c.reshape(c.shape[:-1] + (d, d)), jax.ShapeDtypeStruct(g.shape[:-1] + (d, d), g.dtype)
        name = "qsim_native_dense_vjp"
    else:
        block, ct_b, name = c, ct, "qsim_native_diagonal_vjp"
    g_x, ct_out = jax.ffi.ffi_call(name, (_like(g), ct_b), input_output_aliases={0: 0})(g, x, block, **attrs)
    return g_x, ct_out.reshape(ct.shape)


def _step_vjp_abstract(x, g, c, *, code):
    return _aval(g), core.ShapedArray(g.shape[:-1] + c.shape[-1:], g.dtype)


program_p = _define("qsim_native_program", _program_impl, lambda x, c, **_: _aval(x), 1)
sweep_p = _define("qsim_native_sweep", _sweep_impl, _sweep_abstract, 2, multiple_results=True)
step_vjp_p = _define("qsim_native_step_vjp", _step_vjp_impl, _step_vjp_abstract, 2, multiple_results=True)


@functools.lru_cache(maxsize=1024)
def _steps(code):
    return decode(code)


def _rows(fn, states, coefs):
    """``fn(*state_rows, *coef_rows)`` over the leading batch axes of ``states`` and ``coefs``
    (coefficients of shape ``(total,)`` stay shared by every row)."""
    if all(a.ndim == 1 for a in states + coefs):
        return fn(*states, *coefs)
    batch = jnp.broadcast_shapes(*(a.shape[:-1] for a in states + coefs))
    flat = lambda a: jnp.broadcast_to(a, batch + a.shape[-1:]).reshape(-1, a.shape[-1])  # noqa: E731
    axes = [0] * len(states) + [None if c.ndim == 1 else 0 for c in coefs]
    out = jax.vmap(fn, in_axes=axes)(*map(flat, states), *[c if c.ndim == 1 else flat(c) for c in coefs])
    return jax.tree.map(lambda o: o.reshape(batch + o.shape[1:]), out)


def _reference(x, c, code, mode):
    """The pure-JAX result of the program (leading batch axes of x and c broadcast)."""
    steps = _steps(code)
    return _rows(lambda s, k: reference.run_code(s, k, steps, mode), [x], [c])


def _reference_sweep(y, g, c, code):
    x = _reference(y, c, code, INVERSE)
    g_x = _reference(g, c, code, TRANSPOSE)
    _, vjp = jax.vjp(lambda k: _reference(x, k, code, FORWARD), c)
    return x, g_x, vjp(g)[0]


def _is_zero(t) -> bool:
    return type(t) is ad.Zero


# ---------------------------------------------------------------- program ------

# Fused steps are multiplied out by the kernel at run time: one pass over the state instead
# of one per member, which pays where the state streams from memory and the block is shared
# by every state. A state of up to 2**UNFUSE_MAX_QUBITS amplitudes (512 KiB in complex64) sits
# in a core's caches, where building (and differentiating) a block costs more than the passes
# it saves: there the members run one by one, each wire's one-qubit runs merged (`merge`).
# HEA training step, L=4 (2 vCPU): n=6 batch 128 115 ms fused, 2 ms not; n=14 batch 1 4.1 ms
# fused, 2.0 ms merged; n=16 batch 1 17 ms against 9.5 ms; n=14 batch 32 108 ms against 69 ms.
# Above it the code with fewer passes (`merge.passes`) runs: the merged one where the program
# is layers of one-qubit gates between CNOT chains (HEA step, L=4, batch 1: n=18 42 -> 20 ms,
# n=20 165 -> 89 ms, n=22 728 -> 411 ms), the fused one for two-qubit gates (a brickwork of
# RXX, RY, CRZ, 8 deep: n=18 30 ms fused against 53 ms merged, n=20 118 against 228 ms).
UNFUSE_MAX_QUBITS = 16


@functools.lru_cache(maxsize=1024)
def _unfused(code):
    return unfuse(code)


def _for_size(code, dim):
    """The code to run (it reads the same coefficients): in cache the members run one by one,
    each wire's runs of one-qubit steps merged into one (`merge`); a state that streams from
    memory runs whichever of that and the fused code makes fewer passes."""
    unfused = _unfused(code)
    merged = merge.plan(unfused) or unfused
    if dim <= 1 << UNFUSE_MAX_QUBITS:
        return merged
    n = dim.bit_length() - 1
    return merged if merge.passes(merged, n) <= merge.passes(code, n) else code


def streams(n_qubits: int) -> bool:
    """Whether an ``n_qubits`` state streams from memory: there a program's time is its passes
    over the state (`passes`); in cache it is its steps."""
    return n_qubits > UNFUSE_MAX_QUBITS


def passes(code, n_qubits: int) -> int:
    """The passes over an ``n_qubits`` state that `program` makes running ``code`` (as it runs
    it: the code `_for_size` picks, counted by `merge.passes`)."""
    return merge.passes(_for_size(tuple(code), 1 << n_qubits), n_qubits)


def program(x, c, code, mode=FORWARD):
    """``U_S ... U_1 x`` (mode 0), ``U_1^dagger ... U_S^dagger x`` (1) or ``U_1^T ... U_S^T x`` (2).

    Args:
      x: states ``(..., 2**n)``, complex64 or complex128.
      c: coefficients ``(total,)`` shared by every state, or ``(..., total)`` one row per state;
        of the state's dtype.
      code: the static step records (`steps`).
      mode: 0, 1 or 2 (static).
    """
    return program_p.bind(x, c, code=_for_size(tuple(code), x.shape[-1]), mode=int(mode))


def _state_part(g, c, code, mode):
    """The program's action on a state tangent (mode) or its transpose."""
    if mode == INVERSE:   # (U^dagger)^T = conj(U)
        return jnp.conj(program(jnp.conj(g), c, code, FORWARD))
    return program(g, c, code, mode)


def _program_jvp(primals, tangents, *, code, mode):
    x, c = primals
    dx, dc = tangents
    y = program(x, c, code, mode)
    has_dx, has_dc = not _is_zero(dx), not _is_zero(dc)
    if not (has_dx or has_dc):
        return y, ad.Zero.from_primal_value(y)
    lin = tuple(t for t, on in ((dx, has_dx), (dc, has_dc)) if on)
    # Residuals: only what the transpose reads, so that reverse mode saves one state per
    # program. The sweep starts from the output y (it recovers the input itself); a one-step
    # program and the other modes read the input x; a state tangent alone needs neither.
    by_sweep = mode == FORWARD and has_dc and not _single_step(code)
    res = (y, c) if by_sweep else (x, c) if has_dc else (c,)

    def input_of(res):
        return program(res[0], res[1], code, INVERSE) if by_sweep else res[0]

    def fn(res, lin):
        c = res[-1]
        out = []
        if has_dx:
            out.append(program(lin[0], c, code, mode))
        if has_dc:
            x = input_of(res)
            out.append(jax.jvp(lambda k: _reference(x, k, code, mode), (c,), (lin[-1],))[1])
        return sum(out[1:], out[0])

    def fn_t(res, g):
        c = res[-1]
        if by_sweep:
            _, g_x, ct = sweep(res[0], g, c, code)
            return ((g_x,) if has_dx else ()) + (_unbroadcast(ct, c.shape),)
        if mode == FORWARD and has_dc:   # one step: the input is at hand, no un-applying (any matrix)
            g_x, ct = step_vjp(res[0], g, c, code)
            return ((g_x,) if has_dx else ()) + (_unbroadcast(ct, c.shape),)
        out = []
        if has_dx:
            out.append(_state_part(g, c, code, {FORWARD: TRANSPOSE, TRANSPOSE: FORWARD}.get(mode, mode)))
        if has_dc:
            _, vjp = jax.vjp(lambda k: _reference(res[0], k, code, mode), c)
            out.append(vjp(g)[0])
        return tuple(out)

    return y, _linear.custom_linear(fn, fn_t, res, lin)


ad.primitive_jvps[program_p] = _program_jvp


# ------------------------------------------------------------------ sweep ------

def sweep(y, g, c, code, want_ct=True):
    """The adjoint sweep of a forward program, from its output ``y`` and cotangent ``g``.

    Returns ``(x, g_x, ct)``: the program's input (recovered by un-applying each step),
    its cotangent ``U_1^T ... U_S^T g`` and the coefficients' cotangent (JAX's convention:
    ``ct[offset + i*d + j] = sum_rest g[rest, i] x[rest, j]`` for a dense step), summed
    over the state batch when the coefficients are shared; zeros without ``want_ct``
    (constant coefficients: the sweep then skips that work).
    """
    batch = jnp.broadcast_shapes(y.shape[:-1], g.shape[:-1])
    y, g = jnp.broadcast_to(y, batch + y.shape[-1:]), jnp.broadcast_to(g, batch + g.shape[-1:])
    x, g_x, ct = sweep_p.bind(y, g, c, code=_for_size(tuple(code), y.shape[-1]), want_ct=int(want_ct))
    return x, g_x, _unbroadcast(ct, c.shape)


def _sweep_jvp(primals, tangents, *, code, want_ct):
    out = sweep_p.bind(*primals, code=code, want_ct=want_ct)
    tangents = tuple(map(ad.instantiate_zeros, tangents))
    _, (t_x, t_g, t_ct) = jax.jvp(lambda y, g, c: _reference_sweep_rows(y, g, c, code), primals, tangents)
    return out, [t_x, t_g, t_ct if want_ct else jnp.zeros_like(out[2])]


def _reference_sweep_rows(y, g, c, code):
    """`_reference_sweep` with the coefficient cotangent per state (as the kernel returns it)."""
    return _rows(lambda yy, gg, cc: _reference_sweep(yy, gg, cc, code), [y, g], [c])


ad.primitive_jvps[sweep_p] = _sweep_jvp


# ------------------------------------------------------------- one step ------
# A program of one dense or diagonal step differentiates from its saved input with the
# per-step VJP kernels (no un-applying), so any matrix works, unitary or not.

def _single_step(code) -> bool:
    steps = _steps(code)
    return len(steps) == 1 and steps[0].kind in (DENSE, DIAGONAL)


def step_vjp(x, g, c, code):
    """``(g_x, ct)`` of a one-step program at input ``x`` (``ct`` per state)."""
    batch = jnp.broadcast_shapes(x.shape[:-1], g.shape[:-1])
    x, g = jnp.broadcast_to(x, batch + x.shape[-1:]), jnp.broadcast_to(g, batch + g.shape[-1:])
    return step_vjp_p.bind(x, g, c, code=tuple(code))


def _step_vjp_jvp(primals, tangents, *, code):
    steps = _steps(code)

    def one(x, g, c):   # one state, one coefficient row
        _, vjp = jax.vjp(lambda k: reference.run_code(x, k, steps, FORWARD), c)
        return reference.run_code(g, c, steps, TRANSPOSE), vjp(g)[0]

    def ref(x, g, c):
        return _rows(one, [x, g], [c])

    tangents = tuple(map(ad.instantiate_zeros, tangents))
    return step_vjp_p.bind(*primals, code=code), list(jax.jvp(ref, primals, tangents)[1])


ad.primitive_jvps[step_vjp_p] = _step_vjp_jvp
