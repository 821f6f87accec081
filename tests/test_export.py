"""Circuit export: `to_qasm` (OpenQASM 2 text) and `draw` (text and matplotlib diagrams).

`to_qasm` is checked by round trips: the text read back by `qsim.from_qasm` and
by Qiskit's reader gives the circuit's own state (Qiskit's qubit order
reversed), for random circuits over every gate of the table, for every
``qelib1.inc`` gate read from QASM, and for user unitaries (which are
decomposed). Drawings are compared with expected text written by hand.
"""

import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import qsim
from qsim._export import draw, to_qasm
from qsim._gates import GATES
from qsim.qasm import qelib1
from reference import TOL

C128 = np.complex128
HEADER = 'OPENQASM 2.0;\ninclude "qelib1.inc";\n'


def random_unitary(rng, dim):
    q, r = np.linalg.qr(rng.normal(size=(dim, dim)) + 1j * rng.normal(size=(dim, dim)))
    return q * (np.diag(r) / np.abs(np.diag(r)))


def state(circuit):
    return np.asarray(circuit.state(), dtype=C128)


def qiskit_state(text):
    qasm2 = pytest.importorskip("qiskit.qasm2")
    Statevector = pytest.importorskip("qiskit.quantum_info").Statevector
    circ = qasm2.loads(text, custom_instructions=qasm2.LEGACY_CUSTOM_INSTRUCTIONS)
    circ.remove_final_measurements()
    return Statevector(circ).reverse_qargs().data


def assert_round_trip(circuit, qiskit=True):
    """to_qasm's text gives the circuit's state through qsim.from_qasm and (optionally) Qiskit's reader."""
    text = to_qasm(circuit)
    want = state(circuit)
    back = qsim.from_qasm(text, dtype=C128)
    np.testing.assert_allclose(state(back), want, atol=TOL[C128])
    if qiskit:
        np.testing.assert_allclose(qiskit_state(text), want, atol=TOL[C128])
    return text, back


# --- table gates ------------------------------------------------------------------------
def test_every_table_gate_has_an_openqasm_name():
    assert set(qelib1.EXPORT_NAMES) == set(GATES)
    assert set(qelib1.EXPORT_NAMES.values()) <= set(qelib1.QELIB1) | set(qelib1.DEFINITIONS)


@pytest.mark.parametrize("name", sorted(qelib1.DEFINITIONS))
def test_definitions_give_the_table_matrix(name):
    """ryy and iswap, written as qelib1 gate definitions, act as the table's matrices."""
    g = GATES[name]
    params = (0.37,) * g.n_params
    wires = ", ".join(f"q[{i}]" for i in range(g.n_wires))
    call = f"{name}({', '.join(map(str, params))}) {wires};" if params else f"{name} {wires};"
    k = g.n_wires
    text = f"{HEADER}{qelib1.DEFINITIONS[name]}\nqreg q[{k}];\nqreg r[{k}];\nh r;\ncx r, q;\n{call}"
    u = state(qsim.from_qasm(text, dtype=C128)).reshape(1 << k, 1 << k) * np.sqrt(1 << k)
    circuit = getattr(qsim.Circuit(k, dtype=C128), name)(*range(k), *params)
    for j in range(1 << k):     # column j of the table gate: its action on basis state j
        start = np.zeros(1 << k, C128)
        start[j] = 1
        col = state(getattr(qsim.Circuit(k, start, dtype=C128), name)(*range(k), *params))
        np.testing.assert_allclose(u[:, j], col, atol=TOL[C128])
    assert circuit.n_ops == 1


def random_circuit(rng, n=4, n_gates=60):
    """Random gates of every table method (and user unitaries) with random wires and angles."""
    c = qsim.Circuit(n, dtype=C128)
    for q in range(n):
        c.h(q)
    names = sorted(GATES)
    for i in range(n_gates):
        name = names[i % len(names)] if i < len(names) else names[rng.integers(len(names))]
        g = GATES[name]
        wires = [int(w) for w in rng.permutation(n)[:g.n_wires]]
        getattr(c, name)(*wires, *rng.uniform(-np.pi, np.pi, g.n_params))
    return c


@pytest.mark.parametrize("seed", range(3))
def test_random_circuits_round_trip(seed):
    rng = np.random.default_rng(seed)
    text, _ = assert_round_trip(random_circuit(rng))
    assert "gate ryy(theta)" in text and "gate iswap" in text


@pytest.mark.parametrize("name", sorted(qelib1.QELIB1))
def test_every_qelib1_gate_round_trips(name):
    """Each qelib1 gate, read by from_qasm (natively or as a user matrix), written back and read again."""
    gate = qelib1.QELIB1[name]
    params = (2,) if name == "u0" else (0.7, -1.3, 2.1, 0.4)[:gate.n_params]
    call = f"({', '.join(map(str, params))})" if params else ""
    k = gate.n_qubits
    text = f"{HEADER}qreg q[{k}];\nh q;\nry(0.3) q[0];\n{name}{call} {', '.join(f'q[{i}]' for i in range(k))};"
    assert_round_trip(qsim.from_qasm(text, dtype=C128))


# --- user unitaries ---------------------------------------------------------------------
USER = {
    "one_qubit": lambda c, rng: c.unitary(random_unitary(rng, 2), 1),
    "one_qubit_diagonal": lambda c, rng: c.unitary(np.diag(np.exp(1j * rng.normal(size=2))), 2),
    "two_qubit": lambda c, rng: c.unitary(random_unitary(rng, 4), (2, 0)),
    "two_qubit_diagonal": lambda c, rng: c.unitary(np.diag(np.exp(1j * rng.normal(size=4))), (1, 2)),
    "controlled_one_qubit": lambda c, rng: c.controlled(random_unitary(rng, 2), 2, 0),
    "controlled_diagonal": lambda c, rng: c.controlled(np.diag(np.exp(1j * rng.normal(size=2))), 0, 1),
    "controlled_x_by_three": lambda c, rng: c.controlled(np.array([[0, 1], [1, 0]]), (0, 1, 3), 2),
    "controlled_swap": lambda c, rng: c.controlled(np.eye(4)[[0, 2, 1, 3]], 1, (3, 0)),
    "unitary_of_a_two_qubit_identity": lambda c, rng: c.unitary(np.eye(4), (0, 3)),
    "unitary_of_a_controlled_gate": lambda c, rng: c.unitary(np.kron(np.diag([1, 0]), np.eye(2))
                                                             + np.kron(np.diag([0, 1]), random_unitary(rng, 2)),
                                                             (3, 1)),
}


@pytest.mark.parametrize("make", USER.values(), ids=USER.keys())
def test_user_unitaries_round_trip(make, rng):
    c = qsim.Circuit(4, dtype=C128).h(0).h(1).ry(2, 0.4).rx(3, -0.8)
    make(c, rng)
    c.cnot(1, 2).rz(0, 0.25)
    assert_round_trip(c)


def test_global_phase_is_kept():
    c = qsim.Circuit(1, dtype=C128).h(0).unitary(np.exp(0.3j) * np.eye(2), 0)
    text, back = assert_round_trip(c)
    assert "// global phase e^(i*0.3" in text


def test_three_qubit_unitary_is_a_clear_error(rng):
    c = qsim.Circuit(3).h(0).unitary(random_unitary(rng, 8), (0, 1, 2))
    with pytest.raises(ValueError, match=r"to_qasm: gate #1 'unitary' on wires \(0, 1, 2\) has no OpenQASM 2 form"):
        to_qasm(c)


def test_repeat_is_written_layer_by_layer():
    def layer(c, w):
        c.ry(0, w[0]).cnot(0, 1).rz(1, w[1])

    weights = np.array([[0.1, 0.2], [0.3, -0.4], [1.5, 0.6]])
    c = qsim.Circuit(2, dtype=C128).repeat(layer, weights)
    text, _ = assert_round_trip(c)
    assert text.count("ry(") == 3 and "rz(-0.4) q[1];" in text


def test_traced_parameters_are_a_clear_error():
    @jax.jit
    def f(t):
        to_qasm(qsim.Circuit(1).rx(0, t))
        return t

    with pytest.raises(ValueError, match=r"to_qasm: a parameter of gate 'rx' on wires \(0,\) is traced"):
        f(0.3)


def test_traced_repeat_is_a_clear_error():
    def layer(c, w):
        c.ry(0, w)

    @jax.jit
    def f(w):
        to_qasm(qsim.Circuit(1).repeat(layer, w))
        return w

    with pytest.raises(ValueError, match=r"to_qasm: the parameters of a repeat\(\) are traced"):
        f(jnp.ones(3))


def test_unknown_record_is_a_clear_error():
    class Stub:
        n_qubits, measurements, program = 1, {}, ((object(),), ((),))

    with pytest.raises(TypeError, match="to_qasm: cannot read a circuit record of type object"):
        to_qasm(Stub())


def test_bad_classical_bit_is_a_clear_error():
    """Circuit.measure now takes int classical bits only (they index `run`'s columns); a
    measurements dict holding something else (set by hand) is still refused by the export."""
    with pytest.raises(ValueError, match=r"Circuit.measure: clbit must hold non-negative int classical bit "
                                         r"indices, got 'x'"):
        qsim.Circuit(1).measure(0, clbit="x")
    c = qsim.Circuit(1).measure(0)
    c.measurements[0] = "x"
    with pytest.raises(ValueError, match=r"to_qasm: a classical bit must be an int >= 0 or a \(creg name, index\) "
                                         r"pair, got 'x'"):
        to_qasm(c)


def test_non_finite_parameter_is_a_clear_error():
    """Circuit.rx rejects inf itself, but a repeat() layer computes its angles inside a trace."""
    def layer(c, w):
        c.rx(0, 1.0 / w)

    with pytest.raises(ValueError, match=r"to_qasm: gate 'rx' on wires \(0,\) has a parameter inf"):
        to_qasm(qsim.Circuit(1).repeat(layer, np.zeros(1)))


def test_exact_text_with_measurements():
    c = qsim.Circuit(3).h(0).cnot(0, 1).phase(2, 0.5).rzz(1, 2, -0.25).measure(0).measure(2, clbit=3)
    assert to_qasm(c) == textwrap.dedent("""\
        OPENQASM 2.0;
        include "qelib1.inc";
        qreg q[3];
        creg c[4];
        h q[0];
        cx q[0], q[1];
        p(0.5) q[2];
        rzz(-0.25) q[1], q[2];
        measure q[0] -> c[0];
        measure q[2] -> c[3];
        """)
    assert qsim.from_qasm(to_qasm(c)).measurements == {0: ("c", 0), 2: ("c", 3)}


def test_measurements_into_named_registers_round_trip():
    text = HEADER + "qreg q[2];\nqreg r[1];\ncreg m[2];\ncreg d[1];\nh q;\nmeasure q -> m;\nmeasure r[0] -> d[0];\n"
    circuit = qsim.from_qasm(text)
    assert "creg m[2];\ncreg d[1];" in to_qasm(circuit)
    assert qsim.from_qasm(to_qasm(circuit)).measurements == circuit.measurements


def test_float32_angles_are_written_shortest():
    assert "rx(0.3) q[0];" in to_qasm(qsim.Circuit(1).rx(0, 0.3))


# --- drawings ---------------------------------------------------------------------------
def test_draw_bell_with_measurements():
    c = qsim.Circuit(2).h(0).cnot(0, 1).measure(0).measure(1)
    assert draw(c) == textwrap.dedent("""\
        0: ──H─╭●─┤↗├ c[0]
        1: ────╰X─┤↗├ c[1]""")


def test_draw_controls_boxes_and_crossings():
    c = (qsim.Circuit(3).rx(2, 0.3).crz(2, 0, 0.5).swap(0, 2).toffoli(0, 1, 2).sdg(1).ryy(1, 2, 0.7)
         .cz(0, 2).unitary(np.array([[0, 1j], [1j, 0]]), 1))
    assert draw(c) == textwrap.dedent("""\
        0: ───────────╭RZ(0.50)─╭SWAP─╭●───────────────╭●───┤
        1: ───────────│─────────│─────├●─S†─╭RYY(0.70)─│──U─┤
        2: ──RX(0.30)─╰●────────╰SWAP─╰X────╰RYY(0.70)─╰Z───┤""")


def test_draw_decimals_and_wrapping():
    c = qsim.Circuit(2).u3(0, 0.1234, 2, -3).cphase(0, 1, np.pi).rx(1, 1.0)
    assert draw(c, decimals=1) == textwrap.dedent("""\
        0: ──U3(0.1,2.0,-3.0)─╭●──────────────┤
        1: ───────────────────╰P(3.1)─RX(1.0)─┤""")
    assert draw(c, decimals=None) == "0: ──U3─╭●────┤\n1: ─────╰P─RX─┤"
    assert draw(c, decimals=None, max_length=16) == textwrap.dedent("""\
        0: ──U3─╭●─ ···
        1: ─────╰P─ ···

        0: ··· ───┤
        1: ··· RX─┤""")


def test_draw_repeat_and_traced_parameters():
    def layer(c, w):
        c.ry(0, w).cnot(0, 1)

    c = qsim.Circuit(2).repeat(layer, np.array([0.5, 1.5]))
    assert draw(c) == "0: ──RY(0.50)─╭●─RY(1.50)─╭●─┤\n1: ───────────╰X──────────╰X─┤"

    @jax.jit
    def f(t):
        return jnp.float32(len(draw(qsim.Circuit(1).rx(0, t))))

    assert int(f(0.3)) == len("0: ──RX─┤")


def test_draw_bad_arguments():
    with pytest.raises(ValueError, match=r"draw: output must be 'text' or 'mpl', got 'svg'"):
        draw(qsim.Circuit(1), output="svg")
    with pytest.raises(ValueError, match=r"draw: decimals must be a non-negative int or None, got -1"):
        draw(qsim.Circuit(1), decimals=-1)


def test_draw_mpl_returns_a_figure():
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    c = qsim.Circuit(3).h(0).cnot(0, 2).rx(1, 0.2).measure(2)
    fig = draw(c, output="mpl")
    assert isinstance(fig, Figure)
    texts = {t.get_text() for t in fig.axes[0].texts}
    assert {"H", "X", "RX(0.20)", "↗", "c[2]"} <= texts


def test_text_drawing_does_not_import_matplotlib():
    code = ("import sys, qsim; from qsim._export import draw; draw(qsim.Circuit(2).h(0).cnot(0, 1)); "
            "assert 'matplotlib' not in sys.modules, 'matplotlib was imported'")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=120)


def test_circuit_methods_call_the_exporters():
    c = qsim.Circuit(2).h(0).cnot(0, 1).rz(1, 0.25)
    assert c.to_qasm() == to_qasm(c)
    assert c.draw() == draw(c)
    back = qsim.from_qasm(c.to_qasm())
    np.testing.assert_allclose(np.asarray(back.state()), np.asarray(c.state()), atol=1e-6)
    with pytest.raises(ValueError, match="custom state"):
        qsim.Circuit(1, state=[0, 1]).to_qasm()
