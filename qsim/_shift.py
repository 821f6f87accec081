"""The parameter-shift rule, the hardware-style gradient.

For a gate ``exp(-i theta G)`` whose generator has eigenvalue gaps {1}
(rx, ry, rz, phase, rxx, ryy, rzz, cphase, each angle of u2/u3):
``df/dtheta = [f(theta + pi/2) - f(theta - pi/2)] / 2``.
For the controlled rotations (gaps {1/2, 1}) the four-term rule
``df/dtheta = c+ [f(theta + pi/2) - f(theta - pi/2)] - c- [f(theta + 3pi/2) - f(theta - 3pi/2)]``,
``c+- = (sqrt(2) +- 1) / (4 sqrt(2))``.

`values(word_values, program, params, init)` evaluates the real Pauli-word
values with a custom VJP. The backward pass first expands every `repeat` into
per-layer gate parameters, then evaluates the shifted circuits in batches
(`lax.map` with a batch size bounded by memory) and finally maps the gate-angle
cotangents back to the user's parameters. Gates without a shift rule (user
matrices, whose parameter is the matrix itself) and a traced initial state take
their cotangents from the adjoint sweep, which is exact for them as well.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from . import _channels, _linear
from ._ir import ChannelOp, GateOp, LayerFn, RepeatOp

_C_PLUS = (math.sqrt(2) + 1) / (4 * math.sqrt(2))
_C_MINUS = (math.sqrt(2) - 1) / (4 * math.sqrt(2))
RULES = {
    "two": ((math.pi / 2, 0.5), (-math.pi / 2, -0.5)),
    "four": ((math.pi / 2, _C_PLUS), (-math.pi / 2, -_C_PLUS),
             (3 * math.pi / 2, -_C_MINUS), (-3 * math.pi / 2, _C_MINUS)),
}
_MAX_BATCH_AMPLITUDES = 1 << 22


def _identity_params(w):
    return w


_IDENTITY = LayerFn(_identity_params, ("identity",))


def expand(program, params):
    """Replace each `RepeatOp` by one whose parameters are its per-layer gate parameters."""
    prog, prm = [], []
    for op, p in zip(program, params):
        if isinstance(op, RepeatOp):
            stacked, consts = p
            per_layer = jax.vmap(lambda w: op.params_fn(w, *consts))(stacked)
            op, p = RepeatOp(op.body, _IDENTITY, op.n_layers), (per_layer, ())
        prog.append(op)
        prm.append(p)
    return tuple(prog), tuple(prm)


def _rules(program):
    """The shift rule of each parameter leaf of an expanded program (None: no rule)."""
    out = []
    for op in program:
        ops = op.body if isinstance(op, RepeatOp) else (op,)
        per_op = tuple(tuple(o.gate.shift for _ in range(o.gate.n_params)) if isinstance(o, GateOp)
                       else (None,) * _channels.n_params(o) if isinstance(o, ChannelOp) else ()
                       for o in ops)
        out.append((per_op, ()) if isinstance(op, RepeatOp) else per_op[0])
    return tuple(out)


def values(state_fn, words_fn, program, params, init, n_qubits):
    """Real Pauli-word values whose VJP uses the parameter-shift rule (see module docstring).

    ``state_fn(program, params, init, adjoint)`` runs a program; ``words_fn(state)``
    gives the real word values of a state.
    """
    prog, prm = expand(program, params)
    return _values(_Static(state_fn, words_fn, prog, _rules(prog), n_qubits), prm, init)


class _Static:
    """The static half of a parameter-shift evaluation (hashable for custom_vjp)."""

    def __init__(self, state_fn, words_fn, program, rules, n_qubits):
        self.state_fn, self.words_fn, self.program, self.rules = state_fn, words_fn, program, rules
        self.n_qubits = n_qubits

    def key(self):
        return (self.state_fn, self.words_fn, self.program, self.rules, self.n_qubits)

    def __hash__(self):
        return hash(self.key())

    def __eq__(self, other):
        return isinstance(other, _Static) and self.key() == other.key()

    def evaluate(self, params, init, adjoint=False):
        return self.words_fn(self.state_fn(self.program, params, init, adjoint))


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def _values(static, params, init):
    return static.evaluate(params, init)


@_values.defjvp
def _values_jvp(static, primals, tangents):
    params, init = primals
    out = _values(static, params, init)
    leaves, treedef = jax.tree.flatten(params)
    rules = treedef.flatten_up_to(static.rules)
    exact = [i for i, (r, leaf) in enumerate(zip(rules, leaves)) if r is None and leaf.size]
    groups = {rule: [i for i, r in enumerate(rules) if r == rule] for rule in RULES}
    groups = {rule: picked for rule, picked in groups.items() if picked}

    def jacobians(params, init):
        leaves = jax.tree.leaves(params)
        return {rule: _shift_jacobian(static, leaves, treedef, init, picked, rule)
                for rule, picked in groups.items()}

    def exact_part(params, init):
        """The derivative parts with no shift rule (user matrices, the initial state), by the adjoint."""
        leaves = jax.tree.leaves(params)

        def f(sub, ini):
            new = list(leaves)
            for i, x in zip(exact, sub):
                new[i] = x
            return static.evaluate(jax.tree.unflatten(treedef, new), ini, adjoint=True)
        return f, [leaves[i] for i in exact]

    def forward(res, lin):
        params, init = res
        d_leaves = jax.tree.leaves(lin[0])
        t = jnp.zeros_like(out)
        for rule, jac in jacobians(params, init).items():
            theta = jnp.concatenate([d_leaves[i].ravel() for i in groups[rule]])
            t = t + theta.astype(jac.dtype) @ jac
        if exact or init is not None:
            f, sub = exact_part(params, init)
            d_init = lin[1] if init is not None else None
            t = t + jax.jvp(f, (sub, init), ([d_leaves[i] for i in exact], d_init))[1]
        return t

    def transpose(res, ct):
        params, init = res
        grads = [jnp.zeros_like(x) for x in jax.tree.leaves(params)]
        g_init = None if init is None else jnp.zeros_like(init)
        for rule, jac in jacobians(params, init).items():
            g = jac @ ct
            sizes = [grads[i].size for i in groups[rule]]
            for i, part in zip(groups[rule], jnp.split(g, np.cumsum(sizes)[:-1])):
                grads[i] = part.reshape(grads[i].shape).astype(grads[i].dtype)
        if exact or init is not None:
            f, sub = exact_part(params, init)
            _, vjp = jax.vjp(f, sub, init)
            g_sub, g_init = vjp(ct)
            for i, g in zip(exact, g_sub):
                grads[i] = g
        return jax.tree.unflatten(treedef, grads), g_init

    return out, _linear.custom_linear(forward, transpose, (params, init), tangents)


def _shift_jacobian(static, leaves, treedef, init, picked, rule):
    """``d values / d theta`` (rows: every entry of the leaves ``picked``, which share ``rule``),
    each row a combination of shifted evaluations (themselves differentiable by the rule)."""
    sizes = [leaves[i].size for i in picked]
    splits = np.cumsum(sizes)[:-1]
    theta = jnp.concatenate([leaves[i].ravel() for i in picked])

    def f(th):
        new = list(leaves)
        for i, part in zip(picked, jnp.split(th, splits)):
            new[i] = part.reshape(leaves[i].shape)
        return _values(static, jax.tree.unflatten(treedef, new), init)

    def one(j):
        return sum(c * f(theta.at[j].add(s)) for s, c in RULES[rule])

    batch = max(1, min(theta.shape[0], _MAX_BATCH_AMPLITUDES >> static.n_qubits))
    return jax.lax.map(one, jnp.arange(theta.shape[0]), batch_size=batch)
