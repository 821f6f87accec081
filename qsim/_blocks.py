"""Matrix helpers shared by fusion, the host lowering and the reference executor (numpy or jnp).

Blocks follow the SPEC's wire order: the first wire of a block is the most
significant bit of its index.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np


def embed(block, block_wires, wires, diagonal=False, xp=jnp):
    """Embed a block acting on ``block_wires`` into the sorted wire set ``wires``.

    ``block`` is ``(2^a, 2^a)`` (or its diagonal ``(2^a,)``); returns ``(2^k, 2^k)`` (or ``(2^k,)``).
    """
    a, k = len(block_wires), len(wires)
    if tuple(block_wires) == tuple(wires):
        return block
    rest = [w for w in wires if w not in block_wires]
    order = list(block_wires) + rest                     # axis order after the kron
    perm = [order.index(w) for w in wires]               # to sorted wire order
    if diagonal:
        t = xp.kron(block, xp.ones((1 << (k - a),), block.dtype)).reshape((2,) * k)
        return xp.transpose(t, perm).reshape(-1)
    full = xp.kron(block, xp.eye(1 << (k - a), dtype=block.dtype)).reshape((2,) * (2 * k))
    return xp.transpose(full, perm + [k + p for p in perm]).reshape(1 << k, 1 << k)


def controlled(block, n_controls: int, xp=jnp):
    """``diag(I, ..., I, block)``: ``block`` acting where all ``n_controls`` leading bits are 1."""
    if n_controls == 0:
        return block
    t = block.shape[0]
    dim = t << n_controls
    if xp is np:
        full = np.eye(dim, dtype=block.dtype)
        full[dim - t:, dim - t:] = block
        return full
    return jnp.eye(dim, dtype=block.dtype).at[dim - t:, dim - t:].set(block)


def perm_matrix(perm, dtype, xp=jnp):
    """The matrix ``P`` with ``(P x)[j] = x[perm[j]]``."""
    return xp.asarray(np.eye(len(perm))[list(perm)], dtype)


def inverse_perm(perm) -> tuple[int, ...]:
    """The permutation undoing ``perm`` (also its transpose)."""
    return tuple(int(i) for i in np.argsort(perm))


def fused(members, wires, diagonal, xp=jnp, dtype=None):
    """The block of a fused step on sorted ``wires``: ``members`` are ``(member_wires, full)``
    pairs applied first to last, ``full`` each member's matrix on all its wires (or its
    diagonal when ``diagonal``)."""
    dim = 1 << len(wires)
    dtype = dtype or members[0][1].dtype
    if diagonal:
        d = xp.ones((dim,), dtype)
        for ws, m in members:
            d = d * embed(m, ws, wires, diagonal=True, xp=xp)
        return d
    u = xp.eye(dim, dtype=dtype)
    for ws, m in members:
        e = embed(m, ws, wires, xp=xp)
        u = e @ u if xp is np else jnp.matmul(e, u, precision="highest")
    return u
