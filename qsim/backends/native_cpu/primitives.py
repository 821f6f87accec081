"""Native programs as differentiable, batchable JAX functions.

`program(x, c, code, mode)` runs a whole step list (`steps`) in ONE FFI call;
`sweep(y, g, c, code)` is the adjoint sweep that walks it backwards. Their
transforms:

- ``vmap``: a custom batching rule keeps coefficients shared by every state shared
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

from ... import _linear
from . import reference
from .steps import DENSE, DIAGONAL, decode

FORWARD, INVERSE, TRANSPOSE = 0, 1, 2


def _like(x):
    return jax.ShapeDtypeStruct(x.shape, x.dtype)


def _unbroadcast(ct, shape):
    """Sum a per-state cotangent over the leading axes that the coefficients lack."""
    extra = ct.ndim - len(shape)
    return ct.sum(axis=tuple(range(extra))) if extra > 0 else ct


def _lift(a, batched, axis_size, lead):
    """``a`` with ``lead`` leading batch axes: the vmapped axis first (size 1 when ``a`` is not
    batched), then the axes of inner vmaps (size 1 where ``a`` lacks them)."""
    if not batched:
        a = a[None]
    return a.reshape(a.shape[:1] + (1,) * (lead - (a.ndim - 1)) + a.shape[1:])


def _batched(raw, n_states):
    """``raw`` with a vmap rule: coefficients shared by every state stay shared (vmapping over
    inputs only must not copy every gate matrix per sample); everything else is broadcast to
    one batch shape, which the kernels take as leading axes."""
    f = jax.custom_batching.custom_vmap(raw)

    @f.def_vmap
    def rule(axis_size, in_batched, *args):
        if not any(in_batched):
            return raw(*args), False
        lead = 1 + max(a.ndim - 1 - int(b) for a, b in zip(args, in_batched))
        lifted = [_lift(a, b, axis_size, lead) for a, b in zip(args, in_batched)]
        batch = jnp.broadcast_shapes(*(x.shape[:-1] for x in lifted))
        states = [jnp.broadcast_to(x, batch + x.shape[-1:]) for x in lifted[:n_states]]
        coefs = [c if not b and c.ndim == 1 else jnp.broadcast_to(x, batch + x.shape[-1:])
                 for c, x, b in zip(args[n_states:], lifted[n_states:], in_batched[n_states:])]
        out = f(*states, *coefs)   # f, not raw: an outer vmap applies this rule again
        return out, jax.tree.map(lambda _: True, out)

    return f


@functools.lru_cache(maxsize=1024)
def _program_ffi(code, mode):
    def raw(state, coefs):
        return jax.ffi.ffi_call("qsim_native_program", _like(state), vmap_method="broadcast_all",
                                input_output_aliases={0: 0})(
            state, coefs, code=np.asarray(code, np.int64), mode=np.int64(mode))
    return _batched(raw, 1)


@functools.lru_cache(maxsize=1024)
def _sweep_ffi(code, want_ct):
    def raw(y, g, coefs):
        ct = jax.ShapeDtypeStruct(y.shape[:-1] + coefs.shape[-1:], y.dtype)
        return jax.ffi.ffi_call("qsim_native_program_vjp", (_like(y), _like(g), ct),
                                vmap_method="broadcast_all", input_output_aliases={0: 0, 1: 1})(
            y, g, coefs, code=np.asarray(code, np.int64), want_ct=np.int64(want_ct))
    return _batched(raw, 2)


@functools.lru_cache(maxsize=1024)
def _steps(code):
    return decode(code)


def _reference(x, c, code, mode):
    """The pure-JAX result of the program (leading batch axes of x and c broadcast)."""
    steps = _steps(code)
    if x.ndim == 1 and c.ndim == 1:
        return reference.run_code(x, c, steps, mode)
    batch = jnp.broadcast_shapes(x.shape[:-1], c.shape[:-1])
    xs = jnp.broadcast_to(x, batch + x.shape[-1:]).reshape(-1, x.shape[-1])
    run = lambda s, k: reference.run_code(s, k, steps, mode)  # noqa: E731
    if c.ndim == 1:
        out = jax.vmap(run, in_axes=(0, None))(xs, c)
    else:
        out = jax.vmap(run)(xs, jnp.broadcast_to(c, batch + c.shape[-1:]).reshape(-1, c.shape[-1]))
    return out.reshape(batch + x.shape[-1:])


def _reference_sweep(y, g, c, code):
    x = _reference(y, c, code, INVERSE)
    g_x = _reference(g, c, code, TRANSPOSE)
    _, vjp = jax.vjp(lambda k: _reference(x, k, code, FORWARD), c)
    return x, g_x, vjp(g)[0]


def _is_zero(t) -> bool:
    return isinstance(t, jax.custom_derivatives.SymbolicZero)


# ---------------------------------------------------------------- program ------

@functools.partial(jax.custom_jvp, nondiff_argnums=(2, 3))
def program(x, c, code, mode=FORWARD):
    """``U_S ... U_1 x`` (mode 0), ``U_1^dagger ... U_S^dagger x`` (1) or ``U_1^T ... U_S^T x`` (2).

    Args:
      x: states ``(..., 2**n)``, complex64 or complex128.
      c: coefficients ``(total,)`` shared by every state, or ``(..., total)`` one row per state;
        of the state's dtype.
      code: the static step records (`steps`).
      mode: 0, 1 or 2 (static).
    """
    return _program_ffi(code, mode)(x, c)


def _state_part(g, c, code, mode):
    """The program's action on a state tangent (mode) or its transpose."""
    if mode == INVERSE:   # (U^dagger)^T = conj(U)
        return jnp.conj(program(jnp.conj(g), c, code, FORWARD))
    return program(g, c, code, mode)


@functools.partial(program.defjvp, symbolic_zeros=True)
def _program_jvp(code, mode, primals, tangents):
    x, c = primals
    dx, dc = tangents
    y = program(x, c, code, mode)
    has_dx, has_dc = not _is_zero(dx), not _is_zero(dc)
    if not (has_dx or has_dc):
        return y, jnp.zeros_like(y)
    lin = tuple(t for t, on in ((dx, has_dx), (dc, has_dc)) if on)

    def fn(res, lin):
        x, _, c = res
        out = []
        if has_dx:
            out.append(program(lin[0], c, code, mode))
        if has_dc:
            out.append(jax.jvp(lambda k: _reference(x, k, code, mode), (c,), (lin[-1],))[1])
        return sum(out[1:], out[0])

    def fn_t(res, g):
        x, y, c = res
        if mode == FORWARD and has_dc:
            if _single_step(code):   # the input is at hand: no un-applying (any matrix)
                g_x, ct = step_vjp(x, g, c, code)
            else:
                _, g_x, ct = sweep(y, g, c, code)
            return ((g_x,) if has_dx else ()) + (_unbroadcast(ct, c.shape),)
        out = []
        if has_dx:
            out.append(_state_part(g, c, code, {FORWARD: TRANSPOSE, TRANSPOSE: FORWARD}.get(mode, mode)))
        if has_dc:
            _, vjp = jax.vjp(lambda k: _reference(x, k, code, mode), c)
            out.append(vjp(g)[0])
        return tuple(out)

    return y, _linear.custom_linear(fn, fn_t, (x, y, c), lin)


# ------------------------------------------------------------------ sweep ------

@functools.partial(jax.custom_jvp, nondiff_argnums=(3, 4))
def sweep(y, g, c, code, want_ct=True):
    """The adjoint sweep of a forward program, from its output ``y`` and cotangent ``g``.

    Returns ``(x, g_x, ct)``: the program's input (recovered by un-applying each step),
    its cotangent ``U_1^T ... U_S^T g`` and the coefficients' cotangent (JAX's convention:
    ``ct[offset + i*d + j] = sum_rest g[rest, i] x[rest, j]`` for a dense step), summed
    over the state batch when the coefficients are shared; zeros without ``want_ct``
    (constant coefficients: the sweep then skips that work).
    """
    x, g_x, ct = _sweep_ffi(code, int(want_ct))(y, g, c)
    return x, g_x, _unbroadcast(ct, c.shape)


@sweep.defjvp
def _sweep_jvp(code, want_ct, primals, tangents):
    out = sweep(*primals, code, want_ct)
    _, t_out = jax.jvp(lambda y, g, c: _reference_sweep(y, g, c, code), primals, tangents)
    if not want_ct:
        t_out = t_out[:2] + (jnp.zeros_like(out[2]),)
    return out, t_out


# ------------------------------------------------------------- one step ------
# A program of one dense or diagonal step differentiates from its saved input with the
# per-step VJP kernels (no un-applying), so any matrix works, unitary or not.

def _single_step(code) -> bool:
    steps = _steps(code)
    return len(steps) == 1 and steps[0].kind in (DENSE, DIAGONAL)


@functools.lru_cache(maxsize=1024)
def _step_vjp_ffi(code):
    (step,) = _steps(code)
    attrs = {"targets": np.asarray(step.targets, np.int64)}
    if step.kind == DENSE:
        attrs["controls"] = np.asarray(step.controls, np.int64)

    def raw(x, g, c):
        ct = jax.ShapeDtypeStruct(g.shape[:-1] + c.shape[-1:], g.dtype)
        name = "qsim_native_dense_vjp" if step.kind == DENSE else "qsim_native_diagonal_vjp"
        d = int(round(c.shape[-1] ** 0.5)) if step.kind == DENSE else None
        block = c.reshape(c.shape[:-1] + (d, d)) if d else c
        ct_shape = g.shape[:-1] + block.shape[-2:] if d else ct.shape
        g_x, ct_b = jax.ffi.ffi_call(name, (_like(g), jax.ShapeDtypeStruct(ct_shape, g.dtype)),
                                     vmap_method="broadcast_all", input_output_aliases={0: 0})(g, x, block, **attrs)
        return g_x, ct_b.reshape(ct.shape)
    return raw


@functools.partial(jax.custom_jvp, nondiff_argnums=(3,))
def step_vjp(x, g, c, code):
    """``(g_x, ct)`` of a one-step program at input ``x`` (per-state ``ct``)."""
    return _step_vjp_ffi(code)(x, g, c)


@step_vjp.defjvp
def _step_vjp_jvp(code, primals, tangents):
    steps = _steps(code)

    def one(x, g, c):   # one state, one coefficient row
        _, vjp = jax.vjp(lambda k: reference.run_code(x, k, steps, FORWARD), c)
        return reference.run_code(g, c, steps, TRANSPOSE), vjp(g)[0]

    def ref(x, g, c):
        if x.ndim == 1 and c.ndim == 1:
            return one(x, g, c)
        batch = jnp.broadcast_shapes(x.shape[:-1], g.shape[:-1], c.shape[:-1])
        flat = lambda a: jnp.broadcast_to(a, batch + a.shape[-1:]).reshape(-1, a.shape[-1])  # noqa: E731
        g_x, ct = jax.vmap(one)(flat(x), flat(g), flat(c))
        return g_x.reshape(batch + g_x.shape[-1:]), ct.reshape(batch + ct.shape[-1:])

    return step_vjp(*primals, code), jax.jvp(ref, primals, tangents)[1]


def undo(y, c, code):
    """The input of a forward program from its output (unitary steps), with no cotangent."""
    return program(y, c, code, INVERSE)
