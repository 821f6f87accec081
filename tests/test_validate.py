"""Every bad-input path raises a clear error (type, function name and offending value), early.

STYLE 6: ``ValueError`` for bad values, ``TypeError`` for bad types, raised at the
boundary before any large allocation.
"""

import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import qsim

U2 = np.eye(2, dtype=complex)
U4 = np.eye(4, dtype=complex)


# --- qubit count, dtype, memory ------------------------------------------------------------
@pytest.mark.parametrize("n", [0, -1])
def test_bad_n_qubits_value(n):
    with pytest.raises(ValueError, match=rf"Circuit: n_qubits must be >= 1, got {n}"):
        qsim.Circuit(n)


@pytest.mark.parametrize("n", [2.5, True, "3", None, 3.0])
def test_bad_n_qubits_type(n):
    with pytest.raises(TypeError, match="Circuit: n_qubits must be an int"):
        qsim.Circuit(n)


def test_numpy_int_n_qubits_accepted():
    assert qsim.Circuit(np.int64(2)).n_qubits == 2


@pytest.mark.parametrize("n", [40, 60, 1100])
def test_state_too_large_is_raised_before_allocation(n):
    t0 = time.perf_counter()
    with pytest.raises(qsim.StateTooLargeError, match=r"need .*(PiB|TiB|GiB).* but only .* is free") as info:
        qsim.Circuit(n)
    assert time.perf_counter() - t0 < 1.0          # nothing of 2^n was allocated
    assert isinstance(info.value, ValueError) and isinstance(info.value, MemoryError)
    assert f"{n} qubits" in str(info.value)


def test_state_too_large_complex128_message():
    with pytest.raises(MemoryError, match=r"60 qubits in complex128 need"):
        qsim.Circuit(60, dtype=jnp.complex128)


@pytest.mark.parametrize("dtype", [jnp.float32, np.int32, "float64"])
def test_bad_dtype(dtype):
    with pytest.raises(TypeError, match="dtype must be complex64 or complex128"):
        qsim.Circuit(2, dtype=dtype)


def test_complex128_without_x64():
    jax.config.update("jax_enable_x64", False)
    try:
        with pytest.raises(ValueError, match=r"complex128 .*jax_enable_x64"):
            qsim.Circuit(2, dtype=jnp.complex128)
        assert qsim.Circuit(2).state().dtype == jnp.complex64      # the default still works
    finally:
        jax.config.update("jax_enable_x64", True)
    assert qsim.Circuit(2, dtype=jnp.complex128).state().dtype == jnp.complex128


@pytest.mark.parametrize("k,error", [(-1, ValueError), (7, ValueError), (2.5, TypeError), (True, TypeError),
                                     ("4", TypeError)])
def test_bad_max_fused_qubits(k, error):
    """A wrong type is a TypeError, a wrong value a ValueError (review: 2.5 used to be a ValueError)."""
    with pytest.raises(error, match="max_fused_qubits must be an int in 0..6"):
        qsim.Circuit(2, max_fused_qubits=k)


def test_bad_backend():
    with pytest.raises(ValueError, match="backend must be one of"):
        qsim.Circuit(2, backend="cuda")


# --- wires ---------------------------------------------------------------------------------
@pytest.mark.parametrize("build,match", [
    (lambda c: c.x(3), r"Circuit.x: wire 3 is out of range for a 3-qubit circuit \(allowed 0..2\)"),
    (lambda c: c.x(-1), r"Circuit.x: wire -1 is out of range"),
    (lambda c: c.cnot(0, 5), r"Circuit.cnot: wire 5 is out of range"),
    (lambda c: c.rzz(0, 3, 0.1), r"Circuit.rzz: wire 3 is out of range"),
    (lambda c: c.unitary(U2, (3,)), r"Circuit.unitary: wire 3 is out of range"),
    (lambda c: c.controlled(U2, (4,), (0,)), r"Circuit.controlled: wire 4 is out of range"),
    (lambda c: c.probs(wires=(0, 3)), r"Circuit.probs: wire 3 is out of range"),
    (lambda c: c.measure(7), r"Circuit.measure: wire 7 is out of range"),
])
def test_wire_out_of_range(build, match):
    with pytest.raises(ValueError, match=match):
        build(qsim.Circuit(3))


@pytest.mark.parametrize("build,match", [
    (lambda c: c.cnot(1, 1), r"Circuit.cnot: wires must be distinct within one gate, got \(1, 1\)"),
    (lambda c: c.swap(2, 2), r"Circuit.swap: wires must be distinct"),
    (lambda c: c.toffoli(0, 1, 0), r"Circuit.toffoli: wires must be distinct"),
    (lambda c: c.cswap(0, 2, 2), r"Circuit.cswap: wires must be distinct"),
    (lambda c: c.unitary(U4, (0, 0)), r"Circuit.unitary: wires must be distinct"),
    (lambda c: c.controlled(U2, (1,), (1,)), r"Circuit.controlled: wires must be distinct"),
    (lambda c: c.controlled(U4, (0,), (1, 0)), r"Circuit.controlled: wires must be distinct"),
    (lambda c: c.probs(wires=(1, 1)), r"Circuit.probs: wires must be distinct"),
])
def test_repeated_wire(build, match):
    with pytest.raises(ValueError, match=match):
        build(qsim.Circuit(3))


@pytest.mark.parametrize("build,match", [
    (lambda c: c.x(1.0), r"Circuit.x: wires must be ints, got 1.0 of type float"),
    (lambda c: c.h(True), r"Circuit.h: wires must be ints, got True of type bool"),
    (lambda c: c.cz("0", 1), r"Circuit.cz: wires must be ints"),
    (lambda c: c.rx(None, 0.1), r"Circuit.rx: wires must be ints"),
    (lambda c: c.unitary(U2, (0.0,)), r"Circuit.unitary: wires must be ints"),
    (lambda c: c.controlled(U2, (1.5,), (0,)), r"Circuit.controlled: wires must be ints"),
    (lambda c: c.probs(wires=(0.5,)), r"Circuit.probs: wires must be ints"),
])
def test_non_int_wire(build, match):
    with pytest.raises(TypeError, match=match):
        build(qsim.Circuit(3))


def test_numpy_int_wires_accepted():
    c = qsim.Circuit(3).cnot(np.int64(0), np.int32(2)).unitary(U4, np.array([2, 1]))
    assert c.n_ops == 2


@pytest.mark.parametrize("u,wires,match", [
    (U4, (0,), r"Circuit.unitary: matrix for 1 wire\(s\) must have shape \(2, 2\), got \(4, 4\)"),
    (U2, (0, 1), r"Circuit.unitary: matrix for 2 wire\(s\) must have shape \(4, 4\), got \(2, 2\)"),
    (np.eye(8), (0, 1), r"must have shape \(4, 4\), got \(8, 8\)"),
    (np.ones((2, 3)), (0,), r"must have shape \(2, 2\), got \(2, 3\)"),
    (np.ones(2), (0,), r"must have shape \(2, 2\), got \(2,\)"),
    (np.ones((1, 2, 2)), (0,), r"must have shape \(2, 2\), got \(1, 2, 2\)"),
])
def test_wrong_matrix_shape_or_wire_count(u, wires, match):
    with pytest.raises(ValueError, match=match):
        qsim.Circuit(2).unitary(u, wires)


def test_controlled_matrix_shape_must_match_targets():
    with pytest.raises(ValueError, match=r"Circuit.controlled: matrix for 1 wire\(s\) must have shape \(2, 2\)"):
        qsim.Circuit(3).controlled(U4, (0, 1), (2,))


@pytest.mark.parametrize("u", [
    np.array([[1, 1], [0, 1]], complex),          # not unitary
    2 * np.eye(2),                                # wrong norm
    np.diag([1, 0.5]),                            # diagonal fast path: still checked
    np.array([[np.nan, 0], [0, 1]]),              # not finite
])
def test_non_unitary_concrete_matrix(u):
    with pytest.raises(ValueError, match=r"Circuit.unitary: matrix is not unitary \(max \|U\^dagger U - I\|"):
        qsim.Circuit(1).unitary(u, (0,))
    with pytest.raises(ValueError, match=r"Circuit.controlled: matrix is not unitary"):
        qsim.Circuit(2).controlled(u, (1,), (0,))


def test_traced_matrix_is_not_checked_but_works():
    """Under jit the matrix is abstract: no unitarity check, no error."""
    f = jax.jit(lambda t: qsim.Circuit(1, dtype=jnp.complex128).unitary(
        jnp.asarray([[jnp.cos(t), -jnp.sin(t)], [jnp.sin(t), jnp.cos(t)]]), (0,)).state())
    np.testing.assert_allclose(f(0.3), [np.cos(0.3), np.sin(0.3)], atol=1e-12)


# --- parameters ----------------------------------------------------------------------------
@pytest.mark.parametrize("theta,match", [
    (1 + 2j, "Circuit.rx: parameter must be a real number"),
    (np.complex128(1j), "Circuit.rx: parameter must be real, got dtype complex128"),
    (jnp.asarray(0.5 + 0j), "Circuit.rx: parameter must be real, got dtype complex"),
    ("0.5", "Circuit.rx: parameter must be a real number"),
    (None, "Circuit.rx: parameter must be a real number"),
    ([0.5], "Circuit.rx: parameter must be a real number"),
])
def test_bad_parameter_type(theta, match):
    with pytest.raises(TypeError, match=match):
        qsim.Circuit(1).rx(0, theta)


@pytest.mark.parametrize("theta", [np.ones(2), jnp.ones((1,)), np.ones((2, 2))])
def test_non_scalar_parameter(theta):
    with pytest.raises(ValueError, match=r"Circuit.rx: parameter must be a scalar, got shape .*use jax.vmap"):
        qsim.Circuit(1).rx(0, theta)


def test_non_scalar_parameter_u3_names_gate():
    with pytest.raises(ValueError, match=r"Circuit.u3: parameter 2 of 3 must be a scalar"):
        qsim.Circuit(1).u3(0, 0.1, np.zeros(3), 0.2)


# --- reading results -----------------------------------------------------------------------
@pytest.mark.parametrize("diff", ["finite", "Backprop", None, "adjoint "])
def test_bad_diff_method(diff):
    c = qsim.Circuit(1).rx(0, 0.2)
    with pytest.raises(ValueError, match=r"Circuit.expectation: diff must be one of \('backprop', 'adjoint', "
                                         r"'parameter-shift'\)"):
        c.expectation(qsim.Z(0), diff=diff)
    with pytest.raises(ValueError, match=r"Circuit.state: diff must be one of"):
        c.state(diff=diff)


def test_state_rejects_parameter_shift():
    """The parameter-shift rule is defined for expectations, not for the state itself."""
    with pytest.raises(ValueError, match=r"Circuit.state: diff must be one of \('backprop', 'adjoint'\)"):
        qsim.Circuit(1).state(diff="parameter-shift")


@pytest.mark.parametrize("obs,match", [
    (qsim.Z(3), r"Circuit.expectation: observable acts on wire 3, out of range for a 3-qubit circuit"),
    (qsim.Z(0) @ qsim.X(5) + 1.0, r"observable acts on wire 5"),
    ([qsim.Z(0), qsim.Y(9)], r"observable acts on wire 9"),
])
def test_observable_wire_out_of_range(obs, match):
    with pytest.raises(ValueError, match=match):
        qsim.Circuit(3).expectation(obs)


@pytest.mark.parametrize("obs", ["Z0", np.eye(2), [], [qsim.Z(0), "X1"], None])
def test_bad_observable_type(obs):
    with pytest.raises(TypeError, match=r"Circuit.expectation: obs must be a PauliSum"):
        qsim.Circuit(2).expectation(obs)


@pytest.mark.parametrize("wire", [-1])
def test_bad_pauli_wire_value(wire):
    with pytest.raises(ValueError, match=r"Z: wire must be a non-negative int, got -1"):
        qsim.Z(wire)


@pytest.mark.parametrize("wire", [1.5, "0", True, None])
def test_bad_pauli_wire_type(wire):
    """A wire of the wrong type is a TypeError, as for Circuit gate wires (STYLE 6)."""
    with pytest.raises(TypeError, match=r"X: wire must be a non-negative int"):
        qsim.X(wire)


@pytest.mark.parametrize("shots", [0, -5])
def test_bad_shots_value(shots):
    with pytest.raises(ValueError, match=rf"Circuit.sample: shots must be a positive int, got {shots}"):
        qsim.Circuit(1).sample(jax.random.key(0), shots=shots)


@pytest.mark.parametrize("shots", [2.5, True, "10", None])
def test_bad_shots_type(shots):
    """A non-int shot count is a TypeError (STYLE 6), as for n_qubits."""
    with pytest.raises(TypeError, match=r"Circuit.sample: shots must be a positive int"):
        qsim.Circuit(1).sample(jax.random.key(0), shots=shots)


def test_sample_wire_out_of_range():
    with pytest.raises(ValueError, match=r"wire 2 is out of range"):
        qsim.Circuit(2).sample(jax.random.key(0), shots=3, wires=(2,))


# --- initial states ------------------------------------------------------------------------
@pytest.mark.parametrize("state,match", [
    (np.ones(3), r"Circuit: state for 2 qubits must have shape \(4,\), got \(3,\)"),
    (np.ones((2, 2)), r"got \(2, 2\)"),
    (np.ones(8), r"got \(8,\)"),
    ([1, 0, 0], r"got \(3,\)"),
])
def test_bad_state_shape(state, match):
    with pytest.raises(ValueError, match=match):
        qsim.Circuit(2, state=state)


@pytest.mark.parametrize("state", [np.ones(3), np.ones((2, 2)), np.ones((1, 4))])
def test_bad_prepare_shape(state):
    with pytest.raises(ValueError, match=r"Circuit.prepare: state for 2 qubits must have shape \(4,\)"):
        qsim.Circuit(2).prepare(state)


def test_prepare_after_a_gate():
    with pytest.raises(ValueError, match=r"Circuit.prepare: the initial state can only be set before any gate"):
        qsim.Circuit(2).h(0).prepare(np.array([1, 0, 0, 0]))


# --- measurement ---------------------------------------------------------------------------
@pytest.mark.parametrize("build", [
    lambda c: c.x(0),
    lambda c: c.cnot(1, 0),
    lambda c: c.unitary(U2, (0,)),
    lambda c: c.controlled(U2, (0,), (1,)),
    lambda c: c.repeat(lambda c, w: c.rx(1, w), jnp.ones(2)),
])
def test_gate_after_measured_wire(build):
    """Was a ValueError ("wire 0 was already measured") before mid-circuit measurement: now the
    circuit is dynamic, and its state needs a key (one trajectory)."""
    c = qsim.Circuit(2).h(0).measure(0)
    assert not c.is_dynamic
    build(c)
    assert c.is_dynamic
    assert float(jnp.sum(c.probs())) == pytest.approx(1, abs=1e-5)
    with pytest.raises(ValueError, match=r"Circuit.state: a dynamic circuit's state depends on its measurement"):
        c.state()
    assert c.state(key=jax.random.key(0)).shape == (4,)


# --- repeat --------------------------------------------------------------------------------
def _layer(c, p):
    c.rx(0, p["a"]).ry(1, p["b"][0])


@pytest.mark.parametrize("params,match", [
    ({"a": jnp.ones(3), "b": jnp.ones((4, 2))}, r"Circuit.repeat: every leaf of params needs the same leading"),
    ({"a": jnp.ones(3), "b": jnp.asarray(1.0)}, r"every leaf of params needs the same leading"),
    ({}, r"Circuit.repeat: params must have at least one array leaf"),
])
def test_repeat_bad_params(params, match):
    with pytest.raises(ValueError, match=match):
        qsim.Circuit(2).repeat(_layer, params)


def test_repeat_layer_must_not_return_something_else():
    with pytest.raises(TypeError, match=r"Circuit.repeat: layer\(c, p\) must add gates to c and return None or c"):
        qsim.Circuit(1).repeat(lambda c, w: 3.0, jnp.ones(2))


def test_repeat_nested_is_an_error():
    with pytest.raises(ValueError, match=r"Circuit.repeat: a layer may not itself call repeat"):
        qsim.Circuit(1).repeat(lambda c, w: c.repeat(lambda c2, v: c2.rx(0, v), w), jnp.ones((2, 3)))


def test_memory_guard_counts_the_states_backprop_keeps():
    """Backprop through a deep `repeat` keeps one state per layer: a 26-qubit, 200-layer circuit
    (512 MiB a state) must be refused at trace time, while the adjoint method (4 states) and a
    forward pass with numbers only are accepted (only traced here: nothing is allocated)."""
    n, layers = 26, 200

    def f(w, diff):
        def layer(c, v):
            c.ry(0, v[0]).cnot(0, 1).rz(1, v[1])
        return qsim.Circuit(n).repeat(layer, w).expectation(qsim.Z(0), diff=diff)

    w = jnp.zeros((layers, 2))
    with pytest.raises(qsim.StateTooLargeError, match="Circuit.expectation"):
        jax.make_jaxpr(jax.grad(lambda w: f(w, "backprop")))(w)
    jax.make_jaxpr(jax.grad(lambda w: f(w, "adjoint")))(w)


def test_memory_guard_budgets_one_state_for_a_short_repeat_written_out():
    """On the native kernels a repeat of at most 16 layers is written out into the surrounding
    call, for which backprop saves one state: 3 states whatever its layers (the state in, the
    state out, the call's output); a repeat of 40 layers is a scan that saves one per layer."""
    from qsim import _simulate, backends

    def layer(c, v):
        c.ry(0, v[0]).cnot(0, 1).rz(1, v[1])

    def held(layers, backend, **kw):
        c = qsim.Circuit(4).ry(2, 0.3).repeat(layer, jnp.zeros((layers, 2)))
        program, _ = c.program
        return _simulate.states_held(program, "backprop", backend, 4, **kw)

    assert held(10, backends.NATIVE) == 3
    assert held(40, backends.NATIVE) == 2 + 1 + 40
    assert held(10, backends.NATIVE, written_out=False) == 2 + 1 + 10   # a sharded state
