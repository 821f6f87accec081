"""Finite-shot estimates of Pauli observables, and their unbiased parameter-shift gradients.

The Pauli words are split into qubit-wise commuting groups (greedy, in order: a word
joins the first group whose basis agrees with it on every shared wire). Each group is
measured with its own ``shots`` samples: the state is rotated into the group's basis
(``H`` for X, ``S^dagger`` then ``H`` for Y), the group's wires are sampled, and each
word's estimate is the mean of its parity ``prod (1 - 2 b_w)``. Groups are sampled
independently (group ``g`` draws from ``fold_in(key, g)``), so the variance of the
estimate of ``H = sum_w c_w P_w`` is ``sum_g Var_g(sum_{w in g} c_w P_w) / shots``.

A wire that holds a measured bit without a copy (deferred measurement, `_deferred`) is
dephased: its X or Y outcome is a fair coin independent of everything else, drawn as such.

`values` evaluates an estimator as a `jax.custom_jvp`: with ``diff="parameter-shift"`` its
derivative applies the shift rules (`_shift.RULES`) to shifted circuits that are each
sampled with their own key (``fold_in`` of ``key``), so the gradient estimate is unbiased
and differentiable again (shifts of shifts); with another ``diff`` differentiating raises.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import _shift
from ._ir import CondOp, GateOp, MeasureOp, RepeatOp, ResetOp
from ._simulate import sample_bits

_SALT = 0x5157  # keys of shifted evaluations: fold_in(key, _SALT + rule), then parameter, then term
_H = np.array([[1, 1], [1, -1]]) / np.sqrt(2)
_TO_BASIS = {"X": _H, "Y": _H @ np.diag([1, -1j])}


class Group(NamedTuple):
    """Qubit-wise commuting words measured together."""

    basis: tuple      # ((wire, "X" | "Y" | "Z"), ...), sorted by wire
    members: tuple    # indices of the words in this group


def qwc_groups(words) -> tuple[Group, ...]:
    """Greedy qubit-wise commuting groups of the non-identity ``words`` (deterministic)."""
    bases, members = [], []
    for i, word in enumerate(words):
        if not word:
            continue
        for basis, idx in zip(bases, members):
            if all(basis.get(w, p) == p for w, p in word):
                basis.update(word)
                idx.append(i)
                break
        else:
            bases.append(dict(word))
            members.append([i])
    return tuple(Group(tuple(sorted(b.items())), tuple(m)) for b, m in zip(bases, members))


def _marginal(p, n, wires):
    """The marginal of ``p`` (``(2**n,)``) on ``wires`` (distinct), in that order.

    The other wires are summed out one at a time (the two halves added): a pairwise sum, whose
    float32 error stays near ``log2(2**n) * eps`` where one reduction over millions of terms
    loses about 1e-3 (at n=22).
    """
    t = p.reshape((2,) * n)
    for axis in sorted((w for w in range(n) if w not in wires), reverse=True):
        t = jax.lax.index_in_dim(t, 0, axis, keepdims=False) + jax.lax.index_in_dim(t, 1, axis, keepdims=False)
    order = np.argsort(np.argsort(wires))
    return jnp.transpose(t, tuple(int(i) for i in order)).reshape(-1)


def sample_wires(state, wires, shots, key):
    """``shots`` Born samples of ``wires`` (distinct) of a flat state: int32 ``(shots, len(wires))``."""
    n = state.shape[-1].bit_length() - 1
    p = _marginal(state.real ** 2 + state.imag ** 2, n, tuple(wires))
    return sample_bits(key, p, shots, len(wires))


def sample_group(state, group, shots, key, backend, wire_of=None, dephased=frozenset()):
    """``shots`` outcomes of ``group``'s basis measurement: int32 ``(shots, len(group.basis))``.

    ``wire_of``: the state's wire of each logical wire (None: the same); X/Y on a logical
    wire in ``dephased`` is a fair coin.
    """
    wire_of = wire_of or {}
    wires = tuple(wire_of.get(w, w) for w, _ in group.basis)
    for (w, p), q in zip(group.basis, wires):
        if p != "Z" and w not in dephased:
            state = backend.apply_dense(state, jnp.asarray(_TO_BASIS[p], state.dtype), (q,))
    sample_key, coin_key = jax.random.split(key)
    bits = sample_wires(state, wires, shots, sample_key)
    coins = [j for j, (w, p) in enumerate(group.basis) if p != "Z" and w in dephased]
    if coins:
        flips = jax.random.bernoulli(coin_key, 0.5, (shots, len(coins))).astype(jnp.int32)
        bits = bits.at[:, jnp.asarray(coins)].set(flips)
    return bits


def parities(bits, group, words, dtype):
    """Per member word of ``group``, the mean of its parity over the shots: ``(len(members),)``."""
    pos = {w: j for j, (w, _) in enumerate(group.basis)}
    out = []
    for i in group.members:
        cols = jnp.asarray([pos[w] for w, _ in words[i]])
        odd = jnp.sum(bits[:, cols], axis=1) & 1
        out.append(jnp.mean(1 - 2 * odd.astype(dtype)))
    return jnp.stack(out)


def assemble(words, groups, per_group, dtype):
    """Word estimates ``(len(words),)`` from each group's member estimates (identity words: 1)."""
    out = jnp.ones((len(words),), dtype)
    for g, vals in zip(groups, per_group):
        out = out.at[jnp.asarray(g.members)].set(vals)
    return out


def estimate_words(state, words, shots, key, backend, wire_of=None, dephased=frozenset()):
    """Estimates of each word's ``<P>`` from ``shots`` samples per qubit-wise commuting group."""
    groups = qwc_groups(words)
    dtype = state.real.dtype
    per_group = [parities(sample_group(state, g, shots, jax.random.fold_in(key, i), backend, wire_of, dephased),
                          g, words, dtype) for i, g in enumerate(groups)]
    return assemble(words, groups, per_group, dtype)


# ------------------------------------------------------------------ differentiation ------
def _rules(program, params):
    """The shift rule of each parameter leaf (None: none), shaped like ``params``."""
    out = []
    for op, p in zip(program, params):
        if isinstance(op, GateOp):
            out.append(tuple(op.gate.shift for _ in p))
        elif isinstance(op, RepeatOp):
            out.append((tuple(tuple(b.gate.shift for _ in range(b.gate.n_params)) for b in op.body), ()))
        elif isinstance(op, CondOp):
            out.append(tuple(tuple(b.gate.shift for _ in bp) for b, bp in zip(op.body, p)))
        elif isinstance(op, (MeasureOp, ResetOp)):
            out.append(())
        else:
            out.append(jax.tree.map(lambda _: None, p))
    return tuple(out)


class _Static:
    """The static half of a shot estimate (hashable: a custom_jvp nondiff argument)."""

    def __init__(self, estimator, program, rules, diff, impl):
        self.estimator, self.program, self.rules, self.diff, self.impl = estimator, program, rules, diff, impl

    def key(self):
        return (self.estimator, self.program, self.rules, self.diff, str(self.impl))

    def __hash__(self):
        return hash(self.key())

    def __eq__(self, other):
        return isinstance(other, _Static) and self.key() == other.key()

    def evaluate(self, params, init, key_data):
        return self.estimator(self.program, params, init, jax.random.wrap_key_data(key_data, impl=self.impl))


def values(estimator, program, params, init, key, diff):
    """``estimator(program, params, init, key)`` (word estimates), differentiable by the shot
    parameter-shift rule when ``diff == "parameter-shift"`` (other ``diff``: differentiating raises)."""
    if diff == "parameter-shift":
        program, params = _shift.expand(program, params)
    static = _Static(estimator, program, _rules(program, params), diff, jax.random.key_impl(key))
    return _values(static, params, init, jax.random.key_data(key))


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def _values(static, params, init, key_data):
    return static.evaluate(params, init, key_data)


def _perturbed(t):
    return not isinstance(t, jax.custom_derivatives.SymbolicZero)


@functools.partial(_values.defjvp, symbolic_zeros=True)
def _values_jvp(static, primals, tangents):
    params, init, key_data = primals
    d_params, d_init, _ = tangents
    out = _values(static, params, init, key_data)
    leaves, treedef = jax.tree.flatten(params)
    d_leaves = treedef.flatten_up_to(d_params)
    live = [i for i, t in enumerate(d_leaves) if _perturbed(t)]
    if not live and not (init is not None and _perturbed(d_init)):
        return out, jnp.zeros_like(out)
    if static.diff != "parameter-shift":
        raise ValueError(f"Circuit.expectation: a shots= estimate is differentiated only with "
                         f"diff='parameter-shift' (each shifted circuit sampled with its own key), got "
                         f"diff={static.diff!r}; pass diff='parameter-shift', or drop shots= for exact gradients")
    rules = treedef.flatten_up_to(static.rules)
    bad = [i for i in live if rules[i] is None]
    if bad or (init is not None and _perturbed(d_init)):
        what = "the initial state" if not bad else "a parameter with no shift rule (a user matrix)"
        raise ValueError(f"Circuit.expectation: diff='parameter-shift' with shots= cannot differentiate "
                         f"{what}; differentiate gate angles only, or drop shots= for exact gradients")
    t = jnp.zeros_like(out)
    for r, rule in enumerate(_shift.RULES):
        picked = [i for i in live if rules[i] == rule]
        if picked:
            jac = _jacobian(static, leaves, treedef, init, key_data, picked, rule, r)
            theta_dot = jnp.concatenate([jnp.ravel(d_leaves[i]) for i in picked])
            t = t + theta_dot.astype(jac.dtype) @ jac
    return out, t


def _jacobian(static, leaves, treedef, init, key_data, picked, rule, r):
    """Rows: every entry of the leaves ``picked``; each row a shift-rule combination of shifted
    estimates, each drawn with its own key."""
    sizes = [np.size(leaves[i]) for i in picked]
    splits = np.cumsum(sizes)[:-1]
    theta = jnp.concatenate([jnp.ravel(leaves[i]) for i in picked])
    key = jax.random.fold_in(jax.random.wrap_key_data(key_data, impl=static.impl), _SALT + r)

    def f(th, k):
        new = list(leaves)
        for i, part in zip(picked, jnp.split(th, splits)):
            new[i] = part.reshape(jnp.shape(leaves[i])).astype(jnp.result_type(leaves[i]))
        return _values(static, jax.tree.unflatten(treedef, new), init, jax.random.key_data(k))

    shifts = jnp.asarray([s for s, _ in _shift.RULES[rule]], theta.dtype)
    coefs = jnp.asarray([c for _, c in _shift.RULES[rule]], theta.dtype)

    def one(j):             # the rule's shifted circuits as one batch (traced once)
        kj = jax.random.fold_in(key, j)
        vals = jax.vmap(lambda s, t: f(theta.at[j].add(s), jax.random.fold_in(kj, t)))(
            shifts, jnp.arange(shifts.shape[0]))
        return coefs.astype(vals.dtype) @ vals

    return jax.lax.map(one, jnp.arange(theta.shape[0]))
