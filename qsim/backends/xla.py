"""Pure-JAX statevector kernels on flat states.

Every kernel takes a flat state of shape ``(2**n,)`` (wire 0 = most significant
bit) and returns the new flat state. No ``2^n x 2^n`` matrix is ever formed: the
state is viewed as a tensor whose axes are the touched wires and the merged runs
of untouched wires between them, ``(2^a, 2, 2^b, 2, 2^c)``, and the gate acts on
the wire axes only. They are jit-, vmap- and grad-compatible; ``jax.vmap`` adds a
batch axis in front and XLA runs the batch as one kernel.

Structures:
- dense: ``einsum`` of the ``(2,)*2k`` gate tensor with the wire axes;
- diagonal: one broadcast elementwise multiply (runs of them fuse in XLA);
- permutation: index moves only (``flip`` for bit flips, ``transpose`` for
  bit permutations such as swap, a gather otherwise);
- controls: the kernel is applied to the half (quarter, ...) where every control
  is 1, and the untouched part is joined back unchanged.
"""

from __future__ import annotations

import string

import jax
import jax.numpy as jnp
import numpy as np

_HIGHEST = jax.lax.Precision.HIGHEST


def n_qubits_of(state) -> int:
    return int(state.shape[-1]).bit_length() - 1


def split_shape(n: int, wires) -> tuple[tuple[int, ...], dict[int, int]]:
    """Shape that exposes each wire as its own axis, and the axis of each wire."""
    shape, axis_of, prev = [], {}, 0
    for w in sorted(wires):
        shape.append(1 << (w - prev))
        axis_of[w] = len(shape)
        shape.append(2)
        prev = w + 1
    shape.append(1 << (n - prev))
    return tuple(shape), axis_of


def _dense_on_axes(t, u, axes):
    """Contract the gate tensor ``u`` (2^k x 2^k) with axes ``axes`` of ``t``."""
    k = len(axes)
    letters = string.ascii_letters
    t_sub = [letters[i] for i in range(t.ndim)]
    outs = [letters[t.ndim + i] for i in range(k)]
    ins = [t_sub[a] for a in axes]
    res = list(t_sub)
    for a, o in zip(axes, outs):
        res[a] = o
    spec = f"{''.join(outs + ins)},{''.join(t_sub)}->{''.join(res)}"
    return jnp.einsum(spec, u.reshape((2,) * (2 * k)), t, precision=_HIGHEST)


def _diagonal_on_axes(t, d, axes):
    k = len(axes)
    order = np.argsort(axes)
    d = jnp.transpose(d.reshape((2,) * k), order)
    shape = [1] * t.ndim
    for a in axes:
        shape[a] = 2
    return t * d.reshape(shape)


def _perm_kind(perm):
    """Classify a static permutation of 2^k basis states: ("flip", mask), ("bits", sigma) or ("gather", None)."""
    perm = tuple(perm)
    k = len(perm).bit_length() - 1
    m = perm[0]
    if all(perm[j] == j ^ m for j in range(len(perm))):
        return "flip", m
    # bit permutation: bit i of the output comes from bit sigma[i] of the input
    sigma = []
    for i in range(k):
        src = [b for b in range(k) if perm[1 << (k - 1 - i)] == 1 << (k - 1 - b)]
        if len(src) != 1:
            return "gather", None
        sigma.append(src[0])
    if all(perm[j] == sum(((j >> (k - 1 - i)) & 1) << (k - 1 - s) for i, s in enumerate(sigma))
           for j in range(len(perm))):
        return "bits", tuple(sigma)
    return "gather", None


def _perm_on_axes(t, perm, axes):
    k = len(axes)
    kind, data = _perm_kind(perm)
    if kind == "flip":
        flip = [axes[i] for i in range(k) if (data >> (k - 1 - i)) & 1]
        return jnp.flip(t, axis=flip) if flip else t
    if kind == "bits":
        order = list(range(t.ndim))
        for i, s in enumerate(data):
            order[axes[i]] = axes[s]
        return jnp.transpose(t, order)
    moved = jnp.moveaxis(t, axes, range(k))
    flat = moved.reshape((1 << k,) + moved.shape[k:])
    out = jnp.take(flat, jnp.asarray(perm), axis=0).reshape(moved.shape)
    return jnp.moveaxis(out, range(k), axes)


def _apply(state, controls, targets, fn):
    """Apply ``fn(tensor, target_axes)`` on the slice where all controls are 1."""
    n = n_qubits_of(state)
    shape, axis_of = split_shape(n, tuple(controls) + tuple(targets))
    t = state.reshape(state.shape[:-1] + shape)
    lead = t.ndim - len(shape)  # batch axes in front (vmap of jnp ops adds none; kept for safety)
    if not controls:
        out = fn(t, [lead + axis_of[w] for w in targets])
        return out.reshape(state.shape)
    target_axes = [lead + axis_of[w] for w in targets]

    def on_ones(t, ctrl_axes):
        """``fn`` on the part of ``t`` where every control axis is 1: split each control axis
        in halves (kept as size-1 axes, so target axes keep their numbers) and join them
        again. No scatter: with `.at[idx].set` the compiled JVP of a native program inside a
        `lax.scan` body returned wrong amplitudes (the eager run was right)."""
        if not ctrl_axes:
            return fn(t, target_axes)
        a = ctrl_axes[0]
        zero, one = jnp.split(t, 2, axis=a)
        return jnp.concatenate([zero, on_ones(one, ctrl_axes[1:])], axis=a)

    return on_ones(t, [lead + axis_of[c] for c in controls]).reshape(state.shape)


def apply_dense(state, u, targets, controls=()):
    """``state`` with the dense ``(2^k, 2^k)`` matrix ``u`` applied on ``targets`` (first = MSB of u)."""
    return _apply(state, controls, targets, lambda t, ax: _dense_on_axes(t, u.astype(state.dtype), ax))


def apply_diagonal(state, d, targets):
    """``state`` multiplied by the diagonal ``d`` (length 2^k) on ``targets``."""
    return _apply(state, (), targets, lambda t, ax: _diagonal_on_axes(t, d.astype(state.dtype), ax))


def apply_permutation(state, perm, targets, controls=()):
    """``state`` with basis states of ``targets`` permuted, ``out[j] = in[perm[j]]`` (static ``perm``)."""
    return _apply(state, controls, targets, lambda t, ax: _perm_on_axes(t, perm, ax))

