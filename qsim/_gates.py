"""The gate table: every named gate, its structure and its matrix as a pure function.

A gate is resolved once into a `GateDef`: how many wires it acts on, how many
real parameters it takes, its structure (``"dense"``, ``"diagonal"`` or
``"permutation"``), the number of leading control wires (for dense and
permutation gates the kernel only touches the slice where every control is 1),
and a pure function ``params -> matrix``. Kernels dispatch on the structure and
arity, never on the name.

Matrices follow OpenQASM 2 ``qelib1.inc`` as Qiskit defines them (see SPEC):
``rx(t) = exp(-i t X/2)``, ``rz(t) = diag(e^{-it/2}, e^{it/2})``,
``phase(l) = diag(1, e^{il})``, ``rzz(t) = exp(-i t Z⊗Z/2)``; the first wire of
a multi-qubit matrix is its most significant bit.

``shift`` describes the parameter-shift rule of each parameter:
``"two"`` (generator with eigenvalue gap 1: rx, ry, rz, phase, rxx, u3's angles...),
``"four"`` (controlled rotations, gaps 1/2 and 1) or ``None`` (no rule).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax.numpy as jnp
import numpy as np


class GateDef(NamedTuple):
    """A resolved gate: static structure plus a pure matrix function."""

    name: str
    n_wires: int              # total wires, controls first
    n_params: int
    structure: str            # "dense" | "diagonal" | "permutation"
    n_controls: int           # leading wires that are controls (dense/permutation)
    matrix: Callable | None   # params (real scalars) -> (2^t, 2^t) or diag (2^k,)
    perm: tuple | None        # permutation gates: out[j] = in[perm[j]] on the targets
    shift: str | None         # parameter-shift rule shared by all params


# --- helpers (dtype comes from the parameters; constants are cast by the caller)
def _cis(t):
    return jnp.cos(t) + 1j * jnp.sin(t)


def _rx(t):
    c, s = jnp.cos(t / 2), jnp.sin(t / 2)
    return jnp.array([[c, -1j * s], [-1j * s, c]])


def _ry(t):
    c, s = jnp.cos(t / 2), jnp.sin(t / 2)
    return jnp.array([[c, -s], [s, c]]).astype(jnp.result_type(t, 1j))


def _rz_diag(t):
    return jnp.stack([_cis(-t / 2), _cis(t / 2)])


def _phase_diag(t):
    return jnp.stack([jnp.ones_like(t) + 0j, _cis(t)])


def _u3(t, p, l):
    c, s = jnp.cos(t / 2), jnp.sin(t / 2)
    return jnp.array([[c + 0j, -_cis(l) * s], [_cis(p) * s, _cis(p + l) * c]])


def _u2(p, l):
    return _u3(jnp.full_like(p, np.pi / 2), p, l)


def _rxx(t):
    c, s = jnp.cos(t / 2) + 0j, -1j * jnp.sin(t / 2)
    z = jnp.zeros_like(c)
    return jnp.array([[c, z, z, s], [z, c, s, z], [z, s, c, z], [s, z, z, c]])


def _ryy(t):
    c, s = jnp.cos(t / 2) + 0j, 1j * jnp.sin(t / 2)
    z = jnp.zeros_like(c)
    return jnp.array([[c, z, z, s], [z, c, -s, z], [z, -s, c, z], [s, z, z, c]])


def _rzz_diag(t):
    a, b = _cis(-t / 2), _cis(t / 2)
    return jnp.stack([a, b, b, a])


def _crz_diag(t):
    one = jnp.ones_like(t) + 0j
    return jnp.stack([one, one, _cis(-t / 2), _cis(t / 2)])


def _cphase_diag(t):
    one = jnp.ones_like(t) + 0j
    return jnp.stack([one, one, one, _cis(t)])


def _const(m):
    m = np.asarray(m, dtype=np.complex128)
    return lambda: m


_S2 = 1 / np.sqrt(2)
_SX = 0.5 * np.array([[1 + 1j, 1 - 1j], [1 - 1j, 1 + 1j]])
_ISWAP = np.array([[1, 0, 0, 0], [0, 0, 1j, 0], [0, 1j, 0, 0], [0, 0, 0, 1]])


def _g(name, n_wires, n_params, structure, matrix=None, *, controls=0, perm=None, shift=None):
    return GateDef(name, n_wires, n_params, structure, controls, matrix, perm, shift)


GATES: dict[str, GateDef] = {g.name: g for g in [
    _g("i", 1, 0, "diagonal", _const([1, 1])),
    _g("x", 1, 0, "permutation", perm=(1, 0)),
    _g("y", 1, 0, "dense", _const([[0, -1j], [1j, 0]])),
    _g("z", 1, 0, "diagonal", _const([1, -1])),
    _g("h", 1, 0, "dense", _const([[_S2, _S2], [_S2, -_S2]])),
    _g("s", 1, 0, "diagonal", _const([1, 1j])),
    _g("sdg", 1, 0, "diagonal", _const([1, -1j])),
    _g("t", 1, 0, "diagonal", _const([1, np.exp(1j * np.pi / 4)])),
    _g("tdg", 1, 0, "diagonal", _const([1, np.exp(-1j * np.pi / 4)])),
    _g("sx", 1, 0, "dense", _const(_SX)),
    _g("rx", 1, 1, "dense", _rx, shift="two"),
    _g("ry", 1, 1, "dense", _ry, shift="two"),
    _g("rz", 1, 1, "diagonal", _rz_diag, shift="two"),
    _g("phase", 1, 1, "diagonal", _phase_diag, shift="two"),
    _g("u3", 1, 3, "dense", _u3, shift="two"),
    _g("u2", 1, 2, "dense", _u2, shift="two"),
    _g("cnot", 2, 0, "permutation", controls=1, perm=(1, 0)),
    _g("cy", 2, 0, "dense", _const([[0, -1j], [1j, 0]]), controls=1),
    _g("cz", 2, 0, "diagonal", _const([1, 1, 1, -1])),
    _g("swap", 2, 0, "permutation", perm=(0, 2, 1, 3)),
    _g("iswap", 2, 0, "dense", _const(_ISWAP)),
    _g("crx", 2, 1, "dense", _rx, controls=1, shift="four"),
    _g("cry", 2, 1, "dense", _ry, controls=1, shift="four"),
    _g("crz", 2, 1, "diagonal", _crz_diag, shift="four"),
    _g("cphase", 2, 1, "diagonal", _cphase_diag, shift="two"),
    _g("rxx", 2, 1, "dense", _rxx, shift="two"),
    _g("ryy", 2, 1, "dense", _ryy, shift="two"),
    _g("rzz", 2, 1, "diagonal", _rzz_diag, shift="two"),
    _g("toffoli", 3, 0, "permutation", controls=2, perm=(1, 0)),
    _g("cswap", 3, 0, "permutation", controls=1, perm=(0, 2, 1, 3)),
]}
# Aliases: the same definition under a second name.
ALIASES = {"cx": "cnot", "ccx": "toffoli", "u1": "phase", "cu1": "cphase", "p": "phase"}


def user_matrix(u):
    """Matrix function of a user gate: its parameter is the matrix (or diagonal) itself."""
    return u


def gate_matrix(gate: GateDef, params, dtype) -> jnp.ndarray:
    """The target block of ``gate`` (matrix, or diagonal vector) in ``dtype``.

    For permutation gates this is the dense permutation matrix (used by fusion
    and by tests); controls are not included.
    """
    if gate.structure == "permutation":
        k = len(gate.perm)
        return jnp.asarray(np.eye(k)[list(gate.perm)], dtype)
    return jnp.asarray(gate.matrix(*params), dtype)


def full_matrix(gate: GateDef, params, dtype) -> jnp.ndarray:
    """The dense ``(2^w, 2^w)`` matrix of ``gate`` on all its wires, controls included."""
    block = gate_matrix(gate, params, dtype)
    if gate.structure == "diagonal":
        return jnp.diag(block)
    return controlled_block(block, gate.n_controls)


def controlled_block(block, n_controls: int):
    """``diag(I, ..., I, block)``: ``block`` acting where all ``n_controls`` leading bits are 1."""
    if n_controls == 0:
        return block
    t = block.shape[0]
    dim = t << n_controls
    full = jnp.eye(dim, dtype=block.dtype)
    return full.at[dim - t:, dim - t:].set(block)
