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

from ._ops import GateOp, RepeatOp

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


def expand(program, params):
    """Replace each `RepeatOp` by one whose parameters are its per-layer gate parameters."""
    prog, prm = [], []
    for op, p in zip(program, params):
        if isinstance(op, RepeatOp):
            stacked, consts = p
            per_layer = jax.vmap(lambda w: op.params_fn(w, *consts))(stacked)
            op, p = RepeatOp(op.body, _identity_params, op.n_layers), (per_layer, ())
        prog.append(op)
        prm.append(p)
    return tuple(prog), tuple(prm)


def _rules(program):
    """The shift rule of each parameter leaf of an expanded program (None: no rule)."""
    out = []
    for op in program:
        ops = op.body if isinstance(op, RepeatOp) else (op,)
        per_op = tuple(tuple(o.gate.shift for _ in range(o.gate.n_params)) if isinstance(o, GateOp) else ()
                       for o in ops)
        out.append((per_op, ()) if isinstance(op, RepeatOp) else per_op[0])
    return tuple(out)


def _shift_grad(f, theta, rule, ct):
    """``ct . df/dtheta_j`` for every entry j of the flat vector ``theta`` (one rule for all)."""
    n_amp_batch = max(1, _MAX_BATCH_AMPLITUDES // max(1, f.state_size))
    idx = jnp.arange(theta.shape[0])

    def one(j):
        return sum(c * jnp.vdot(ct, f(theta.at[j].add(s))) for s, c in RULES[rule])

    return jax.lax.map(one, idx, batch_size=min(n_amp_batch, theta.shape[0]))


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


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _values(static, params, init):
    return static.evaluate(params, init)


def _fwd(static, params, init):
    return static.evaluate(params, init), (params, init)


def _bwd(static, res, ct):
    params, init = res
    leaves, treedef = jax.tree.flatten(params)
    rules = treedef.flatten_up_to(static.rules)
    if init is not None or any(r is None and leaf.size for r, leaf in zip(rules, leaves)):
        _, vjp = jax.vjp(lambda p, s: static.evaluate(p, s, adjoint=True), params, init)
        exact, g_init = vjp(ct)
        grads = jax.tree.leaves(exact)
    else:
        grads, g_init = [jnp.zeros_like(leaf) for leaf in leaves], None
    for rule in RULES:
        picked = [i for i, r in enumerate(rules) if r == rule]
        if picked:
            g = _shift_grad(static, leaves, treedef, init, picked, rule, ct)
            grads = [g.get(i, x) for i, x in enumerate(grads)]
    return jax.tree.unflatten(treedef, grads), g_init


def _shift_grad(static, leaves, treedef, init, picked, rule, ct):
    """``ct . df/dtheta`` for every entry of the leaves ``picked`` (which share ``rule``)."""
    sizes = [leaves[i].size for i in picked]
    splits = [sum(sizes[:j]) for j in range(1, len(sizes))]
    theta = jnp.concatenate([leaves[i].ravel() for i in picked])

    def f(th):
        new = list(leaves)
        for i, part in zip(picked, jnp.split(th, splits)):
            new[i] = part.reshape(leaves[i].shape)
        return static.evaluate(jax.tree.unflatten(treedef, new), init)

    def one(j):
        return sum(c * jnp.vdot(ct, f(theta.at[j].add(s))) for s, c in RULES[rule])

    batch = max(1, min(theta.shape[0], _MAX_BATCH_AMPLITUDES >> static.n_qubits))
    g = jax.lax.map(one, jnp.arange(theta.shape[0]), batch_size=batch).astype(theta.dtype)
    parts = jnp.split(g, splits)
    return {i: part.reshape(leaves[i].shape) for i, part in zip(picked, parts)}


_values.defvjp(_fwd, _bwd)
