"""`PauliSum` algebra and parsing against dense ``np.kron`` matrices, and expectations
``<psi|H|psi>`` against ``psi^H H psi`` with the dense H."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import qsim
from qsim import PauliSum, X, Y, Z
from reference import PAULI, TOL, pauli_sum_dense, pauli_word_dense, random_state

N = 4


def dense(h, n=N):
    """The dense matrix of a PauliSum (read through its public words/coeffs)."""
    return pauli_sum_dense(n, h.words, h.coeffs)


def kron_ops(n, ops):
    """Dense product of single-wire matrices given as {wire: 2x2}."""
    out = np.ones((1, 1), complex)
    for w in range(n):
        out = np.kron(out, ops.get(w, np.eye(2)))
    return out


# --- algebra -------------------------------------------------------------------------------
@pytest.mark.parametrize("a,b", [("X", "Y"), ("Y", "X"), ("Y", "Z"), ("Z", "Y"), ("Z", "X"), ("X", "Z"),
                                 ("X", "X"), ("Y", "Y"), ("Z", "Z")])
def test_single_wire_products(a, b):
    """P_a @ P_b on one wire is reduced with the Pauli algebra (X @ Y = iZ, ...)."""
    h = getattr(qsim, a)(1) @ getattr(qsim, b)(1)
    assert len(h.words) == 1 and len(h.words[0]) <= 1          # a single word on at most one wire
    np.testing.assert_allclose(dense(h, 2), np.kron(np.eye(2), PAULI[a] @ PAULI[b]), atol=1e-14)


def test_x_at_y_is_i_z():
    h = X(0) @ Y(0)
    assert h.words == (((0, "Z"),),)
    np.testing.assert_allclose(h.coeffs, [1j])


def test_sums_scalars_subtraction_products_match_dense():
    a = 0.5 * Z(0) @ Z(1) + 0.3 * X(2) - 1.2
    b = Y(3) - 2 * (X(0) @ Y(1)) + Z(2) / 4
    da, db = dense(a), dense(b)
    cases = {
        "a + b": (a + b, da + db), "a - b": (a - b, da - db), "b - a": (b - a, db - da),
        "-a": (-a, -da), "3a": (3 * a, 3 * da), "a*0.5": (a * 0.5, 0.5 * da), "a/2": (a / 2, da / 2),
        "a @ b": (a @ b, da @ db), "b @ a": (b @ a, db @ da), "a @ a": (a @ a, da @ da),
        "1 + a": (1 + a, np.eye(16) + da), "a - 2": (a - 2, da - 2 * np.eye(16)),
        "2 - a": (2 - a, 2 * np.eye(16) - da), "np.float64 * a": (np.float64(2.5) * a, 2.5 * da),
        "jnp scalar * a": (jnp.asarray(2.5) * a, 2.5 * da),
    }
    for name, (h, ref) in cases.items():
        assert isinstance(h, PauliSum), name
        np.testing.assert_allclose(dense(h), ref, atol=1e-12, err_msg=name)


def test_identity_and_wires():
    h = 0.5 * qsim.I() + X(3) @ Z(1)
    assert h.wires == (1, 3)
    np.testing.assert_allclose(dense(h), 0.5 * np.eye(16) + kron_ops(N, {1: PAULI["Z"], 3: PAULI["X"]}))
    assert (X(2) @ X(2)).wires == ()


def test_simplify_merges_equal_words():
    h = Z(0) + 0.5 * Z(0) + X(1) @ X(2) - X(1) @ X(2) + Z(0) @ Z(1) @ Z(0)
    s = h.simplify()
    assert len(s.words) == len(set(s.words)) == 3
    np.testing.assert_allclose(dense(s), dense(h), atol=1e-14)


def test_pauli_sum_is_a_pytree_with_static_words():
    h = 0.7 * Z(0) @ X(1) - 0.2 * Y(2)
    leaves, treedef = jax.tree.flatten(h)
    assert len(leaves) == 1 and leaves[0].shape == (2,)
    h2 = jax.tree.unflatten(treedef, [leaves[0] * 2])
    assert h2.words == h.words
    np.testing.assert_allclose(dense(h2), 2 * dense(h), atol=1e-14)


def test_algebra_type_errors():
    with pytest.raises(TypeError, match="use @"):
        Z(0) * Z(1)
    with pytest.raises(TypeError, match="cannot combine"):
        Z(0) + "Z1"
    with pytest.raises(TypeError):
        Z(0) @ 2.0


# --- parsing -------------------------------------------------------------------------------
@pytest.mark.parametrize("text,terms", [
    ("0.5 Z0 Z1 + 0.3 X2 - 1.2", [(0.5, {0: "Z", 1: "Z"}), (0.3, {2: "X"}), (-1.2, {})]),
    ("X0@Y1", [(1, {0: "X", 1: "Y"})]),
    ("-Z3", [(-1, {3: "Z"})]),
    ("Z0*Z1", [(1, {0: "Z", 1: "Z"})]),
    ("0.5*Z0@Z1", [(0.5, {0: "Z", 1: "Z"})]),
    ("I", [(1, {})]),
    ("2.5", [(2.5, {})]),
    ("  Y3  ", [(1, {3: "Y"})]),
    ("1e-3 X1 - .25 Y0 Y2 + 3 I", [(1e-3, {1: "X"}), (-0.25, {0: "Y", 2: "Y"}), (3, {})]),
    ("- 2 X0 + - Z1", [(-2, {0: "X"}), (-1, {1: "Z"})]),
    ("X0 X0", [(1, {})]),
])
def test_from_string(text, terms):
    h = PauliSum.from_string(text)
    ref = sum(c * pauli_word_dense(N, w) for c, w in terms)
    np.testing.assert_allclose(dense(h, N), ref, atol=1e-14)


def test_from_string_multi_digit_wires():
    h = PauliSum.from_string("0.5 Z12 X3")
    assert h.words == (((3, "X"), (12, "Z")),) and h.wires == (3, 12)
    np.testing.assert_allclose(h.coeffs, [0.5])


@pytest.mark.parametrize("text,match", [
    ("", "empty term"),
    ("Z0 +", "empty term"),
    ("X", "needs a wire"),
    ("Z0 + Q1", "unexpected"),
    ("0.5 0.3 Z0", "number must start a term"),
    ("Z0 2", "number must start a term"),
    ("Z0 & X1", "unexpected"),
    ("1.5.2 Z0", "number must start a term"),
    ("Z0 @", "from_string"),          # a dangling product operator (a truncated string) is an error
    ("@ Z0", "from_string"),
    ("Z0 * * X1", "from_string"),
    ("0.5 *", "from_string"),
])
def test_from_string_errors(text, match):
    with pytest.raises(ValueError, match=match):
        PauliSum.from_string(text)


def test_from_string_type_error():
    with pytest.raises(TypeError, match="expected a str"):
        PauliSum.from_string(3)


# --- expectations --------------------------------------------------------------------------
def random_pauli_sum(rng, n, n_terms):
    """A Hermitian sum with random words (Y, repeated wires, identity terms included)."""
    h = 0.37 * qsim.I()
    for _ in range(n_terms):
        term = float(rng.normal()) * qsim.I()
        for _ in range(int(rng.integers(1, 4))):        # up to 3 factors, wires may repeat
            term = term @ getattr(qsim, "XYZ"[rng.integers(3)])(int(rng.integers(n)))
        # a product with repeated wires can pick up a phase i^k; multiply it back to a real coefficient
        phase = complex(np.asarray(term.coeffs)[0]) / abs(complex(np.asarray(term.coeffs)[0]))
        h = h + term * (1 / phase)
    return h


def expectation_ref(psi, h, n):
    return np.real(np.conj(psi) @ dense(h, n) @ psi)


@pytest.mark.parametrize("seed", range(2))
def test_expectation_of_random_pauli_sums(seed):
    rng = np.random.default_rng(seed)
    n = 4
    psi = random_state(rng, n)
    h = random_pauli_sum(rng, n, 8)
    assert np.allclose(dense(h, n), dense(h, n).conj().T)       # Hermitian by construction
    got = qsim.Circuit(n, state=psi, dtype=jnp.complex128).expectation(h)
    assert got.shape == () and got.dtype == jnp.float64
    np.testing.assert_allclose(got, expectation_ref(psi, h, n), atol=TOL[np.complex128])


@pytest.mark.parametrize("word", ["Y0", "Y0 Y1", "X1 Y2 Z3", "Y0 Y1 Y2 Y3", "X0 X3", "Z2", "I",
                                  "X0 Y0", "Y1 Z1 Y1"])
def test_expectation_single_words(rng, word):
    """Each word alone, including words the parser reduces (X0 Y0 = iZ0, made Hermitian below)."""
    n = 4
    psi = random_state(rng, n)
    h = PauliSum.from_string(word)
    c0 = complex(np.asarray(h.coeffs)[0])
    h = h * (abs(c0) / c0)                                          # real coefficient
    got = qsim.Circuit(n, state=psi, dtype=jnp.complex128).expectation(h)
    np.testing.assert_allclose(got, expectation_ref(psi, h, n), atol=TOL[np.complex128])


def test_expectation_after_gates_complex64(rng):
    n = 3
    h = 0.5 * Z(0) @ Z(1) + 0.3 * X(2) - 0.2 * Y(0) @ Y(2) + 1.1
    c = qsim.Circuit(n).h(0).cnot(0, 1).ry(2, 0.4).s(0)
    got = c.expectation(h)
    assert got.dtype == jnp.float32
    psi = np.asarray(c.state(), np.complex128)
    np.testing.assert_allclose(got, expectation_ref(psi, h, n), atol=TOL[np.complex64])


def test_multiple_observables_as_list(rng):
    n = 3
    psi = random_state(rng, n)
    obs = [Z(0), X(1) @ Y(2), 0.5 * Z(0) @ Z(1) @ Z(2) - 0.25, Y(1)]
    c = qsim.Circuit(n, state=psi, dtype=jnp.complex128)
    got = c.expectation(obs)
    assert got.shape == (4,) and got.dtype == jnp.float64
    np.testing.assert_allclose(got, [expectation_ref(psi, h, n) for h in obs], atol=TOL[np.complex128])
    np.testing.assert_allclose(c.expectation(tuple(obs)), got, atol=TOL[np.complex128])


def test_expectation_of_complex_coefficient_sum_is_real_part(rng):
    """-1j * (X @ Y) = Z: complex coefficients that combine to a Hermitian operator."""
    n = 2
    psi = random_state(rng, n)
    h = -1j * (X(0) @ Y(0)) + (1j * Z(1) - 1j * Z(1))
    got = qsim.Circuit(n, state=psi, dtype=jnp.complex128).expectation(h)
    np.testing.assert_allclose(got, expectation_ref(psi, Z(0), n), atol=TOL[np.complex128])


def test_grad_with_respect_to_coefficients(rng):
    """d<H>/dc_i = <P_i> for traced coefficients."""
    n = 3
    psi = random_state(rng, n)
    words = [Z(0) @ Z(1), X(2), Y(0) @ X(1), qsim.I()]

    def f(c):
        h = c[0] * words[0] + c[1] * words[1] + c[2] * words[2] + c[3] * words[3]
        return qsim.Circuit(n, state=psi, dtype=jnp.complex128).rx(1, 0.3).expectation(h)

    c0 = jnp.asarray([0.3, -0.7, 1.1, 0.5])
    g = jax.jit(jax.grad(f))(c0)
    psi1 = np.asarray(qsim.Circuit(n, state=psi, dtype=jnp.complex128).rx(1, 0.3).state())
    np.testing.assert_allclose(g, [expectation_ref(psi1, w, n) for w in words], atol=TOL[np.complex128])
    np.testing.assert_allclose(f(c0), sum(float(c) * expectation_ref(psi1, w, n) for c, w in zip(c0, words)),
                               atol=TOL[np.complex128])


def test_pauli_sum_as_jit_argument(rng):
    """A PauliSum passes through jit as a pytree (coefficients traced, words static)."""
    n = 2
    psi = random_state(rng, n)
    traces = []

    def f(h):
        traces.append(1)
        return qsim.Circuit(n, state=psi, dtype=jnp.complex128).expectation(h)

    fj = jax.jit(f)
    for k in range(3):
        h = (0.5 + k) * Z(0) @ X(1) - 0.25 * Y(1)
        np.testing.assert_allclose(fj(h), expectation_ref(psi, h, n), atol=TOL[np.complex128])
    assert len(traces) == 1


def test_paulisum_matrix_matches_kron_reference():
    H = (0.7 * qsim.X(0) @ qsim.Y(1) + 0.3 * qsim.X(1) @ qsim.Z(3) - 0.5 * qsim.Z(0) @ qsim.Y(2)
         + qsim.PauliSum.from_string("1.5 - 0.25 Y3"))
    np.testing.assert_allclose(np.asarray(H.matrix(4)), pauli_sum_dense(4, H.words, H.coeffs), atol=1e-6)
    np.testing.assert_allclose(np.asarray(qsim.Y(0).matrix(1)), [[0, -1j], [1j, 0]])


@pytest.mark.parametrize("n,match", [
    (0, r"PauliSum.matrix: n_qubits must be a positive int, got 0"),
    (1, r"PauliSum.matrix: the sum acts on wire 1, out of range for n_qubits=1 \(allowed 0..0\)"),
    (15, r"PauliSum.matrix: a dense matrix on 15 wires would take 16 GiB; use n_qubits <= 14"),
])
def test_paulisum_matrix_bad_width(n, match):
    with pytest.raises(ValueError, match=match):
        (qsim.Z(0) @ qsim.X(1)).matrix(n)


@pytest.mark.parametrize("n", [1, 5, 6])
def test_many_words_sharing_flips_against_dense(rng, n):
    """Three or more words with the same X/Y wires are read together through the two halves of
    the basis index (``Sh^T (P Sl)``): sum_q Z_q, words spanning both halves, a flip group with
    Y phases; values against the dense matrix, batched under vmap, and the state gradient."""
    h = sum((Z(q) for q in range(n)), 0.1 * qsim.I())
    if n > 1:
        h = h + 0.3 * Z(0) @ Z(n - 1) - 0.7 * Z(1) @ Z(n // 2) @ Z(n - 1)
        h = h + 0.5 * X(1) @ Z(0) - 0.2 * X(1) @ Z(n - 1) + 0.4 * Y(1) @ Z(n - 1) + X(1)
    psis = np.stack([random_state(rng, n) for _ in range(3)])
    f = jax.jit(jax.vmap(lambda s: qsim.Circuit(n, state=s, dtype=jnp.complex128).expectation(h)))
    got = f(jnp.asarray(psis))
    for b in range(3):
        np.testing.assert_allclose(got[b], expectation_ref(psis[b], h, n), atol=TOL[np.complex128])
    # d<psi|H|psi>/d conj(psi) = H psi: JAX's gradient of a real function of psi is its conjugate, times 2
    g = jax.grad(lambda s: qsim.Circuit(n, state=s, dtype=jnp.complex128).expectation(h))(jnp.asarray(psis[0]))
    np.testing.assert_allclose(np.conj(np.asarray(g)), 2 * dense(h, n) @ psis[0], atol=1e-10)
