"""The ``qelib1.inc`` gates: how each is applied on a `Circuit`, and qsim's gates by their qelib1 names.

Every gate of Qiskit's ``qelib1.inc`` (and the builtins ``U`` and ``CX``) maps to
qsim's gate table (`qsim._gates.GATES`): most are a gate of the table under
another name (``cx`` is ``cnot``, ``p`` and ``u1`` are ``phase``); the rest are
a table matrix under controls (``ch`` is ``H`` controlled by one wire, ``c3x``
is ``X`` controlled by three), an adjoint (``sxdg``), or a short product of
table gates (``cu3`` and ``cu``). No matrix is written here: they all come
from `GATES`.

The other direction, used by ``to_qasm`` and ``draw``: `EXPORT_NAMES` gives the
qelib1 name of each table gate, and `DEFINITIONS` the OpenQASM definition of
the table gates that qelib1 lacks (``ryy``, ``iswap``; Qiskit's definitions).
"""

from __future__ import annotations

import math
import re
from typing import Callable, NamedTuple

import numpy as np

from .._circuit import Circuit
from .._gates import GATES


class Builtin(NamedTuple):
    """A gate known without a ``gate`` definition: ``apply(circuit, wires, params)``."""

    name: str
    n_params: int
    n_qubits: int
    apply: Callable


def table_matrix(name: str) -> np.ndarray:
    """The constant target block of the table gate ``name``, as a complex128 numpy matrix."""
    gate = GATES[name]
    if gate.structure == "permutation":
        return np.eye(len(gate.perm), dtype=np.complex128)[list(gate.perm)]
    m = np.asarray(gate.matrix(), dtype=np.complex128)
    return np.diag(m) if gate.structure == "diagonal" else m


def _native(name):
    """Apply the table gate ``name`` by its Circuit method (wires, then parameters)."""
    method = getattr(Circuit, name)
    return lambda c, wires, params: method(c, *wires, *params)


class _Controlled(NamedTuple):
    """Apply a constant ``matrix`` on the last wires, controlled by the first ``n_controls``."""

    matrix: np.ndarray
    n_controls: int

    def __call__(self, c, wires, params):
        return c.controlled(self.matrix, wires[:self.n_controls], wires[self.n_controls:])


def _unitary(matrix):
    return lambda c, wires, params: c.unitary(matrix, wires)


def _cu(c, wires, params):
    """Qiskit's CU (and CU3, gamma = 0): ``e^{i gamma} u3(theta, phi, lam)`` on the target where the control is 1.

    As table gates: ``u3 = e^{i(phi+lam)/2} rz(phi) ry(theta) rz(lam)``, so the controlled
    gate is crz(lam), cry(theta), crz(phi), then phase(gamma + (phi+lam)/2) on the control.
    """
    (ctl, tgt), (theta, phi, lam, *gamma) = wires, params
    c.crz(ctl, tgt, lam).cry(ctl, tgt, theta).crz(ctl, tgt, phi)
    return c.phase(ctl, (gamma[0] if gamma else 0.0) + (phi + lam) / 2)


def _u0(c, wires, params):
    """``u0(n)``: n idle cycles, the identity; n must be a whole number (as Qiskit requires)."""
    if params[0] != math.floor(params[0]):
        raise ValueError(f"u0 takes a whole number of idle cycles, got {params[0]:g}")
    return c.i(*wires)


_X, _SX, _H = table_matrix("x"), table_matrix("sx"), table_matrix("h")
# diag(Z, Y) on two wires: Z on the second where the first is 0, Y where it is 1. Qiskit's
# relative-phase Toffolis are rccx = diag(Z, Y) controlled by one wire, rc3x = i diag(Z, Y)
# controlled by two (RCCXGate, RC3XGate: the qelib1 bodies' exact products).
_ZY = np.block([[table_matrix("z"), np.zeros((2, 2))], [np.zeros((2, 2)), table_matrix("y")]])

# name, n_params, n_qubits, how: a table gate's name or apply(circuit, wires, params).
# Where two qelib1 names give the same table gate, the first is the one `to_qasm` writes.
_ROWS = [
    ("u3", 3, 1, "u3"), ("u2", 2, 1, "u2"), ("p", 1, 1, "phase"), ("u1", 1, 1, "phase"),
    ("u", 3, 1, "u3"), ("u0", 1, 1, _u0), ("cx", 0, 2, "cnot"), ("id", 0, 1, "i"),
    ("x", 0, 1, "x"), ("y", 0, 1, "y"), ("z", 0, 1, "z"), ("h", 0, 1, "h"), ("s", 0, 1, "s"),
    ("sdg", 0, 1, "sdg"), ("t", 0, 1, "t"), ("tdg", 0, 1, "tdg"), ("rx", 1, 1, "rx"), ("ry", 1, 1, "ry"),
    ("rz", 1, 1, "rz"), ("sx", 0, 1, "sx"), ("sxdg", 0, 1, _unitary(_SX.conj().T)),
    ("cz", 0, 2, "cz"), ("cy", 0, 2, "cy"), ("swap", 0, 2, "swap"), ("ch", 0, 2, _Controlled(_H, 1)),
    ("ccx", 0, 3, "toffoli"), ("cswap", 0, 3, "cswap"), ("crx", 1, 2, "crx"), ("cry", 1, 2, "cry"),
    ("crz", 1, 2, "crz"), ("cp", 1, 2, "cphase"), ("cu1", 1, 2, "cphase"), ("cu3", 3, 2, _cu),
    ("csx", 0, 2, _Controlled(_SX, 1)), ("cu", 4, 2, _cu), ("rxx", 1, 2, "rxx"), ("rzz", 1, 2, "rzz"),
    ("rccx", 0, 3, _Controlled(_ZY, 1)), ("rc3x", 0, 4, _Controlled(1j * _ZY, 2)),
    ("c3x", 0, 4, _Controlled(_X, 3)), ("c3sqrtx", 0, 4, _Controlled(_SX, 3)), ("c4x", 0, 5, _Controlled(_X, 4)),
]
QELIB1 = {name: Builtin(name, n_params, n_qubits, _native(how) if isinstance(how, str) else how)
          for name, n_params, n_qubits, how in _ROWS}
# The two gates OpenQASM 2 defines without any include.
BUILTINS = {"U": Builtin("U", 3, 1, _native("u3")), "CX": Builtin("CX", 0, 2, _native("cnot"))}
TABLE = {**QELIB1, **BUILTINS}

# -- qsim's gates as OpenQASM ---------------------------------------------------------
# A constant matrix under controls, by name: the composite rows and the table's controlled permutations.
CONTROLLED = {name: (how.matrix, how.n_controls) for name, _, _, how in _ROWS if isinstance(how, _Controlled)}
CONTROLLED.update({"cx": (_X, 1), "ccx": (_X, 2), "cy": (table_matrix("y"), 1),
                   "cswap": (table_matrix("swap"), 1)})

EXPORT_NAMES = {}
for _name, _, _, _how in _ROWS:
    if isinstance(_how, str):
        EXPORT_NAMES.setdefault(_how, _name)
# Table gates that qelib1.inc lacks: Qiskit's definitions (RYYGate, iSwapGate) from qelib1 gates.
DEFINITIONS = {
    "ryy": "gate ryy(theta) a, b { rx(pi/2) a; rx(pi/2) b; cx a, b; rz(theta) b; cx a, b; "
           "rx(-pi/2) a; rx(-pi/2) b; }",
    "iswap": "gate iswap a, b { s a; s b; h a; cx a, b; cx b, a; h b; }",
}
EXPORT_NAMES.update({name: name for name in DEFINITIONS})
# Every gate with a native qsim form, by its qelib1 (or Qiskit) name: for importers of other libraries.
NAMED = {**TABLE, **{name: Builtin(name, GATES[name].n_params, GATES[name].n_wires, _native(name))
                     for name in DEFINITIONS}}

_CONTROLS = re.compile(r"(c+|c\d)(?=[a-z])")


def label(qasm_name: str) -> tuple[int, str]:
    """``(number of controls, label of the target)`` of an exported gate, for drawings.

    ``"cx"`` -> ``(1, "X")``, ``"ccx"`` -> ``(2, "X")``, ``"sdg"`` -> ``(0, "S†")``,
    ``"id"`` -> ``(0, "I")``, ``"rzz"`` -> ``(0, "RZZ")``.
    """
    m = _CONTROLS.match(qasm_name)
    n_controls = 0 if m is None else (int(m.group()[1:]) if m.group()[1:].isdigit() else len(m.group()))
    base = qasm_name[m.end():] if m else qasm_name
    if base == "id":
        return n_controls, "I"
    return n_controls, base[:-2].upper() + "†" if base.endswith("dg") else base.upper()
