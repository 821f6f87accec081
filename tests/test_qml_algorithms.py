"""qml.kernels, qml.vqe, qml.qaoa, qml.grover against closed forms, brute force and dense diagonalisation."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import qsim

from qml import grover, kernels, qaoa, templates, vqe

TOL = 1e-5                                           # complex64
PAULI = {"X": np.array([[0, 1], [1, 0]]), "Y": np.array([[0, -1j], [1j, 0]]), "Z": np.diag([1.0, -1.0])}


def dense(h, n):
    """The 2^n x 2^n matrix of a PauliSum, from np.kron (independent of qsim's expectation code)."""
    out = np.zeros((1 << n, 1 << n), complex)
    for word, coeff in zip(h.words, np.asarray(h.coeffs)):
        ops = dict(word)
        out += coeff * functools.reduce(np.kron, [PAULI[ops[w]] if w in ops else np.eye(2) for w in range(n)])
    return out


def bits_of(n):
    return (np.arange(1 << n)[:, None] >> np.arange(n - 1, -1, -1)) & 1


# -- kernels ------------------------------------------------------------------------------------
def angle(c, x):
    templates.angle_embedding(c, x)


def amplitude(c, x):
    templates.amplitude_embedding(c, x, normalize=True)


X1 = np.random.default_rng(0).uniform(-2, 2, (5, 3)).astype(np.float32)
X2 = np.random.default_rng(1).uniform(-2, 2, (4, 3)).astype(np.float32)


def test_kernel_matches_pairwise_overlaps():
    K = np.asarray(kernels.kernel_matrix(templates.iqp_embedding, X1, X2))
    assert K.shape == (5, 4)
    state = jax.jit(lambda x: templates.iqp_embedding(qsim.Circuit(3), x).state())   # one sample at a time
    for i, j in np.ndindex(5, 4):
        a, b = np.asarray(state(X1[i])), np.asarray(state(X2[j]))
        assert abs(K[i, j] - abs(np.vdot(a, b)) ** 2) < TOL


def test_kernel_closed_forms():
    # rx angle embedding: a product state, k(x, y) = prod_i cos^2((x_i - y_i) / 2)
    K = np.asarray(kernels.kernel_matrix(angle, X1, X2))
    ref = np.prod(np.cos((X1[:, None, :] - X2[None, :, :]) / 2) ** 2, axis=-1)
    np.testing.assert_allclose(K, ref, atol=TOL)
    # amplitude embedding of 4 features on 2 qubits: k(x, y) = (x . y)^2 / (|x|^2 |y|^2)
    A, B = np.c_[X1, X1[:, :1]], np.c_[X2, X2[:, :1]]
    K = np.asarray(kernels.kernel_matrix(amplitude, A, B, n_qubits=2))
    ref = (A @ B.T) ** 2 / np.outer((A ** 2).sum(1), (B ** 2).sum(1))
    np.testing.assert_allclose(K, ref, atol=TOL)


def test_gram_matrix_symmetric_psd_unit_diagonal():
    K = np.asarray(kernels.kernel_matrix(templates.iqp_embedding, X1))
    np.testing.assert_allclose(K, K.T, atol=TOL)
    np.testing.assert_allclose(np.diag(K), 1, atol=TOL)
    assert np.linalg.eigvalsh(K).min() > -TOL


def test_kernel_in_sklearn_svc():
    svm = pytest.importorskip("sklearn.svm")
    X = np.concatenate([X1, X2])
    y = (X[:, 0] > 0).astype(int)
    kernel = kernels.make_kernel(angle)
    np.testing.assert_allclose(kernel(X1, X2), np.asarray(kernels.kernel_matrix(angle, X1, X2)), atol=TOL)
    pre = svm.SVC(kernel="precomputed", C=100).fit(np.asarray(kernels.kernel_matrix(angle, X)), y)
    call = svm.SVC(kernel=kernel, C=100).fit(X, y)
    np.testing.assert_array_equal(pre.predict(np.asarray(kernels.kernel_matrix(angle, X, X))), y)
    np.testing.assert_array_equal(call.predict(X), y)


@pytest.mark.parametrize("call, exc, match", [
    (lambda: kernels.kernel_matrix(angle, X1[0]), ValueError, r"X1 must have shape \(n_samples, n_features\)"),
    (lambda: kernels.kernel_matrix(angle, X1, X2[:, :2]), ValueError,
     r"X1 and X2 need the same number of features, got shapes \(5, 3\) and \(4, 2\)"),
    (lambda: kernels.kernel_matrix(angle, X1 * 1j), TypeError, r"X1 must be real"),
    (lambda: kernels.kernel_matrix(angle, X1, n_qubits=0), ValueError, r"n_qubits must be a positive int"),
])
def test_kernel_errors(call, exc, match):
    with pytest.raises(exc, match="kernels.kernel_matrix: " + match):
        call()


# -- VQE: H2 --------------------------------------------------------------------------------------
FCI_0735 = -1.13730604     # Ha: H2 STO-3G, R = 0.735 A (Qiskit / PennyLane tutorials; dense check below)


def test_h2_hamiltonian_exact_ground_energy():
    h = vqe.h2_hamiltonian(0.735)
    assert len(h.words) == 15
    m = dense(h, 4)
    np.testing.assert_allclose(m, m.conj().T, atol=1e-12)
    energies = np.linalg.eigvalsh(m)
    assert abs(energies[0] - FCI_0735) < 1e-7
    # the ground state is in span{|1100>, |0011>} (indices 12 and 3)
    ground = np.linalg.eigh(m)[1][:, 0]
    assert abs(ground[12]) ** 2 + abs(ground[3]) ** 2 > 1 - 1e-9


def test_h2_agrees_with_two_qubit_reduced_form():
    # Qiskit's VQE tutorial, H2 at 0.735 A (parity mapping, two-qubit reduction): electronic part
    # -1.052373245772859 II + 0.39793742484318045 (IZ - ZI) - 0.01128010425623538 ZZ + 0.18093119978423156 XX
    # plus the nuclear repulsion 0.7199689944489797 Ha. Same spectrum bottom as our 4-qubit JW form.
    Z, X = qsim.Z, qsim.X
    h2q = (-1.052373245772859 + 0.7199689944489797) * qsim.I(0) + 0.39793742484318045 * (Z(1) - Z(0)) \
        - 0.01128010425623538 * Z(0) @ Z(1) + 0.18093119978423156 * X(0) @ X(1)
    e2 = np.linalg.eigvalsh(dense(h2q, 2))[0]
    e4 = np.linalg.eigvalsh(dense(vqe.h2_hamiltonian(0.735), 4))[0]
    assert abs(e2 - e4) < 1e-7


def test_h2_curve_has_its_minimum_near_equilibrium():
    e = [np.linalg.eigvalsh(dense(vqe.h2_hamiltonian(r), 4))[0] for r in vqe.H2_BOND_LENGTHS]
    assert vqe.H2_BOND_LENGTHS[int(np.argmin(e))] == 0.735
    assert e[-1] > e[0] or e[-1] < -0.9          # dissociates towards 2 x (-0.47) Ha


def test_h2_ansatz_state():
    t = 0.37
    psi = np.asarray(vqe.h2_ansatz(qsim.Circuit(4), t).state())
    ref = np.zeros(16)
    ref[12], ref[3] = np.cos(t / 2), -np.sin(t / 2)
    np.testing.assert_allclose(psi, ref, atol=TOL)


def test_vqe_reaches_chemical_accuracy():
    h = vqe.h2_hamiltonian(0.735)
    exact = np.linalg.eigvalsh(dense(h, 4))[0]
    # adjoint gradients here (backprop and parameter-shift are compared with it in the layer/template tests)
    res = vqe.minimize(vqe.h2_ansatz, h, jnp.zeros(()), 4, optimizer=optax.adam(0.1), steps=80, diff="adjoint")
    assert abs(float(res.energy) - exact) < 1.6e-3
    assert abs(float(res.energy) - FCI_0735) < 1.6e-3
    assert res.history.shape == (80,) and res.history[-1] < res.history[0]
    assert abs(float(vqe.energy_fn(vqe.h2_ansatz, h, 4)(res.params)) - float(res.energy)) < TOL


def test_h2_hamiltonian_matches_pennylane_qchem():
    qchem = pytest.importorskip("pennylane.qchem")
    pl = pytest.importorskip("pennylane")
    for r in (0.735, 2.0):
        mol = qchem.Molecule(["H", "H"], np.array([[0.0, 0, 0], [0, 0, r / 0.529177210903]]), unit="bohr")
        h_pl, n = qchem.molecular_hamiltonian(mol, method="dhf", mapping="jordan_wigner")
        np.testing.assert_allclose(dense(vqe.h2_hamiltonian(r), 4), np.asarray(pl.matrix(h_pl, wire_order=range(4))),
                                   atol=1e-9)


def test_vqe_errors():
    with pytest.raises(ValueError, match=r"vqe.h2_hamiltonian: coefficients are tabulated for bond lengths"):
        vqe.h2_hamiltonian(0.74)
    with pytest.raises(TypeError, match=r"vqe: hamiltonian must be a qsim.PauliSum"):
        vqe.minimize(vqe.h2_ansatz, "H", jnp.zeros(()), 4)
    with pytest.raises(ValueError, match=r"vqe.minimize: steps must be a non-negative int"):
        vqe.minimize(vqe.h2_ansatz, vqe.h2_hamiltonian(), jnp.zeros(()), 4, steps=-1)


# -- QAOA -------------------------------------------------------------------------------------------
GRAPHS = {   # (the qaoa_maxcut example test adds a random 6-vertex graph)
    "ring4": (4, [(0, 1), (1, 2), (2, 3), (3, 0)]),
    "bowtie5": (5, [(0, 1), (1, 2), (2, 0), (2, 3), (3, 4), (4, 2)]),
}


@pytest.mark.parametrize("name", list(GRAPHS))
def test_maxcut_hamiltonian_is_minus_the_cut(name):
    n, edges = GRAPHS[name]
    h = qaoa.maxcut_hamiltonian(edges)
    cuts = np.array([sum(b[i] != b[j] for i, j in edges) for b in bits_of(n)])
    np.testing.assert_allclose(np.diag(dense(h, n)).real, -cuts, atol=1e-12)
    np.testing.assert_allclose(qaoa.cut_values(edges, n), cuts)
    np.testing.assert_allclose(qaoa.diagonal(h, n), -cuts, atol=1e-12)


def test_qubo_hamiltonian_brute_force():
    rng = np.random.default_rng(3)
    Q, lin = rng.normal(size=(4, 4)), rng.normal(size=4)
    h = qaoa.qubo_hamiltonian(Q, lin, 0.7)
    f = np.array([b @ Q @ b + lin @ b + 0.7 for b in bits_of(4)])
    m = dense(h, 4)
    np.testing.assert_allclose(m, np.diag(np.diag(m)), atol=1e-12)
    np.testing.assert_allclose(np.diag(m).real, f, atol=1e-6)
    np.testing.assert_allclose(qaoa.diagonal(h, 4), f, atol=1e-6)


def test_cost_and_mixer_layers_are_the_exponentials():
    h = 0.4 * qsim.Z(0) @ qsim.Z(2) - 0.3 * qsim.Z(1) + 0.2 * qsim.Z(0) @ qsim.Z(1) @ qsim.Z(2) + 0.5 * qsim.I(0)
    gamma, beta = 0.7, 0.3
    c = qsim.Circuit(3)
    for w in range(3):
        c.h(w)
    qaoa.mixer_layer(qaoa.cost_layer(c, gamma, h), beta)
    plus = np.full(8, 8 ** -0.5)
    rx = np.cos(beta) * np.eye(2) - 1j * np.sin(beta) * PAULI["X"]          # exp(-i beta X)
    ref = functools.reduce(np.kron, [rx] * 3) @ (np.exp(-1j * gamma * np.diag(dense(h, 3)).real) * plus)
    psi = np.asarray(c.state())
    phase = np.vdot(psi, ref) / abs(np.vdot(psi, ref))                     # identity term: a global phase
    np.testing.assert_allclose(psi * phase, ref, atol=TOL)


@pytest.mark.parametrize("name", ["bowtie5"])
def test_qaoa_finds_the_maximum_cut(name):
    n, edges = GRAPHS[name]
    cuts = qaoa.cut_values(edges, n)
    res = qaoa.optimize(qaoa.maxcut_hamiltonian(edges), n, 2, steps=60)
    probs = np.asarray(res.probs)
    assert probs.shape == (1 << n,) and abs(probs.sum() - 1) < TOL
    assert cuts[int(np.argmax(probs))] == cuts.max()
    assert probs[cuts == cuts.max()].sum() > np.mean(cuts == cuts.max())       # better than guessing
    assert -float(res.energy) > 0.75 * cuts.max()


def test_qaoa_errors():
    with pytest.raises(ValueError, match=r"qaoa.maxcut_hamiltonian: edges must be a non-empty list of pairs"):
        qaoa.maxcut_hamiltonian([(0, 0)])
    with pytest.raises(ValueError, match=r"weights must have one entry per edge \(2\)"):
        qaoa.maxcut_hamiltonian([(0, 1), (1, 2)], weights=[1.0])
    with pytest.raises(ValueError, match=r"qaoa.cost_layer: the cost Hamiltonian must be diagonal"):
        qaoa.cost_layer(qsim.Circuit(2), 0.1, qsim.X(0))
    with pytest.raises(ValueError, match=r"qaoa.optimize: depth must be a positive int"):
        qaoa.optimize(qsim.Z(0), 1, 0)
    with pytest.raises(ValueError, match=r"qaoa.qubo_hamiltonian: linear must have shape \(2,\)"):
        qaoa.qubo_hamiltonian(np.eye(2), np.ones(3))


# -- Grover -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("n, marked, k", [
    (2, [3], None), (3, [5], None), (4, [0], None), (4, [1, 14], None), (5, [7], None),
    (3, [5], 0), (3, [5], 1), (3, [5], 3), (4, [2, 9, 11], 2),
])
def test_grover_success_probability_closed_form(n, marked, k):
    iterations = grover.optimal_iterations(n, len(marked)) if k is None else k
    p = float(grover.search(n, marked, k))
    theta = math.asin(math.sqrt(len(marked) / 2 ** n))
    assert abs(p - math.sin((2 * iterations + 1) * theta) ** 2) < TOL
    assert abs(p - grover.success_probability(n, len(marked), iterations)) < TOL
    if k is None:
        assert p > 0.9                                      # near-certain at the optimal count


def test_grover_optimal_iterations():
    assert [grover.optimal_iterations(n) for n in range(1, 11)] == [
        math.floor(math.pi / 4 * math.sqrt(2 ** n)) for n in range(1, 11)]
    assert grover.optimal_iterations(10) == 25 and grover.optimal_iterations(6, 4) == 3
    # the closed form peaks at the optimal count: one more or one fewer iteration is worse
    for n in (4, 6, 8):
        k = grover.optimal_iterations(n)
        p = [grover.success_probability(n, 1, j) for j in (k - 1, k, k + 1)]
        assert p[1] >= max(p[0], p[2])


def test_grover_marked_state_dominates():
    probs = np.asarray(grover.circuit(4, 6).probs())
    assert int(np.argmax(probs)) == 6


def test_grover_errors():
    with pytest.raises(ValueError, match=r"grover.search: marked must be distinct basis indices in 0..7"):
        grover.search(3, 8)
    with pytest.raises(ValueError, match=r"grover.circuit: iterations must be a non-negative int"):
        grover.circuit(3, 1, -1)
    with pytest.raises(ValueError, match=r"grover.search: n_qubits must be a positive int"):
        grover.search(0, 0)
