"""`custom_linear`: a linear map with a hand-written transpose that every JAX transform accepts.

The fast gradients of qsim (the native adjoint sweep, the adjoint method's
backward walk, the parameter-shift rule) are *transposes* of linear maps. JAX
builds reverse mode by transposing the linear part of a JVP, so each of them
is expressed as

    y = f(x)                                  (a `jax.custom_jvp` function)
    dy = custom_linear(fn, fn_t, res, dx)     (its tangent, linear in dx)

where ``fn(res, dx)`` is the tangent map and ``fn_t(res, ct)`` its transpose.
Then ``grad``/``jacrev`` run ``fn_t`` (the fast path), ``jvp``/``jacfwd``/
``linearize`` run ``fn``, and derivatives of any order follow because the
primitive's own JVP differentiates ``fn`` with respect to the residuals ``res``
(ordinary JAX), and transposing twice gives back ``fn``. Under ``vmap`` both
maps are batched with `jax.vmap` (cotangents of unbatched linear inputs are
summed over the batch), so ``vmap`` composes with all of the above in any order.

JAX's own ``jax.custom_derivatives.linear_call`` does the same but refuses
derivatives with respect to its residuals, which Hessians need.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.extend.core import Primitive, jaxpr_as_fun
from jax.interpreters import ad, batching, mlir

custom_linear_p = Primitive("qsim_custom_linear")
custom_linear_p.multiple_results = True


def _trace(fn, avals):
    """A ClosedJaxpr of the flat function ``fn`` at ``avals`` (cached by the caller)."""
    return jax.make_jaxpr(fn)(*avals)


def _avals(xs):
    return [jax.ShapeDtypeStruct(jnp.shape(x), jnp.result_type(x)) for x in xs]


def custom_linear(fn, fn_t, res, lin):
    """``fn(res, lin)``, linear in the pytree ``lin``, whose transpose is ``fn_t(res, ct)``.

    Args:
      fn: ``(res, lin) -> out`` pytree function, linear in ``lin``. It must close over
        static values only: every traced value goes in ``res``.
      fn_t: ``(res, ct_out) -> ct_lin``, the linear transpose of ``fn`` (same pytree
        structure and dtypes as ``lin``).
      res: pytree of residual arrays (differentiable: JVPs of ``fn`` w.r.t. them are taken
        by ordinary JAX autodiff).
      lin: pytree of arrays the map is linear in.

    Returns:
      ``fn(res, lin)``.
    """
    res_flat, res_tree = jax.tree.flatten(res)
    lin_flat, lin_tree = jax.tree.flatten(lin)
    n_res = len(res_flat)
    out_tree = []

    def flat_fn(*args):
        out = fn(jax.tree.unflatten(res_tree, args[:n_res]), jax.tree.unflatten(lin_tree, args[n_res:]))
        flat, tree = jax.tree.flatten(out)
        out_tree.append(tree)
        return flat

    callee = _trace(flat_fn, _avals(res_flat + lin_flat))
    lin_avals = _avals(lin_flat)

    @functools.cache
    def transpose():
        def flat_t(*args):
            ct = fn_t(jax.tree.unflatten(res_tree, args[:n_res]),
                      jax.tree.unflatten(out_tree[0], args[n_res:]))
            flat = jax.tree.leaves(ct)
            return [jnp.asarray(c, a.dtype).reshape(a.shape) for c, a in zip(flat, lin_avals)]
        return _trace(flat_t, _avals(res_flat) + list(callee.out_avals))

    out = custom_linear_p.bind(*res_flat, *lin_flat, callee=callee, transpose=transpose, num_res=n_res)
    return jax.tree.unflatten(out_tree[0], out)


def _impl(*args, callee, transpose, num_res):
    del transpose, num_res
    return jaxpr_as_fun(callee)(*args)


def _abstract_eval(*args, callee, transpose, num_res):
    del args, transpose, num_res
    return callee.out_avals


def _jvp(primals, tangents, *, callee, transpose, num_res):
    params = dict(callee=callee, transpose=transpose, num_res=num_res)
    res, lin = primals[:num_res], primals[num_res:]
    d_res, d_lin = tangents[:num_res], tangents[num_res:]
    out = custom_linear_p.bind(*primals, **params)
    t_out = None
    if any(type(t) is not ad.Zero for t in d_lin):
        t_out = custom_linear_p.bind(*res, *map(ad.instantiate_zeros, d_lin), **params)
    if any(type(t) is not ad.Zero for t in d_res):
        def of_res(*r):
            return jaxpr_as_fun(callee)(*r, *lin)
        _, t_res = jax.jvp(of_res, tuple(res), tuple(map(ad.instantiate_zeros, d_res)))
        t_out = t_res if t_out is None else [a + b for a, b in zip(t_out, t_res)]
    if t_out is None:
        return out, [ad.Zero.from_primal_value(o) for o in out]
    return out, t_out


def _transpose(cts, *args, callee, transpose, num_res):
    res, lin = args[:num_res], args[num_res:]
    if any(ad.is_undefined_primal(r) for r in res):
        raise TypeError("qsim custom_linear: a residual depends on the linear inputs; the map is not "
                        "linear in them (this is a bug in qsim, please report it)")
    t = transpose()
    cts = [jnp.zeros(a.shape, a.dtype) if type(c) is ad.Zero else c
           for c, a in zip(cts, callee.out_avals)]
    ct_lin = custom_linear_p.bind(*res, *cts, callee=t, transpose=lambda: callee, num_res=num_res)
    return [None] * num_res + [c if ad.is_undefined_primal(x) else None for c, x in zip(ct_lin, lin)]


def _batch(args, dims, *, callee, transpose, num_res):
    args = [x if d is None else jnp.moveaxis(x, d, 0) for x, d in zip(args, dims)]
    axes = [None if d is None else 0 for d in dims]
    res_axes, lin_axes = axes[:num_res], axes[num_res:]
    new_callee = _trace(jax.vmap(jaxpr_as_fun(callee), in_axes=axes, out_axes=0), _avals(args))
    res_avals = _avals(args[:num_res])

    @functools.cache
    def new_transpose():
        f_t = jaxpr_as_fun(transpose())
        n_out = len(callee.out_avals)

        def batched(*a):
            outs = jax.vmap(f_t, in_axes=res_axes + [0] * n_out, out_axes=0)(*a)
            return [o if ax == 0 else o.sum(0) for o, ax in zip(outs, lin_axes)]
        return _trace(batched, res_avals + list(new_callee.out_avals))

    out = custom_linear_p.bind(*args, callee=new_callee, transpose=new_transpose, num_res=num_res)
    return out, [0] * len(out)


custom_linear_p.def_impl(_impl)
custom_linear_p.def_abstract_eval(_abstract_eval)
mlir.register_lowering(custom_linear_p, mlir.lower_fun(_impl, multiple_results=True))
ad.primitive_jvps[custom_linear_p] = _jvp
ad.primitive_transposes[custom_linear_p] = _transpose
batching.primitive_batchers[custom_linear_p] = _batch
