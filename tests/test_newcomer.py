"""Day one: what a newcomer meets. The README runs as written, and the inputs that used to
give a silent wrong answer raise an error naming the function and the argument."""

import importlib.util
import inspect
import pathlib
import pydoc
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import qml
import qsim
from reference import TOL

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
_NEEDS = re.compile(r"#\s*needs:\s*(.+)")


def readme_blocks():
    """The ```python blocks of README.md, in order."""
    return re.findall(r"^```python\n(.*?)^```", README.read_text(), flags=re.S | re.M)


# --- the README ------------------------------------------------------------------------------
def test_readme_code_blocks_run(tmp_path, monkeypatch):
    """Every python block runs as written, each in a fresh namespace, in order, in an empty directory.

    A block whose first line is ``# needs: pkg1 pkg2`` is skipped only when one of those
    optional packages is not installed.
    """
    monkeypatch.chdir(tmp_path)
    blocks = readme_blocks()
    assert len(blocks) >= 3
    for i, code in enumerate(blocks):
        needs = _NEEDS.match(code.splitlines()[0] if code else "")
        if needs and any(importlib.util.find_spec(m) is None for m in needs.group(1).split()):
            continue
        exec(compile(code, f"README.md python block {i}", "exec"), {"__name__": f"readme_block_{i}"})


def test_readme_quick_start_numbers():
    """The quick start's first lines give what their comments say."""
    ns = {}
    exec(compile(readme_blocks()[0], "README.md python block 0", "exec"), ns)
    assert ns["psi"].shape == (8,) and ns["psi"].dtype == jnp.complex64
    assert ns["bits"].shape == (1000, 3) and set(np.unique(ns["bits"])) <= {0, 1}
    np.testing.assert_allclose(ns["c2"].probs(), [0.5, 0, 0, 0.5], atol=TOL[np.complex64])
    np.testing.assert_allclose(ns["plus"].probs(), [0.5, 0.5], atol=TOL[np.complex64])
    assert ns["g"].shape == (3,)


def test_readme_limits_hold():
    """README "What qsim does not do yet": a trajectory of more than 1000 runs of mid-circuit
    operations runs (one scan) with concrete parameters, and is refused with traced ones
    (a gate after a measurement, refused before, now works too).
    When this fails, qsim learnt something: update that README section."""
    def build(theta):
        c = qsim.Circuit(2).h(0).measure(0)
        c.cnot(0, 1)
        for _ in range(1001):
            c.ry(1, theta).reset(1)
        return c

    c = build(0.3)
    assert c.is_dynamic
    bits = np.asarray(c.run(jax.random.key(0), 2))
    assert bits.shape == (2, 1) and set(np.unique(bits)) <= {0, 1}
    with pytest.raises(ValueError, match=r"Circuit.run: this circuit interleaves its gates with 1002 runs"):
        jax.jit(lambda t: build(t).run(jax.random.key(0), 2))(0.3)


# --- initial states: norm 1 or normalize=True --------------------------------------------------
@pytest.mark.parametrize("make,where", [
    (lambda s: qsim.Circuit(1, state=s), "Circuit"),
    (lambda s: qsim.Circuit(1).prepare(s), r"Circuit.prepare"),
])
def test_unnormalised_state_raises(make, where):
    with pytest.raises(ValueError, match=rf"^{where}: state must have norm 1, got norm 1.41421 \(sum of "
                                         r"\|amplitude\|\^2 = 2\); pass normalize=True"):
        make([1, 1])


@pytest.mark.parametrize("state", [[1, 1], np.array([3.0, 4.0j]), jnp.array([0.0, 2.0], jnp.float32)])
def test_normalize_divides_by_the_norm(state):
    ref = np.asarray(state, np.complex128) / np.linalg.norm(np.asarray(state, np.complex128))
    for c in (qsim.Circuit(1, state=state, normalize=True, dtype=jnp.complex128),
              qsim.Circuit(1, dtype=jnp.complex128).prepare(state, normalize=True)):
        np.testing.assert_allclose(c.state(), ref, atol=TOL[np.complex128])


def test_state_norm_tolerance_follows_precision():
    """float32 rounding is accepted (1e-5), a float64 state must be normalised to 1e-10."""
    qsim.Circuit(1, state=np.array([1, 1 + 4e-6], np.float32) / np.sqrt(2))
    qsim.Circuit(1, state=np.array([1.0, 1.0]) / np.sqrt(2) * (1 + 1e-12), dtype=jnp.complex128)
    with pytest.raises(ValueError, match=r"^Circuit: state must have norm 1, got norm 1"):
        qsim.Circuit(1, state=np.array([1.0, 1.0]) / np.sqrt(2) * (1 + 1e-8), dtype=jnp.complex128)


@pytest.mark.parametrize("state,kw,match", [
    ([0, 0], {"normalize": True}, r"^Circuit: state is all zeros \(norm 0\) and cannot be normalised"),
    ([np.nan, 0], {}, r"^Circuit: state has non-finite amplitudes \(norm nan\)"),
    ([np.inf, 0], {"normalize": True}, r"^Circuit: state has non-finite amplitudes \(norm inf\)"),
])
def test_degenerate_states_raise(state, kw, match):
    with pytest.raises(ValueError, match=match):
        qsim.Circuit(1, state=state, **kw)


def test_concrete_state_is_checked_inside_jit():
    with pytest.raises(ValueError, match=r"^Circuit: state must have norm 1"):
        jax.jit(lambda t: qsim.Circuit(1, state=np.ones(2)).rx(0, t).probs())(0.1)


def test_traced_state_normalize_and_documented_no_check():
    """A traced state is normalised when asked (differentiably) and otherwise not checked."""
    f = jax.jit(lambda s: qsim.Circuit(1, state=s, normalize=True, dtype=jnp.complex128).probs())
    np.testing.assert_allclose(f(jnp.array([3.0, 4.0])), [0.36, 0.64], atol=TOL[np.complex128])
    g = jax.grad(lambda s: qsim.Circuit(1, state=s, normalize=True, dtype=jnp.complex128).probs()[0])
    np.testing.assert_allclose(g(jnp.array([3.0, 4.0])), [2 * 3 * 16 / 625, -2 * 9 * 4 / 625],
                               atol=TOL[np.complex128])    # d/ds of s0^2 / (s0^2 + s1^2)
    raw = jax.jit(lambda s: qsim.Circuit(1, state=s, dtype=jnp.complex128).probs())(jnp.array([1.0, 1.0]))
    np.testing.assert_allclose(raw, [1.0, 1.0], atol=TOL[np.complex128])


# --- observables must be Hermitian ---------------------------------------------------------------
@pytest.mark.parametrize("obs,match", [
    (1j * qsim.Z(0), r"^Circuit.expectation: obs is not Hermitian: Z0 has the complex coefficient 1j"),
    (qsim.X(0) @ qsim.Y(0), r"obs is not Hermitian: Z0 has the complex coefficient 1j"),
    (qsim.Z(0) - 2j * qsim.Z(0) + qsim.X(0), r"Z0 has the complex coefficient \(1-2j\)"),
    ([qsim.Z(0), qsim.Y(0) @ qsim.Z(0)], r"^Circuit.expectation: obs\[1\] is not Hermitian: X0 has the complex "
                                         r"coefficient 1j"),
])
def test_non_hermitian_observable_raises(obs, match):
    with pytest.raises(ValueError, match=match):
        qsim.Circuit(1).expectation(obs)


def test_complex_intermediate_products_are_allowed():
    """Complex coefficients are fine in the algebra; only the observable measured must be Hermitian."""
    psi = np.array([0.6, 0.8j])
    c = qsim.Circuit(1, state=psi, dtype=jnp.complex128)
    ref_z, ref_y = 0.36 - 0.64, 2 * np.real(np.conj(psi[0]) * -1j * psi[1])
    np.testing.assert_allclose(c.expectation(-1j * (qsim.X(0) @ qsim.Y(0))), ref_z, atol=TOL[np.complex128])
    h = (qsim.X(0) @ qsim.Y(0) + qsim.Y(0) @ qsim.X(0)) + qsim.Y(0)     # i Z - i Z + Y
    np.testing.assert_allclose(c.expectation(h), ref_y, atol=TOL[np.complex128])


def test_traced_complex_coefficients_are_not_checked():
    """Documented: traced coefficients give the Hermitian part (here 0 for i Z)."""
    f = jax.jit(lambda h: qsim.Circuit(1).expectation(h))
    np.testing.assert_allclose(f(1j * qsim.Z(0)), 0.0, atol=TOL[np.complex64])


@pytest.mark.parametrize("observables,name", [
    ([qsim.Z(0), 1j * qsim.Z(0)], r"observables\[1\]"), (qsim.X(0) @ qsim.Y(0), "observables")])
def test_layer_rejects_non_hermitian_observables(observables, name):
    with pytest.raises(ValueError, match=rf"^QuantumLayer: {name} is not Hermitian: Z0 has the complex "
                                         r"coefficient 1j"):
        qml.QuantumLayer(lambda c, x, w: None, 1, {}, observables, rngs=nnx.Rngs(0))


# --- gate angles ---------------------------------------------------------------------------------
@pytest.mark.parametrize("build,match", [
    (lambda c: c.rx(0, np.nan), r"^Circuit.rx: parameter must be a finite real number \(radians\), got nan"),
    (lambda c: c.crz(0, 1, float("inf")), r"^Circuit.crz: parameter must be a finite real number \(radians\), got inf"),
    (lambda c: c.u3(0, 0.1, -np.inf, 0.2), r"^Circuit.u3: parameter 2 of 3 must be a finite .*, got -inf"),
    (lambda c: c.phase(1, jnp.asarray(jnp.nan)), r"^Circuit.phase: parameter must be a finite"),
])
def test_non_finite_angle_raises(build, match):
    with pytest.raises(ValueError, match=match):
        build(qsim.Circuit(2))


def test_traced_non_finite_angle_is_not_checked():
    """Documented: only concrete angles are checked; a traced NaN gives a NaN state."""
    p = jax.jit(lambda t: qsim.Circuit(1).rx(0, t).probs())(jnp.nan)
    assert np.isnan(np.asarray(p)).all()


# --- random keys -----------------------------------------------------------------------------------
@pytest.mark.parametrize("key,got", [(0, "0 of type int"), (np.int64(3), r"(np\.int64\(3\)|3) of type int64"),
                                     (jnp.zeros(3), r"an array of shape \(3,\) and dtype float")])
def test_sample_needs_a_jax_key(key, got):
    with pytest.raises(TypeError, match=rf"^Circuit.sample: key must be a JAX random key, e.g. "
                                        rf"jax.random.key\(0\), got {got}.*pass jax.random.key\(seed\)"):
        qsim.Circuit(1).sample(key, shots=10)


def test_sample_accepts_typed_and_raw_keys():
    c = qsim.Circuit(2).x(1)
    for key in (jax.random.key(1), jax.random.PRNGKey(1)):
        np.testing.assert_array_equal(c.sample(key, shots=4), [[0, 1]] * 4)


# --- wires of a marginal ---------------------------------------------------------------------------
@pytest.mark.parametrize("read,where", [(lambda c: c.probs(wires=(0, 0)), "Circuit.probs"),
                                        (lambda c: c.sample(jax.random.key(0), 3, wires=(1, 1)), "Circuit.sample")])
def test_marginal_wires_must_be_distinct(read, where):
    with pytest.raises(ValueError, match=rf"^{where}: wires must be distinct \(each wire at most once\), got"):
        read(qsim.Circuit(2))


# --- help(), repr -------------------------------------------------------------------------------------
def test_quantum_layer_signature_is_visible():
    params = inspect.signature(qml.QuantumLayer).parameters
    assert list(params)[:4] == ["circuit", "n_qubits", "weight_shapes", "observables"]
    assert params["rngs"].kind is inspect.Parameter.KEYWORD_ONLY
    assert "QuantumLayer(circuit, n_qubits, weight_shapes, observables, *, rngs" in \
        pydoc.render_doc(qml.QuantumLayer, renderer=pydoc.plaintext)       # what help() shows
    assert list(inspect.signature(qml.linen.QuantumLayer).parameters)[:4] == list(params)[:4]


@pytest.mark.parametrize("h,text", [
    (qsim.PauliSum.from_string("0.5 Z0 Z1 + 0.3 X2 - 1.2"), "PauliSum(0.5 Z0 Z1 + 0.3 X2 - 1.2 I)"),
    (-qsim.Z(0) + qsim.X(1), "PauliSum(-1 Z0 + 1 X1)"),
    (-0.0 * qsim.Z(0) - 0.0 * qsim.X(1), "PauliSum(0 Z0 + 0 X1)"),
    (qsim.Y(0) @ qsim.X(0), "PauliSum(-1j Z0)"),
    ((1 + 2j) * qsim.Z(0) - 2.5 * qsim.I(), "PauliSum((1+2j) Z0 - 2.5 I)"),
])
def test_pauli_sum_repr_is_clean(h, text):
    assert repr(h) == text


# --- the memory guard's advice -------------------------------------------------------------------------
def test_memory_advice_complex64_does_not_suggest_complex64():
    with pytest.raises(qsim.StateTooLargeError, match=r"what would help: fewer qubits, a machine with more "
                                                      r"memory$"):
        qsim.Circuit(60)


def test_memory_advice_complex128_suggests_complex64():
    with pytest.raises(qsim.StateTooLargeError, match=r"what would help: fewer qubits, complex64 \(half the "
                                                      r"memory\), a machine"):
        qsim.Circuit(60, dtype=jnp.complex128)


def test_memory_advice_suggests_adjoint_when_backprop_keeps_many_states():
    def f(w):
        return qsim.Circuit(28).repeat(lambda c, v: c.ry(0, v[0]).cnot(0, 1), w).expectation(qsim.Z(0))

    with pytest.raises(qsim.StateTooLargeError, match=r"what would help: fewer qubits, diff=\"adjoint\" \(4 "
                                                      r"states whatever the depth"):
        jax.make_jaxpr(jax.grad(f))(jnp.zeros((400, 1)))
