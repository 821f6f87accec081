"""Independent numpy references for the tests: closed-form gates, dense operators, random inputs.

Nothing here imports qsim. Gate matrices are written from the SPEC's formulas
(OpenQASM 2 ``qelib1.inc`` as Qiskit defines them), not copied from qsim's table:
rotations are ``exp(-i t P / 2) = cos(t/2) I - i sin(t/2) P`` for a Pauli word
``P`` (``P^2 = I``), other exponentials use an eigendecomposition. Dense
operators on n <= 6 qubits are sums of ``np.kron`` products (wire 0 = most
significant bit of a basis index, as in the SPEC).
"""

from __future__ import annotations

import itertools

import numpy as np

# One tolerance table (STYLE 9): absolute, on amplitudes, probabilities and expectations.
TOL = {np.complex64: 1e-5, np.complex128: 1e-10}
REAL_OF = {np.complex64: np.float32, np.complex128: np.float64}
DTYPES = (np.complex64, np.complex128)

# --- Paulis and fixed gates -------------------------------------------------
I2 = np.eye(2, dtype=complex)
PX = np.array([[0, 1], [1, 0]], dtype=complex)
PY = np.array([[0, -1j], [1j, 0]], dtype=complex)
PZ = np.array([[1, 0], [0, -1]], dtype=complex)
PAULI = {"I": I2, "X": PX, "Y": PY, "Z": PZ}


def pauli_rotation(p, t):
    """``exp(-i t P / 2)`` for a Pauli word ``P`` (a matrix with ``P @ P = I``)."""
    return np.cos(t / 2) * np.eye(p.shape[0]) - 1j * np.sin(t / 2) * p


def expm_hermitian(h, t=1.0):
    """``exp(-i t h)`` for a Hermitian ``h``, by eigendecomposition."""
    w, v = np.linalg.eigh(h)
    return (v * np.exp(-1j * t * w)) @ v.conj().T


def controlled(u, n_controls=1):
    """``u`` acting where all ``n_controls`` leading (most significant) bits are 1."""
    dim = u.shape[0] << n_controls
    out = np.eye(dim, dtype=complex)
    out[dim - u.shape[0]:, dim - u.shape[0]:] = u
    return out


def rx(t):
    return pauli_rotation(PX, t)


def ry(t):
    return pauli_rotation(PY, t)


def rz(t):
    return pauli_rotation(PZ, t)


def phase(lam):
    return np.diag([1, np.exp(1j * lam)])


def u3(t, p, lam):
    return np.array([[np.cos(t / 2), -np.exp(1j * lam) * np.sin(t / 2)],
                     [np.exp(1j * p) * np.sin(t / 2), np.exp(1j * (p + lam)) * np.cos(t / 2)]])


def u2(p, lam):
    return u3(np.pi / 2, p, lam)


H = (PX + PZ) / np.sqrt(2)
S = phase(np.pi / 2)
T = phase(np.pi / 4)
SX = np.exp(1j * np.pi / 4) * rx(np.pi / 2)          # sqrt(X), qelib1 convention
SWAP = np.eye(4)[[0, 2, 1, 3]].astype(complex)
ISWAP = expm_hermitian(-(np.kron(PX, PX) + np.kron(PY, PY)) / 2, np.pi / 2)   # exp(i pi/4 (XX+YY))

# name -> (number of wires, number of parameters, params -> full matrix with controls first)
REFERENCE_GATES = {
    "i": (1, 0, lambda: I2),
    "x": (1, 0, lambda: PX),
    "y": (1, 0, lambda: PY),
    "z": (1, 0, lambda: PZ),
    "h": (1, 0, lambda: H),
    "s": (1, 0, lambda: S),
    "sdg": (1, 0, lambda: S.conj().T),
    "t": (1, 0, lambda: T),
    "tdg": (1, 0, lambda: T.conj().T),
    "sx": (1, 0, lambda: SX),
    "rx": (1, 1, rx),
    "ry": (1, 1, ry),
    "rz": (1, 1, rz),
    "phase": (1, 1, phase),
    "u1": (1, 1, phase),
    "u2": (1, 2, u2),
    "u3": (1, 3, u3),
    "cnot": (2, 0, lambda: controlled(PX)),
    "cx": (2, 0, lambda: controlled(PX)),
    "cy": (2, 0, lambda: controlled(PY)),
    "cz": (2, 0, lambda: controlled(PZ)),
    "swap": (2, 0, lambda: SWAP),
    "iswap": (2, 0, lambda: ISWAP),
    "crx": (2, 1, lambda t: controlled(rx(t))),
    "cry": (2, 1, lambda t: controlled(ry(t))),
    "crz": (2, 1, lambda t: controlled(rz(t))),
    "cphase": (2, 1, lambda t: controlled(phase(t))),
    "rxx": (2, 1, lambda t: pauli_rotation(np.kron(PX, PX), t)),
    "ryy": (2, 1, lambda t: pauli_rotation(np.kron(PY, PY), t)),
    "rzz": (2, 1, lambda t: pauli_rotation(np.kron(PZ, PZ), t)),
    "toffoli": (3, 0, lambda: controlled(PX, 2)),
    "ccx": (3, 0, lambda: controlled(PX, 2)),
    "cswap": (3, 0, lambda: controlled(SWAP)),
}


def gate(name, *params):
    """The closed-form matrix of a named gate (controls first)."""
    return np.asarray(REFERENCE_GATES[name][2](*params), dtype=complex)


# --- dense operators ---------------------------------------------------------
def _bits(x, k):
    return [(x >> (k - 1 - i)) & 1 for i in range(k)]


def operator(n, u, wires):
    """Dense ``(2^n, 2^n)`` operator of ``u`` acting on ``wires`` (``wires[0]`` = MSB of ``u``).

    Built as ``sum_{a,b} u[a, b] kron_q (|a_q><b_q| on wire wires[q], I elsewhere)``.
    """
    assert n <= 6 and len(set(wires)) == len(wires) and all(0 <= w < n for w in wires)
    u = np.asarray(u, dtype=complex)
    k = len(wires)
    out = np.zeros((1 << n, 1 << n), dtype=complex)
    for a, b in zip(*np.nonzero(u)):
        factors = [I2] * n
        for w, ba, bb in zip(wires, _bits(a, k), _bits(b, k)):
            e = np.zeros((2, 2), dtype=complex)
            e[ba, bb] = 1
            factors[w] = e
        term = np.ones((1, 1), dtype=complex)
        for f in factors:
            term = np.kron(term, f)
        out += u[a, b] * term
    return out


def pauli_word_dense(n, word):
    """Dense matrix of a Pauli word given as ``{wire: "X"|"Y"|"Z"}`` (or pairs)."""
    word = dict(word)
    out = np.ones((1, 1), dtype=complex)
    for w in range(n):
        out = np.kron(out, PAULI[word.get(w, "I")])
    return out


def pauli_sum_dense(n, words, coeffs):
    """Dense ``sum_i coeffs[i] * P_i``; each word is an iterable of ``(wire, pauli)`` pairs."""
    out = np.zeros((1 << n, 1 << n), dtype=complex)
    for w, c in zip(words, np.asarray(coeffs)):
        out += c * pauli_word_dense(n, w)
    return out


def permutation_matrix(perm):
    """``P`` with ``(P @ v)[j] = v[perm[j]]``."""
    return np.eye(len(perm), dtype=complex)[list(perm)]


# --- random inputs -----------------------------------------------------------
def random_state(rng, n, dtype=np.complex128):
    v = rng.normal(size=1 << n) + 1j * rng.normal(size=1 << n)
    return (v / np.linalg.norm(v)).astype(dtype)


def random_unitary(rng, k):
    """Haar-random ``(2^k, 2^k)`` unitary (QR of a complex Gaussian matrix, phases fixed)."""
    d = 1 << k
    z = (rng.normal(size=(d, d)) + 1j * rng.normal(size=(d, d))) / np.sqrt(2)
    q, r = np.linalg.qr(z)
    return q * (np.diag(r) / np.abs(np.diag(r)))


def random_placements(n, k):
    """Every ordered choice of ``k`` distinct wires out of ``n``."""
    return list(itertools.permutations(range(n), k))


def marginal_probs(psi, n, wires):
    """Marginal probabilities of ``wires`` (in that order, first = MSB) from a state vector."""
    p = (np.abs(psi) ** 2).reshape((2,) * n)
    others = tuple(w for w in range(n) if w not in wires)
    p = p.sum(axis=others)                 # remaining axes in sorted wire order
    kept = sorted(wires)
    return np.transpose(p, [kept.index(w) for w in wires]).reshape(-1)


def state_from_qiskit_order(v, n):
    """Convert a little-endian (Qiskit) state vector to wire 0 = MSB."""
    return np.asarray(v).reshape((2,) * n).transpose(tuple(range(n))[::-1]).reshape(-1)
