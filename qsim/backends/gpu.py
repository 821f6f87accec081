"""GPU kernels: dense steps as slice-and-combine arithmetic (no dot), updated in place by chunks.

On a GPU, XLA lowers a ``2^k x 2^k`` contraction over axes of a state view (the XLA
backend's ``einsum``) to a cuBLAS GEMM with K = 2^k plus layout copies, in TF32 by
default on Hopper: 4-7x the HBM floor on an H100 (see PERF.md). Here a dense step on
target wires ``t_1..t_k`` (``t_1`` = most significant bit of ``u``'s index) is plain
arithmetic on the 2^k *partner slices* of a view ``(.., 2, .., 2, ..)`` of the state:

    y[.., i, ..] = sum_j u[i, j] * x[.., j, ..]        (i, j: the bits of the target wires)

written as 2^k broadcast multiply-adds: ``y = sum_j u[:, j] (on the target axes) *
x[.., j, ..] (size-1 target axes)``. XLA emits that as one elementwise loop fusion
in full float32 (float64) precision: no dot, no TF32, no transposes, and the output
comes out in the state's own layout. Two formulations, to be chosen by measurement
on a device (``python -m benchmarks.gpu_device``): ``"complex"`` (complex arithmetic)
and ``"real"`` (real and imaginary planes, joined by ``lax.complex`` at the end).

In place: the step runs chunk by chunk in a `lax.fori_loop` (``dynamic_slice``,
combine, ``dynamic_update_slice`` into the loop carry), so it needs the state plus
one chunk, not two states (XLA's ``memory_analysis()`` shows it on CPU): with a donated
state (`qsim.apply_inplace`) 33 qubits in complex64 (64 GiB) should fit on one H200
(not yet run on a device). The loop runs over the topmost wires that are
neither targets nor controls; a chunk holds at most ``2^chunk_qubits`` amplitudes,
every partner of each of them, and lies where every control is 1, so a controlled
gate reads and writes only the amplitudes it changes. Small states (at most
``2^chunk_qubits`` amplitudes besides the controls) take one direct pass.

Permutation and diagonal steps go through the same chunk loop with the XLA
backend's kernels inside each chunk (index moves; one elementwise multiply, which
XLA:GPU's rules for in-place dynamic-update-slice fusions allow as one pass).

Everything here is plain JAX: it runs (and is tested) on any platform, and works
under ``jit``, ``vmap`` and ``grad`` (the loop has a static trip count, so it is a
``scan`` and reverse-differentiable).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from . import xla

CHUNK_QUBITS = 21           # a chunk holds at most 2^21 amplitudes (16 MiB in complex64: in L2)
FORMULATIONS = ("complex", "real")
FORMULATION = "complex"


def _check_options(formulation, chunk_qubits, where):
    if formulation not in FORMULATIONS:
        raise ValueError(f"{where}: formulation must be one of {FORMULATIONS}, got {formulation!r}")
    if isinstance(chunk_qubits, bool) or not isinstance(chunk_qubits, (int, np.integer)) or chunk_qubits < 0:
        raise ValueError(f"{where}: chunk_qubits must be an int >= 0, got {chunk_qubits!r}")
    return formulation, int(chunk_qubits)


def plan(n: int, targets, controls=(), chunk_qubits: int = CHUNK_QUBITS):
    """The view of an ``n``-qubit state that one step works on, and its chunk loop.

    Wires are grouped in order: each target and control is an axis of size 2; runs of
    *loop* wires (the topmost free wires, enough of them that a chunk holds at most
    ``2^chunk_qubits`` amplitudes) and runs of the other free wires are merged axes.

    Returns:
      ``(shape, axis_of, loop_axes)``: the view's shape (product ``2**n``), the axis of each
      target and control wire, and ``(axis, bits)`` of each loop axis, most significant first.
    """
    touched = set(targets) | set(controls)
    free = [w for w in range(n) if w not in touched]
    n_loop = min(len(free), max(0, n - len(controls) - chunk_qubits))
    loop = set(free[:n_loop])
    shape, axis_of, loop_axes, prev = [], {}, [], None
    for w in range(n):
        role = "wire" if w in touched else ("loop" if w in loop else "rest")
        if role == "wire":
            axis_of[w] = len(shape)
            shape.append(2)
        elif role == prev:
            shape[-1] *= 2
            if role == "loop":
                loop_axes[-1] = (loop_axes[-1][0], loop_axes[-1][1] + 1)
        else:
            if role == "loop":
                loop_axes.append((len(shape), 1))
            shape.append(2)
        prev = role
    return tuple(shape), axis_of, tuple(loop_axes)


def _chunked(state, targets, controls, fn, chunk_qubits):
    """Apply ``fn(chunk, target_axes) -> chunk`` to every chunk where all controls are 1, in place."""
    n = xla.n_qubits_of(state)
    shape, axis_of, loop_axes = plan(n, targets, controls, chunk_qubits)
    lead = state.shape[:-1]
    t = state.reshape(lead + shape)
    nl = len(lead)
    target_axes = [nl + axis_of[w] for w in targets]
    if not controls and not loop_axes:
        return fn(t, target_axes).reshape(state.shape)
    sizes = list(t.shape)
    for a in [axis_of[w] for w in controls] + [a for a, _ in loop_axes]:
        sizes[nl + a] = 1
    n_loop = sum(bits for _, bits in loop_axes)

    def starts(i):
        out = [0] * t.ndim
        for w in controls:
            out[nl + axis_of[w]] = 1
        shift = n_loop
        for a, bits in loop_axes:
            shift -= bits
            out[nl + a] = (i >> shift) & ((1 << bits) - 1)
        return out

    def step(i, t):
        at = starts(i)
        chunk = jax.lax.dynamic_slice(t, at, sizes)
        return jax.lax.dynamic_update_slice(t, fn(chunk, target_axes), at)

    t = step(0, t) if n_loop == 0 else jax.lax.fori_loop(0, 1 << n_loop, step, t)
    return t.reshape(state.shape)


def _partner(t, axes, j):
    """``t`` with target axis ``axes[m]`` fixed at bit m of ``j`` (``axes[0]`` = MSB), kept as size 1."""
    k = len(axes)
    idx = [slice(None)] * t.ndim
    for m, a in enumerate(axes):
        bit = (j >> (k - 1 - m)) & 1
        idx[a] = slice(bit, bit + 1)
    return t[tuple(idx)]


def _column(u, j, ndim, axes):
    """Column ``u[:, j]`` as a rank-``ndim`` array: its row bits on the target axes, size 1 elsewhere."""
    k = len(axes)
    col = jnp.transpose(u[:, j].reshape((2,) * k), np.argsort(axes))
    shape = [1] * ndim
    for a in axes:
        shape[a] = 2
    return col.reshape(shape)


def combine(t, u, axes, formulation=FORMULATION):
    """``u`` (``(2^k, 2^k)``) applied on axes ``axes`` of ``t``: 2^k broadcast multiply-adds, no dot."""
    n_cols = u.shape[-1]
    if formulation == "complex":
        y = None
        for j in range(n_cols):
            term = _column(u, j, t.ndim, axes) * _partner(t, axes, j)
            y = term if y is None else y + term
        return y
    xr, xi, ur, ui = jnp.real(t), jnp.imag(t), jnp.real(u), jnp.imag(u)
    yr = yi = None
    for j in range(n_cols):
        cr, ci = _column(ur, j, t.ndim, axes), _column(ui, j, t.ndim, axes)
        pr, pi = _partner(xr, axes, j), _partner(xi, axes, j)
        tr, ti = cr * pr - ci * pi, cr * pi + ci * pr
        yr, yi = (tr, ti) if yr is None else (yr + tr, yi + ti)
    return jax.lax.complex(yr, yi)


class Kernels:
    """The GPU kernels with one configuration; compared by value (they are part of a static key).

    Args:
      formulation: ``"complex"`` or ``"real"`` arithmetic in `combine`.
      chunk_qubits: a chunk holds at most ``2**chunk_qubits`` amplitudes (0: one partner group).

    Raises:
      ValueError: an unknown formulation or a negative ``chunk_qubits``.
    """

    def __init__(self, formulation=FORMULATION, chunk_qubits=CHUNK_QUBITS):
        self.formulation, self.chunk_qubits = _check_options(formulation, chunk_qubits, "gpu.Kernels")

    def __eq__(self, other):
        return isinstance(other, Kernels) and other.key == self.key

    def __hash__(self):
        return hash(self.key)

    def __repr__(self):
        return f"Kernels(formulation={self.formulation!r}, chunk_qubits={self.chunk_qubits})"

    @property
    def key(self):
        return (self.formulation, self.chunk_qubits)

    def apply_dense(self, state, u, targets, controls=()):
        """``state`` with the dense ``(2^k, 2^k)`` matrix ``u`` on ``targets`` (first = MSB of ``u``),
        where every wire of ``controls`` is 1.

        Args:
          state: ``(..., 2**n)`` complex.
          u: ``(2**k, 2**k)``, ``k = len(targets)``; cast to the state's dtype.

        Returns:
          the new state, same shape and dtype.
        """
        u = u.astype(state.dtype)
        form = self.formulation
        return _chunked(state, tuple(targets), tuple(controls),
                        lambda c, ax: combine(c, u, ax, form), self.chunk_qubits)

    def apply_diagonal(self, state, d, targets):
        """``state`` times the diagonal ``d`` (length 2^k) on ``targets``, chunk by chunk (one
        elementwise multiply per chunk, XLA's kernel; a dynamic-update-slice of an elementwise
        function of the same slice is one in-place fusion on GPU)."""
        d = d.astype(state.dtype)
        return _chunked(state, tuple(targets), (), lambda c, ax: xla._diagonal_on_axes(c, d, ax),
                        self.chunk_qubits)

    def apply_permutation(self, state, perm, targets, controls=()):
        """``state`` with basis states of ``targets`` permuted, ``out[j] = in[perm[j]]``, chunk by chunk."""
        return _chunked(state, tuple(targets), tuple(controls),
                        lambda c, ax: xla._perm_on_axes(c, perm, ax), self.chunk_qubits)


DEFAULT = Kernels()


def backend(formulation=FORMULATION, chunk_qubits=CHUNK_QUBITS):
    """A `qsim.backends.Backend` running these kernels with this configuration.

    The default configuration is the ``"gpu"`` backend; others (for tests and the device
    benchmark) are named after their settings. Pass it as ``Circuit(n, backend=...)``.
    """
    from . import Backend

    kernels = Kernels(formulation, chunk_qubits)
    name = "gpu" if kernels == DEFAULT else f"gpu({kernels.formulation}, chunk_qubits={kernels.chunk_qubits})"
    return Backend(name, kernels=kernels)


def apply_dense(state, u, targets, controls=(), *, formulation=FORMULATION, chunk_qubits=CHUNK_QUBITS):
    """`Kernels.apply_dense` with the given configuration."""
    return Kernels(formulation, chunk_qubits).apply_dense(state, u, targets, controls)


def apply_diagonal(state, d, targets):
    """`Kernels.apply_diagonal`."""
    return DEFAULT.apply_diagonal(state, d, targets)


def apply_permutation(state, perm, targets, controls=(), *, chunk_qubits=CHUNK_QUBITS):
    """`Kernels.apply_permutation` with the given chunk size."""
    return Kernels(FORMULATION, chunk_qubits).apply_permutation(state, perm, targets, controls)
