"""Circuits from other libraries: `from_qiskit` and `from_pennylane` give the source library's states.

Qiskit's qubit 0 is its least significant bit and becomes qsim's wire 0, the
most significant: Qiskit's ``Statevector`` is compared with its qubit order
reversed. PennyLane orders wires as qsim does.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import qsim
from reference import TOL

C128 = np.complex128


def random_unitary(rng, dim):
    q, r = np.linalg.qr(rng.normal(size=(dim, dim)) + 1j * rng.normal(size=(dim, dim)))
    return q * (np.diag(r) / np.abs(np.diag(r)))


# --- Qiskit ----------------------------------------------------------------------------
@pytest.fixture
def qiskit():
    return pytest.importorskip("qiskit")


def qiskit_state(qc):
    from qiskit.quantum_info import Statevector
    qc = qc.copy()
    qc.remove_final_measurements()
    return Statevector(qc).reverse_qargs().data


def all_standard_gates(qiskit, rng):
    """One of each kind: qelib1 names (native in qsim), others (as matrices), open controls, a phase."""
    from qiskit.circuit.library import C3SXGate, RC3XGate, UnitaryGate, XXPlusYYGate

    qc = qiskit.QuantumCircuit(4)
    a = lambda: float(rng.uniform(-np.pi, np.pi))    # noqa: E731
    qc.h(range(4))
    qc.x(0); qc.y(1); qc.z(2); qc.s(3); qc.sdg(0); qc.t(1); qc.tdg(2); qc.sx(3); qc.sxdg(0); qc.id(1)
    qc.rx(a(), 0); qc.ry(a(), 1); qc.rz(a(), 2); qc.p(a(), 3); qc.u(a(), a(), a(), 0)
    qc.cx(0, 1); qc.cy(2, 3); qc.cz(1, 3); qc.ch(3, 0); qc.swap(0, 2); qc.cswap(1, 0, 3); qc.ccx(3, 2, 1)
    qc.crx(a(), 0, 3); qc.cry(a(), 1, 2); qc.crz(a(), 3, 1); qc.cp(a(), 2, 0); qc.cu(a(), a(), a(), a(), 1, 0)
    qc.csx(2, 1); qc.rxx(a(), 0, 1); qc.ryy(a(), 2, 3); qc.rzz(a(), 1, 2); qc.rzx(a(), 0, 3)
    qc.iswap(1, 3); qc.ecr(0, 2); qc.dcx(3, 1); qc.rccx(0, 1, 2); qc.append(RC3XGate(), [3, 2, 1, 0])
    qc.mcx([0, 1, 2], 3); qc.append(C3SXGate(), [1, 2, 3, 0]); qc.append(XXPlusYYGate(a(), a()), [2, 0])
    qc.cx(0, 2, ctrl_state=0); qc.append(UnitaryGate(random_unitary(rng, 4)), [3, 1])
    sub = qiskit.QuantumCircuit(2, name="sub")
    sub.h(0); sub.crz(0.4, 0, 1)
    qc.append(sub.to_gate(), [2, 0]); qc.barrier(); qc.delay(10, 1)
    qc.global_phase = 0.7
    return qc


def test_every_kind_of_qiskit_gate(qiskit, rng):
    qc = all_standard_gates(qiskit, rng)
    circuit = qsim.from_qiskit(qc, dtype=C128)
    np.testing.assert_allclose(np.asarray(circuit.state()), qiskit_state(qc), atol=TOL[C128])


def test_qiskit_gates_map_to_native_gates(qiskit):
    """qelib1-named gates become table gates (one record each), not dense matrices."""
    qc = qiskit.QuantumCircuit(3)
    qc.h(0); qc.cx(0, 1); qc.rz(0.3, 2); qc.ccx(0, 1, 2); qc.ryy(0.2, 0, 2)
    records, _ = qsim.from_qiskit(qc).program
    assert [r.gate.name for r in records] == ["h", "cnot", "rz", "toffoli", "ryy"]


@pytest.mark.parametrize("seed", range(3))
def test_random_qiskit_circuits(qiskit, seed):
    from qiskit.circuit.random import random_circuit
    qc = random_circuit(5, 12, max_operands=3, seed=seed)
    np.testing.assert_allclose(np.asarray(qsim.from_qiskit(qc, dtype=C128).state()), qiskit_state(qc),
                               atol=TOL[C128])


def test_qiskit_qubit_i_is_wire_i(qiskit):
    qc = qiskit.QuantumCircuit(3)
    qc.x(0)
    assert int(np.argmax(np.abs(np.asarray(qsim.from_qiskit(qc).state())))) == 0b100


def test_qiskit_measurements(qiskit):
    qc = qiskit.QuantumCircuit(3, 3)
    qc.h(0); qc.cx(0, 1)
    qc.measure(0, 2); qc.measure(1, 0)
    circuit = qsim.from_qiskit(qc, dtype=C128)
    assert circuit.measurements == {0: 2, 1: 0}
    np.testing.assert_allclose(np.asarray(circuit.state()), qiskit_state(qc), atol=TOL[C128])


def test_qiskit_errors(qiskit):
    from qiskit.circuit import Parameter
    with pytest.raises(TypeError, match="from_qiskit: expected a qiskit.QuantumCircuit, got str"):
        qsim.from_qiskit("h q[0];")
    qc = qiskit.QuantumCircuit(1)
    qc.rx(Parameter("theta"), 0)
    with pytest.raises(ValueError, match=r"from_qiskit: the circuit has unbound parameters \['theta'\]"):
        qsim.from_qiskit(qc)
    qc = qiskit.QuantumCircuit(1, 1)
    qc.h(0); qc.measure(0, 0)
    with qc.if_test((qc.clbits[0], 1)) as else_:
        qc.x(0)
    with else_:
        qc.h(0)
    with pytest.raises(ValueError, match=r"from_qiskit: instruction 2 'if_else' on qubits \(0,\): an else branch "
                                         r"is not supported"):
        qsim.from_qiskit(qc)
    qc = qiskit.QuantumCircuit(1, 1)
    with qc.for_loop(range(2)):
        qc.x(0)
    with pytest.raises(ValueError, match=r"from_qiskit: instruction 0 'for_loop' .*loops and switch are not supported"):
        qsim.from_qiskit(qc)


def test_qiskit_dynamic_circuit(qiskit):
    """reset, measure then gate, and if_test (they were refused before mid-circuit measurement): the
    exact outcome-averaged probabilities, by hand."""
    qc = qiskit.QuantumCircuit(3, 2)
    qc.x(0); qc.reset(0); qc.h(1); qc.measure(1, 1); qc.x(1)
    with qc.if_test((qc.clbits[1], 1)):
        qc.x(2)
    with qc.if_test((qc.cregs[0], 3)):
        qc.h(0)
    circuit = qsim.from_qiskit(qc, dtype=jnp.complex128)
    assert circuit.is_dynamic and circuit.n_clbits == 2
    want = np.zeros(8)
    want[0b010], want[0b001] = 0.5, 0.5          # bit 1 = 0: wire 1 flipped to 1; bit 1 = 1: wire 2 set
    np.testing.assert_allclose(np.asarray(circuit.probs()), want, atol=1e-12)


# --- PennyLane -------------------------------------------------------------------------
@pytest.fixture
def pennylane():
    return pytest.importorskip("pennylane")


def pennylane_state(pennylane, tape, wires):
    """The state default.qubit gives for the tape's operations, over ``wires`` in that order."""
    tape = tape.copy(measurements=[pennylane.state()])
    return np.asarray(pennylane.execute([tape], pennylane.device("default.qubit", wires=wires))[0])


def pennylane_ops(pennylane, rng):
    a = lambda: float(rng.uniform(-np.pi, np.pi))    # noqa: E731
    p = pennylane
    return [
        p.StatePrep(np.exp(1j * np.arange(8)) / np.sqrt(8), wires=[0, 1, 2]),
        p.Hadamard(0), p.PauliX(1), p.PauliY(2), p.PauliZ(0), p.S(1), p.T(2), p.SX(0), p.Identity(1),
        p.RX(a(), 0), p.RY(a(), 1), p.RZ(a(), 2), p.PhaseShift(a(), 0), p.U1(a(), 1), p.U2(a(), a(), 2),
        p.U3(a(), a(), a(), 0), p.Rot(a(), a(), a(), 1), p.CNOT([0, 1]), p.CY([1, 2]), p.CZ([2, 0]),
        p.CH([0, 2]), p.SWAP([1, 2]), p.ISWAP([0, 1]), p.CRX(a(), [2, 1]), p.CRY(a(), [0, 2]),
        p.CRZ(a(), [1, 0]), p.ControlledPhaseShift(a(), [2, 0]), p.IsingXX(a(), [0, 1]),
        p.IsingYY(a(), [1, 2]), p.IsingZZ(a(), [2, 0]), p.Toffoli([0, 1, 2]), p.CSWAP([2, 0, 1]),
        p.adjoint(p.S(0)), p.adjoint(p.T(1)), p.ctrl(p.RY(a(), 2), control=[0, 1]),
        p.ctrl(p.PauliX(0), control=[1, 2], control_values=[1, 0]), p.QubitUnitary(random_unitary(rng, 4), [2, 0]),
        p.StronglyEntanglingLayers(rng.normal(size=(2, 3, 3)), wires=[0, 1, 2]), p.QFT(wires=[0, 1, 2]),
        p.GlobalPhase(a()), p.MultiRZ(a(), wires=[0, 1, 2]),
    ]


def test_every_kind_of_pennylane_operation(pennylane, rng):
    tape = pennylane.tape.QuantumScript(pennylane_ops(pennylane, rng), [pennylane.expval(pennylane.Z(0))])
    circuit = qsim.from_pennylane(tape, dtype=C128)
    np.testing.assert_allclose(np.asarray(circuit.state()), pennylane_state(pennylane, tape, 3),
                               atol=TOL[C128])


def test_pennylane_names_map_to_native_gates(pennylane):
    p = pennylane
    tape = p.tape.QuantumScript([p.Hadamard(0), p.CNOT([0, 1]), p.IsingZZ(0.3, [1, 2]), p.ISWAP([0, 2])])
    records, _ = qsim.from_pennylane(tape).program
    assert [r.gate.name for r in records] == ["h", "cnot", "rzz", "iswap"]


def test_pennylane_wire_labels(pennylane):
    p = pennylane
    ops = [p.Hadamard("b"), p.CNOT(["b", "a"]), p.RY(0.4, "c")]
    tape = p.tape.QuantumScript(ops)
    assert qsim.from_pennylane(tape).n_qubits == 3     # tape.wires order: b, a, c
    want = pennylane_state(p, tape, ["b", "a", "c"])
    np.testing.assert_allclose(np.asarray(qsim.from_pennylane(tape, dtype=C128).state()), want, atol=TOL[C128])
    np.testing.assert_allclose(np.asarray(qsim.from_pennylane(tape, wires=["c", "a", "b"], dtype=C128).state()),
                               pennylane_state(p, tape, ["c", "a", "b"]), atol=TOL[C128])


def test_pennylane_integer_wires_keep_their_numbers(pennylane):
    tape = pennylane.tape.QuantumScript([pennylane.PauliX(2)])
    circuit = qsim.from_pennylane(tape)
    assert circuit.n_qubits == 3 and int(np.argmax(np.abs(np.asarray(circuit.state())))) == 0b001


def test_pennylane_traced_parameters(pennylane):
    """A tape built from traced angles converts inside jit and grad; the gradient is PennyLane's.

    PennyLane's side is a central difference of its float64 expectation (step 1e-6: error ~1e-10).
    """
    p = pennylane

    def ops(x):
        return [p.RX(x, 0), p.CRY(2 * x, [0, 1]), p.Rot(x, 0.1, 0.2, 1), p.IsingXX(x / 3, [0, 1])]

    def ours(x):
        return qsim.from_pennylane(p.tape.QuantumScript(ops(x)), dtype=C128).expectation(qsim.Z(1))

    def theirs(x):
        tape = p.tape.QuantumScript(ops(x), [p.expval(p.Z(1))])
        return float(p.execute([tape], p.device("default.qubit", wires=2))[0])

    x, h = 0.3, 1e-6
    np.testing.assert_allclose(jax.jit(jax.grad(ours))(jnp.float64(x)), (theirs(x + h) - theirs(x - h)) / (2 * h),
                               atol=1e-8)


def test_pennylane_errors(pennylane):
    p = pennylane
    with pytest.raises(TypeError, match="from_pennylane: expected a pennylane QuantumScript / tape, got list"):
        qsim.from_pennylane([p.Hadamard(0)])
    with pytest.raises(ValueError, match=r"from_pennylane: the tape's wires \[0, 1\] must all be in wires=\[0\]"):
        qsim.from_pennylane(p.tape.QuantumScript([p.CNOT([0, 1])]), wires=[0])
    class Opaque(p.operation.Operation):
        num_wires = 1

    with pytest.raises(ValueError, match="from_pennylane: operation Opaque on wires \\[0\\] has neither a matrix "
                                         "nor a decomposition"):
        qsim.from_pennylane(p.tape.QuantumScript([Opaque(wires=0)]))
    mid = p.measurements.MidMeasureMP(wires=0)
    with pytest.raises(ValueError, match="from_pennylane: mid-circuit measurement on wire 0 is not supported"):
        qsim.from_pennylane(p.tape.QuantumScript([p.Hadamard(0), mid]))
