"""The benchmark circuits, written once as plain op lists that every simulator translates.

An `Op` is a gate name from a small set (``h u3 rx ry rz cnot unitary``), its
wires in qsim's convention (wire 0 = most significant bit; for ``unitary`` the
first wire is the matrix's most significant bit) and concrete parameters (angles
in radians, or the matrix). Peers (`benchmarks.peers`) map wires to their own
order; qsim builds a `qsim.Circuit` with `to_circuit`. Everything random is
seeded, so a case names one circuit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GATE_NAMES = ("h", "u3", "rx", "ry", "rz", "cnot", "unitary")
QCBM_LAYERS = 9


@dataclass(frozen=True, eq=False)
class Op:
    """One gate: ``name`` in `GATE_NAMES`, ``wires`` (qsim order), ``params`` (angles or ``(matrix,)``)."""

    name: str
    wires: tuple[int, ...]
    params: tuple = ()


def rng_for(*key) -> np.random.Generator:
    """A generator seeded by a case key (strings and ints), the same in every process."""
    text = "/".join(str(k) for k in key)
    return np.random.default_rng([ord(ch) for ch in text] or [0])


def random_state(n: int, dtype, rng: np.random.Generator) -> np.ndarray:
    """A normalised random state, shape ``(2**n,)`` (a random start touches every page)."""
    real = np.finfo(np.dtype(dtype)).dtype
    v = np.empty(1 << n, dtype)
    v.real = rng.standard_normal(1 << n, dtype=real)
    v.imag = rng.standard_normal(1 << n, dtype=real)
    v /= np.linalg.norm(v)
    return v


def zero_state(n: int, dtype) -> np.ndarray:
    """``|0...0>``, shape ``(2**n,)``."""
    v = np.zeros(1 << n, dtype)
    v[0] = 1
    return v


def random_unitary(k: int, rng: np.random.Generator) -> np.ndarray:
    """A Haar-random ``(2**k, 2**k)`` unitary (QR of a complex Gaussian, phases fixed)."""
    d = 1 << k
    z = (rng.standard_normal((d, d)) + 1j * rng.standard_normal((d, d))) / np.sqrt(2)
    q, r = np.linalg.qr(z)
    return q * (np.diag(r) / np.abs(np.diag(r)))


def u3_matrix(theta: float, phi: float, lam: float) -> np.ndarray:
    """``u3(t, p, l) = [[cos(t/2), -e^{il} sin(t/2)], [e^{ip} sin(t/2), e^{i(p+l)} cos(t/2)]]``."""
    c, s = np.cos(theta / 2), np.sin(theta / 2)
    return np.array([[c, -np.exp(1j * lam) * s], [np.exp(1j * phi) * s, np.exp(1j * (phi + lam)) * c]])


def single_gate(kind: str, n: int, wire: int, rng: np.random.Generator) -> list[Op]:
    """One gate of ``kind`` (``h u3 rz cnot unitary2``) on ``wire`` (2-qubit gates: ``wire`` and a neighbour)."""
    pair = (wire, wire + 1) if wire < n - 1 else (wire, wire - 1)
    if kind == "h":
        return [Op("h", (wire,))]
    if kind == "u3":
        return [Op("u3", (wire,), tuple(rng.uniform(0, 2 * np.pi, 3)))]
    if kind == "rz":
        return [Op("rz", (wire,), (rng.uniform(0, 2 * np.pi),))]
    if kind == "cnot":
        return [Op("cnot", pair)]
    if kind == "unitary2":
        return [Op("unitary", pair, (random_unitary(2, rng),))]
    raise ValueError(f"single_gate: unknown gate kind {kind!r}; allowed h, u3, rz, cnot, unitary2")


def _angles(rng, count):
    return rng.uniform(0, 2 * np.pi, count)


def qcbm(n: int, rng: np.random.Generator, layers: int = QCBM_LAYERS) -> list[Op]:
    """QCBM: Rx Rz on every wire, then ``layers`` times a CNOT chain and Rz Rx Rz on every wire."""
    ops = []
    for w in range(n):
        a = _angles(rng, 2)
        ops += [Op("rx", (w,), (a[0],)), Op("rz", (w,), (a[1],))]
    for _ in range(layers):
        ops += [Op("cnot", (w, w + 1)) for w in range(n - 1)]
        for w in range(n):
            a = _angles(rng, 3)
            ops += [Op("rz", (w,), (a[0],)), Op("rx", (w,), (a[1],)), Op("rz", (w,), (a[2],))]
    return ops


def brickwork(n: int, depth: int, rng: np.random.Generator) -> list[Op]:
    """``depth`` layers of random 2-qubit unitaries on (0,1),(2,3),.. then (1,2),(3,4),.. alternately."""
    ops = []
    for layer in range(depth):
        for w in range(layer % 2, n - 1, 2):
            ops.append(Op("unitary", (w, w + 1), (random_unitary(2, rng),)))
    return ops


def to_circuit(ops, n: int, state=None, *, dtype=None, max_fused_qubits=None, backend="auto"):
    """A `qsim.Circuit` applying ``ops`` to ``state`` (default ``|0...0>``)."""
    import qsim

    c = qsim.Circuit(n, state=state, dtype=dtype, max_fused_qubits=max_fused_qubits, backend=backend)
    for op in ops:
        if op.name == "unitary":
            c.unitary(op.params[0], op.wires)
        else:
            getattr(c, op.name)(*op.wires, *op.params)
    return c


def hea_layer(c, w):
    """One hardware-efficient layer: RY(w[q, 0]) RZ(w[q, 1]) on every wire q, then a CNOT chain."""
    n = c.n_qubits
    for q in range(n):
        c.ry(q, w[q, 0]).rz(q, w[q, 1])
    for q in range(n - 1):
        c.cnot(q, q + 1)


def pennylane_hea(w, n: int, layers: int):
    """The same layers as PennyLane operations (inside a QNode; ``import pennylane`` is the caller's)."""
    import pennylane

    for layer in range(layers):
        for q in range(n):
            pennylane.RY(w[layer, q, 0], wires=q)
            pennylane.RZ(w[layer, q, 1], wires=q)
        for q in range(n - 1):
            pennylane.CNOT(wires=[q, q + 1])


def hea_weights(n: int, layers: int, seed: str = "hea") -> np.ndarray:
    """Random HEA weights, shape ``(layers, n, 2)`` float64."""
    return rng_for(seed, n, layers).uniform(0, 2 * np.pi, (layers, n, 2))


def n_gates_hea(n: int, layers: int) -> int:
    """Gates in ``layers`` HEA layers: 2n rotations and n-1 CNOTs each."""
    return layers * (3 * n - 1)


def bit_reverse(v: np.ndarray, n: int) -> np.ndarray:
    """Reverse the qubit order of a state (qsim/PennyLane order <-> Qiskit/Qulacs order)."""
    return np.ascontiguousarray(np.asarray(v).reshape((2,) * n).transpose(tuple(range(n))[::-1]).reshape(-1))
