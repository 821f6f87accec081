"""VQE for molecular hydrogen (STO-3G, 4 qubits, Jordan-Wigner): ground energy and dissociation curve.

The Hamiltonian coefficients are tabulated in `qml.vqe` (source cited there).
The ansatz `qml.vqe.h2_ansatz` is ``cos(t/2)|1100> - sin(t/2)|0011>``, exact for
H2 in a minimal basis. At R = 0.735 A the optimisation runs with
`qml.vqe.minimize` (adam); the curve optimises all bond lengths at once: the
Hamiltonians share their Pauli words, so the energy is vmapped over their
coefficients and compiled once. The reference is the exact ground energy by
dense diagonalisation of the 16 x 16 Hamiltonian (FCI in this basis).

    python -m qml.examples.vqe_h2 [--fast] [--out DIR]
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import qsim

from qml import vqe

from . import _common

_PAULI = {"X": np.array([[0, 1], [1, 0]]), "Y": np.array([[0, -1j], [1j, 0]]), "Z": np.diag([1, -1])}


def exact_ground_energy(h, n_qubits):
    """Lowest eigenvalue of the dense ``2**n x 2**n`` matrix of ``h`` (a reference for small n only)."""
    mat = np.zeros((1 << n_qubits,) * 2, complex)
    for word, coeff in zip(h.words, np.asarray(h.coeffs)):
        ops = dict(word)
        term = np.ones((1, 1))
        for w in range(n_qubits):
            term = np.kron(term, _PAULI[ops[w]] if w in ops else np.eye(2))
        mat += coeff * term
    return float(np.linalg.eigvalsh(mat)[0])


def curve(bond_lengths, n_steps):
    """VQE energies at every bond length, optimised together (one compiled, vmapped adam loop)."""
    hams = [vqe.h2_hamiltonian(r) for r in bond_lengths]
    stacked = jax.tree.map(lambda *c: jnp.stack(c), *hams)
    tx = optax.adam(0.1)

    def energy(theta, h):
        return vqe.h2_ansatz(qsim.Circuit(4), theta).expectation(h)

    def run(h):
        def step(carry, _):
            theta, state = carry
            e, g = jax.value_and_grad(energy)(theta, h)
            updates, state = tx.update(g, state)
            return (theta + updates, state), e
        theta0 = jnp.zeros((), jnp.float32)
        (theta, _), _ = jax.lax.scan(step, (theta0, tx.init(theta0)), None, length=n_steps)
        return energy(theta, h)

    return np.asarray(jax.jit(jax.vmap(run))(stacked))


def main(argv=None):
    args = _common.parser(__doc__.splitlines()[0], steps=100, fast_steps=60).parse_args(argv)
    n_steps = _common.steps(args)
    h = vqe.h2_hamiltonian(0.735)
    with _common.progress(n_steps, args, "vqe R=0.735") as bar:
        res = vqe.minimize(vqe.h2_ansatz, h, jnp.zeros((), jnp.float32), 4, optimizer=optax.adam(0.1),
                           steps=n_steps, callback=lambda i, p, e: bar.update())
    exact = exact_ground_energy(h, 4)
    energy = float(res.energy)
    lengths = (0.3, 0.5, 0.735, 1.0, 1.6, 2.5) if args.fast else vqe.H2_BOND_LENGTHS
    vqe_curve = curve(lengths, n_steps)
    exact_curve = np.array([exact_ground_energy(vqe.h2_hamiltonian(r), 4) for r in lengths])

    plt = _common.pyplot()
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 4))
    ax0.semilogy(np.abs(res.history - exact) + 1e-12)
    ax0.axhline(1.6e-3, color="gray", ls="--", label="chemical accuracy (1.6 mHa)")
    ax0.set(title="VQE at R = 0.735 A", xlabel="step", ylabel="|E - E_exact| (Ha)")
    ax0.legend()
    ax1.plot(lengths, exact_curve, "k-", label="exact (FCI, dense diagonalisation)")
    ax1.plot(lengths, vqe_curve, "o", color="tab:purple", label="VQE")
    ax1.set(title="H2 dissociation curve (STO-3G)", xlabel="bond length (A)", ylabel="energy (Ha)")
    ax1.legend()
    path = _common.save(fig, args, "vqe_h2")
    return _common.report("vqe_h2", {
        "energy": energy, "exact_energy": exact, "error_mHa": 1e3 * abs(energy - exact),
        "theta": float(res.params), "curve_max_error_mHa": float(1e3 * np.max(np.abs(vqe_curve - exact_curve))),
        "equilibrium_bond_length": float(lengths[int(np.argmin(vqe_curve))]), "plot": str(path)})


if __name__ == "__main__":
    main()
