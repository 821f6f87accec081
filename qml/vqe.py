"""Variational quantum eigensolver: minimise ``E(theta) = <psi(theta)|H|psi(theta)>`` with optax.

Also the molecular hydrogen Hamiltonian (STO-3G, 4 spin orbitals, Jordan-Wigner)
at several bond lengths and the one-parameter ansatz that is exact for it.

H2 coefficients, ``h2_hamiltonian(R)``: generated with PennyLane's built-in
differentiable Hartree-Fock, ``pennylane.qchem.molecular_hamiltonian(
Molecule(["H", "H"], [[0, 0, 0], [0, 0, R]]), method="dhf", mapping="jordan_wigner")``
(Arrazola et al., "Differentiable quantum computational chemistry with
PennyLane", arXiv:2111.09967; PennyLane 0.45), nuclear repulsion included.
At R = 0.7 A they agree with the Hamiltonian printed in PennyLane's VQE
tutorial (c_I = -0.04207898, c_Z0 = 0.17771287, c_Z2 = -0.24274280,
c_XXYY = 0.04475014); at R = 0.735 A the ground energy is the FCI value
-1.13730604 Ha, as for the two-qubit parity-reduced form in Qiskit's VQE
tutorial (see tests/test_qml_algorithms.py, which rebuilds both).
Spin orbitals 0, 1 are the bonding orbital (up, down), 2, 3 the antibonding
one; the Hartree-Fock state is ``|1100>``.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import qsim

__all__ = ["H2_BOND_LENGTHS", "H2_FCI_0735", "VQEResult", "energy_fn", "h2_ansatz", "h2_hamiltonian", "minimize"]

# R [Angstrom]: c_I, c_Z0 = c_Z1, c_Z2 = c_Z3, c_Z0Z1, c_Z0Z2 = c_Z1Z3, c_Z0Z3 = c_Z1Z2, c_Z2Z3, g  [Hartree]
# with H = c_I + sum c_P P + g (Y0X1X2Y3 - Y0Y1X2X3 - X0X1Y2Y3 + X0Y1Y2X3).
_H2_TABLE = {
    0.3: (1.300723837588, 0.258691543407, -0.549957354666, 0.188004639181, 0.145270887560, 0.185475517269,
          0.196234372435, 0.040204629709),
    0.4: (0.740772483393, 0.235288243750, -0.453531176399, 0.184219838465, 0.140204502709, 0.181333358598,
          0.191360848081, 0.041128855889),
    0.5: (0.379831337289, 0.213935310750, -0.369144307458, 0.179926510057, 0.134592403192, 0.176809959982,
          0.186209841529, 0.042217556790),
    0.6: (0.132366156706, 0.194808677797, -0.299205103217, 0.175334432622, 0.128765613229, 0.172198274022,
          0.181126505183, 0.043432660793),
    0.7: (-0.042078985394, 0.177712875027, -0.242742800466, 0.170597383651, 0.122933050453, 0.167683194319,
          0.176276407224, 0.044750143866),
    0.735: (-0.090578994326, 0.172183932970, -0.225753487943, 0.168927539071, 0.120912632533, 0.166145432329,
            0.174643429903, 0.045232799795),
    0.8: (-0.167333996227, 0.162516487794, -0.197442933324, 0.165832537595, 0.117203647158, 0.163360342896,
          0.171697883213, 0.046156695737),
    0.9: (-0.259054128130, 0.149074788689, -0.160712488124, 0.161138164165, 0.111627234041, 0.159270157331,
          0.167371258869, 0.047642923290),
    1.0: (-0.327608194673, 0.137165729561, -0.130362918140, 0.156600625259, 0.106229044954, 0.155426690681,
          0.163267686205, 0.049197645727),
    1.2: (-0.419602371819, 0.116986714479, -0.083202860692, 0.148270608193, 0.096043673793, 0.148491540824,
          0.155674635904, 0.052447867031),
    1.4: (-0.473800318974, 0.100535574454, -0.049032363116, 0.141204681800, 0.086787498888, 0.142543021059,
          0.148911896679, 0.055755522171),
    1.6: (-0.505476550509, 0.087055533664, -0.024253212678, 0.135468875950, 0.078543098472, 0.137518419755,
          0.143015752947, 0.058975321283),
    1.8: (-0.523676598632, 0.076087981080, -0.006321809668, 0.130927261264, 0.071308321296, 0.133312569630,
          0.137962552082, 0.062004248333),
    2.0: (-0.533936350750, 0.067279304635, 0.006651296504, 0.127365703274, 0.065015695866, 0.129800314576,
          0.133666029763, 0.064784618710),
    2.5: (-0.543599093677, 0.052648580784, 0.025513881978, 0.121420024798, 0.052726264417, 0.123278775941,
          0.125514947001, 0.070552511524),
}
H2_BOND_LENGTHS = tuple(sorted(_H2_TABLE))   # Angstrom
H2_FCI_0735 = -1.13730604                    # Ha, exact ground energy at R = 0.735 A (STO-3G)


def h2_hamiltonian(bond_length=0.735):
    """The 4-qubit Jordan-Wigner Hamiltonian of H2 (STO-3G) at ``bond_length`` Angstrom (see module docstring).

    Returns: `qsim.PauliSum` on wires 0..3, in Hartree, nuclear repulsion included.
    Raises: ValueError for a bond length not in `H2_BOND_LENGTHS`.
    """
    key = min(_H2_TABLE, key=lambda r: abs(r - bond_length))
    if abs(key - bond_length) > 1e-9:
        raise ValueError(f"vqe.h2_hamiltonian: coefficients are tabulated for bond lengths {H2_BOND_LENGTHS} "
                         f"(Angstrom), got {bond_length!r}")
    cI, z0, z2, z01, z02, z03, z23, g = _H2_TABLE[key]
    terms = [("", cI), ("Z0", z0), ("Z1", z0), ("Z2", z2), ("Z3", z2), ("Z0Z1", z01), ("Z0Z2", z02),
             ("Z1Z3", z02), ("Z0Z3", z03), ("Z1Z2", z03), ("Z2Z3", z23),
             ("Y0X1X2Y3", g), ("Y0Y1X2X3", -g), ("X0X1Y2Y3", -g), ("X0Y1Y2X3", g)]
    words = tuple(tuple((int(w[k + 1]), w[k]) for k in range(0, len(w), 2)) for w, _ in terms)
    return qsim.PauliSum(words, np.array([c for _, c in terms]))


def h2_ansatz(c, theta):
    """``cos(theta/2)|1100> - sin(theta/2)|0011>`` (PennyLane's ``DoubleExcitation(theta)`` on ``|1100>``).

    Exact for H2 in a minimal basis: the ground state lies in span{|1100>, |0011>}.
    ``theta = 0`` is the Hartree-Fock state. Args: theta: scalar (or shape ``(1,)``).
    """
    theta = jnp.reshape(jnp.asarray(theta), ())
    c.ry(0, -theta)                    # cos|0> - sin|1> on wire 0
    c.cnot(0, 2).cnot(0, 3)            # ... - sin|1011>
    c.x(0).cnot(0, 1)                  # cos|1100> - sin|0011>
    return c


class VQEResult(NamedTuple):
    params: Any            # pytree like params0: the final parameters
    energy: jax.Array      # () final energy <H>
    history: np.ndarray    # (steps,) energy before each optimiser update


def energy_fn(ansatz, hamiltonian, n_qubits, *, diff="backprop", dtype=None) -> Callable:
    """``params -> <psi(params)|H|psi(params)>`` where ``ansatz(c, params)`` prepares ``|psi>`` from ``|0..0>``."""
    if not isinstance(hamiltonian, qsim.PauliSum):
        raise TypeError(f"vqe: hamiltonian must be a qsim.PauliSum, got {type(hamiltonian).__name__}")

    def energy(params):
        c = qsim.Circuit(n_qubits, dtype=dtype)
        out = ansatz(c, params)
        return (out if isinstance(out, qsim.Circuit) else c).expectation(hamiltonian, diff=diff)

    return energy


def minimize(ansatz, hamiltonian, params0, n_qubits, *, optimizer=None, steps=100, diff="backprop",
             dtype=None, callback=None):
    """Minimise ``<H>`` over the ansatz parameters with an optax optimiser (one jitted step, compiled once).

    Args:
      ansatz: ``ansatz(c, params)`` adds gates to a fresh ``n_qubits`` circuit.
      hamiltonian: `qsim.PauliSum`. params0: initial parameters (any pytree of arrays).
      optimizer: optax transformation (default ``optax.adam(0.1)``). steps: number of updates.
      diff: gradient method passed to `Circuit.expectation`. dtype: statevector dtype.
      callback: optional ``callback(step, params, energy)`` after each step (e.g. a progress bar).

    Returns: `VQEResult` (params, energy, history of shape ``(steps,)``).

    Example:
      >>> res = minimize(h2_ansatz, h2_hamiltonian(), jnp.zeros(()), 4, steps=100)
      >>> float(res.energy)   # about -1.1373 Ha
    """
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"vqe.minimize: steps must be a non-negative int, got {steps!r}")
    optimizer = optax.adam(0.1) if optimizer is None else optimizer
    energy = energy_fn(ansatz, hamiltonian, n_qubits, diff=diff, dtype=dtype)

    @jax.jit
    def step(params, state):
        e, g = jax.value_and_grad(energy)(params)
        updates, state = optimizer.update(g, state, params)
        return optax.apply_updates(params, updates), state, e

    params = jax.tree.map(jnp.asarray, params0)
    state = optimizer.init(params)
    history = []
    for i in range(steps):
        params, state, e = step(params, state)
        history.append(e)
        if callback is not None:
            callback(i, params, e)
    _, _, final = step(params, state)       # the energy at the final parameters, with no second compile
    return VQEResult(params, final, np.asarray(jnp.stack(history)) if history else np.zeros((0,)))
