"""OpenQASM 2.0 conformance: `qsim.from_qasm` against Qiskit's reader, statement by statement.

Each case is a small program. Qiskit's ``qiskit.qasm2.loads`` (with its legacy
qelib1 gates) is the reference: qsim must accept exactly what Qiskit accepts,
give the same state (Qiskit's qubit 0 is its least significant bit, qsim's
wire 0 the most significant: the bit order is reversed before comparing), and
reject what Qiskit rejects with a ``line N:`` message naming Qiskit's line.
`DIFFERENCES` lists where qsim deliberately differs, and why.
"""

import re

import numpy as np
import pytest

import qsim
from reference import TOL

qasm2 = pytest.importorskip("qiskit.qasm2")
Statevector = pytest.importorskip("qiskit.quantum_info").Statevector

HEADER = 'OPENQASM 2.0;\ninclude "qelib1.inc";\n'
C128 = np.complex128

# id -> program body after HEADER (a body starting with "!" is the whole program, without HEADER)
ACCEPTED = {
    # barrier: any qubits and registers, of any sizes, repeated or none; also in gate bodies
    "barrier_registers_of_different_sizes": "qreg anc[1]; qreg data[3]; h anc; barrier anc, data; cx anc[0], data[2];",
    "barrier_mixed_and_repeated": "qreg q[2]; qreg r[1]; h q; barrier q, r[0], q[1]; barrier q[0], q[0]; x r;",
    "barrier_without_arguments": "qreg q[2]; h q[0]; barrier; cx q[0], q[1];",
    "barrier_in_gate_body": "gate g a, b { h a; barrier a, b; barrier a; cx a, b; } qreg q[2]; g q[0], q[1];",
    # broadcasting: registers element-wise (equal sizes), single qubits repeated
    "broadcast_registers": "qreg a[3]; qreg b[3]; h a; cx a, b;",
    "broadcast_qubit_and_register": "qreg a[1]; qreg b[3]; h a; cx a[0], b; rz(0.3) b;",
    "broadcast_three_registers": "qreg a[2]; qreg b[2]; qreg c[2]; h a; h b; ccx a, b, c;",
    "broadcast_user_gate": "gate g(t) x, y { cx x, y; rz(t) y; } qreg a[2]; qreg b[2]; h a; g(0.4) a, b;",
    "broadcast_over_empty_register": "qreg e[0]; qreg q[2]; h e; cx e, q[0]; h q;",
    # gate definitions
    "gates_call_earlier_gates": "gate a1(t) x { rz(t) x; ry(t/2) x; } "
                                "gate a2(t, s) x, y { a1(t*s) x; cx x, y; a1(-t) y; } "
                                "gate a3 x, y, z { a2(0.3, 2) z, x; a2(pi/5, -1) y, z; h y; } "
                                "qreg q[3]; a3 q[0], q[1], q[2];",
    "gate_parameter_shadows_gate_name": "qreg q[1]; gate g(h) a { rx(h) a; } g(0.3) q[0];",
    "gate_qubit_shadows_register_name": "qreg q[1]; gate g(t) q { rx(t) q; } g(0.7) q[0];",
    "gate_qubit_shadows_gate_name": "gate g h { x h; } qreg q[1]; g q[0];",
    "gate_empty_body_and_parentheses": "gate g() a { } gate f() a { h a; } qreg q[1]; f() q[0]; f q[0]; g q[0];",
    "gate_uses_builtins": "gate g a, b { U(0.1, 0.2, 0.3) a; CX a, b; } qreg q[2]; g q[0], q[1];",
    "opaque_declared_not_applied": "opaque o(t) a, b; qreg q[2]; h q[0];",
    "opaque_called_by_unused_gate": "opaque o a; gate g a { o a; } qreg q[1]; h q[0];",
    "builtins_without_include": "!OPENQASM 2.0; qreg q[2]; U(0.5, 0.1, -0.2) q[0]; CX q[0], q[1];",
    # header and include
    "include_after_declarations": '!OPENQASM 2.0; qreg q[1]; include "qelib1.inc"; h q[0];',
    "no_version_statement": '!include "qelib1.inc"; qreg q[1]; h q[0];',
    "version_as_integer": '!OPENQASM 2; include "qelib1.inc"; qreg q[1]; x q[0];',
    # lexical details
    "empty_statements": "qreg q[1];; h q[0]; ; gate g a { h a; };",
    "trailing_commas": "qreg q[2]; gate g(t,) a, b, { rz(t,) a; cx a, b,; } h q[0]; g(0.5,) q[0], q[1],; "
                       "barrier q[0],;",
    "comments_everywhere": "// c\nqreg q[1]; // x\nrz(pi // half\n/2) q[0]; h // here\n q[0];",
    "identifiers_with_digits_underscores_capitals": "qreg q_1A[2]; gate my_Gate2(theta_1) a_b { rx(theta_1) a_b; } "
                                                   "my_Gate2(0.2) q_1A[1];",
    "whitespace_layouts": "qreg q\n[\n2\n]\n;\nh q [ 0 ] ;\ncx\nq[0]\n,\nq[1];",
    "expressions": "qreg q[1]; rz(-2^2 + 2^3^2/100 - sin(pi/6)*cos(0) + tan(0.1) - exp(-1) + ln(2) * sqrt(3)) q[0]; "
                   "rx(--1 + +0.5 - 1.5e-1 + .25 + 2. + 1E1/20) q[0];",
    "real_with_leading_zero": "qreg q[1]; rx(01.5) q[0];",
    "terminal_measure_broadcast": "qreg q[2]; creg c[2]; h q; cx q[0], q[1]; measure q -> c;",
}

REJECTED = {
    # lexical: OpenQASM 2.0 has only // comments, lowercase-initial identifiers, no leading zeros
    "block_comment": "/* comment */ qreg q[1];",
    "uppercase_identifier": "qreg Q[1];",
    "underscore_identifier": "qreg _q[1];",
    "non_ascii_identifier": "qreg é[1];",
    "uppercase_pi": "qreg q[1]; rx(PI) q[0];",
    "leading_zero_index": "qreg q[2]; h q[01];",
    "leading_zero_parameter": "qreg q[1]; rx(007) q[0];",
    "hex_literal": "qreg q[1]; rx(0x10) q[0];",
    "string_parameter": 'qreg q[1]; rx("a") q[0];',
    "function_not_in_openqasm2": "qreg q[1]; rx(asin(1)) q[0];",
    "empty_parameter": "qreg q[1]; rx(,) q[0];",
    "trailing_garbage": "qreg q[1]; h q[0]; }",
    # header and include
    "version_2_1": "!OPENQASM 2.1; qreg q[1];",
    "include_twice": 'include "qelib1.inc"; qreg q[1];',
    "qelib1_gate_without_include": "!OPENQASM 2.0; qreg q[2]; cx q[0], q[1];",
    "not_in_qelib1": "qreg q[2]; ryy(0.1) q[0], q[1];",
    # names
    "redefine_qelib1_gate": "gate h a { x a; }",
    "redefine_builtin": "!OPENQASM 2.0; gate U(a, b, c) q { }",
    "redefine_user_gate": "gate g a { x a; } gate g a { y a; }",
    "register_named_like_gate": "qreg h[1];",
    "gate_named_like_register": "qreg q[1]; gate q a { x a; }",
    "creg_named_like_qreg": "qreg q[1]; creg q[1];",
    "reserved_register_name": "qreg gate[1];",
    "reserved_pi_register": "qreg pi[1];",
    "reserved_parameter_name": "gate g(pi) a { }",
    "unknown_gate": "qreg q[1]; foo q[0];",
    "undeclared_register": "qreg q[1]; h r[0];",
    "index_out_of_range": "qreg q[2]; h q[2];",
    # gate definitions
    "recursive_gate": "gate g a { g a; }",
    "gate_before_definition": "gate g a { f a; } gate f a { h a; }",
    "gate_without_qubits": "gate g() { }",
    "gate_repeats_a_name": "gate g(a) a { }",
    "gate_body_indexes_qubit": "gate g a { h a[0]; }",
    "gate_body_uses_register": "qreg q[1]; gate g a { h q; }",
    "gate_body_measure": "gate g a { measure a -> c[0]; }",
    "gate_body_reset": "gate g a { reset a; }",
    "gate_body_if": "gate g a { if (c == 1) x a; }",
    "gate_body_empty_statement": "gate g a { ; }",
    "gate_body_missing_semicolon": "gate g a { h a }",
    "gate_parameter_used_as_qubit": "gate g(t) a { rx(a) a; }",
    "gate_body_undefined_parameter": "gate g(a) q { rx(b) q; }",
    "gate_body_repeats_qubit": "gate g a, b { cx a, a; }",
    "wrong_parameter_count": "gate g(a, b) q { } qreg r[1]; g(1) r[0];",
    "wrong_qubit_count": "qreg q[2]; cx q[0];",
    # broadcasting and repeated qubits
    "repeated_qubit": "qreg q[2]; cx q[0], q[0];",
    "repeated_by_broadcast": "qreg q[2]; cx q[0], q;",
    "register_against_itself": "qreg q[2]; cx q, q;",
    "registers_of_different_sizes": "qreg q[2]; qreg r[3]; cx q, r;",
    "measure_sizes_differ": "qreg q[2]; creg c[3]; measure q -> c;",
    "measure_register_to_bit": "qreg q[2]; creg c[2]; measure q -> c[0];",
    "measure_bit_to_register": "qreg q[1]; creg c[1]; measure q[0] -> c;",
    "measure_without_arrow": "qreg q[1]; creg c[1]; measure q[0], c[0];",
    "measure_trailing_comma": "qreg q[2]; creg c[2]; measure q[0], -> c[0];",
    "reset_trailing_comma": "qreg q[1]; reset q[0],;",
    # classical control
    "if_on_a_bit": "qreg q[1]; creg c[2]; if (c[0] == 1) x q[0];",
    "if_on_a_qreg": "qreg q[1]; creg c[2]; if (q == 1) x q[0];",
    "if_negative_value": "qreg q[1]; creg c[2]; if (c == -1) x q[0];",
    "if_barrier": "qreg q[1]; creg c[2]; if (c == 1) barrier q[0];",
    # parameter values
    "division_by_zero": "qreg q[1]; rx(1/0) q[0];",
    "log_of_zero": "qreg q[1]; rx(ln(0)) q[0];",
    "sqrt_of_negative": "qreg q[1]; rx(sqrt(-1)) q[0];",
    "u0_fraction": "qreg q[1]; u0(0.5) q[0];",
}

# Where qsim deliberately differs from Qiskit's reader (Qiskit accepts these): id -> (body, qsim's error, why).
DIFFERENCES = {
    "if_measure": ("qreg q[1]; creg c[2]; if (c == 3) measure q[0] -> c[0];",
                   r"^line 3: a conditioned measure \('if \(\.\.\.\) measure'\) is not supported",
                   "only gates are classically controlled (the SPEC's if(creg==k) gate)"),
    "if_reset": ("qreg q[1]; creg c[2]; if (c == 3) reset q[0];",
                 r"^line 3: a conditioned reset \('if \(\.\.\.\) reset'\) is not supported", "as above"),
    "opaque_applied": ("opaque o a; qreg q[1]; o q[0];", r"^line 3: gate 'o' is declared opaque",
                       "an opaque gate has no matrix to simulate"),
    "infinite_parameter": ("qreg q[1]; rx(1e999) q[0];", r"^line 3: parameter evaluates to inf",
                           "a state from an infinite angle is all nan"),
    "no_qubits": ("creg c[1];", r"^line 3: the program declares no qubits", "a Circuit has at least one wire"),
}


# Dynamic programs both readers accept (they were deliberate differences until mid-circuit measurement,
# reset and if were supported): id -> (body, exact outcome-averaged probabilities of the final wires).
DYNAMIC = {
    "mid_circuit_measure": ("qreg q[1]; creg c[1]; measure q[0] -> c[0]; h q[0];", [0.5, 0.5]),
    "measure_then_gate": ("qreg q[1]; creg c[1]; h q[0]; measure q[0] -> c[0]; h q[0];", [0.5, 0.5]),
    "reset": ("qreg q[1]; x q[0]; reset q[0];", [1, 0]),
    "if_never_true": ("qreg q[1]; creg c[2]; if (c == 3) x q[0];", [1, 0]),
    "if_true": ("qreg q[2]; creg c[2]; x q[0]; measure q[0] -> c[0]; if (c == 1) x q[1];", [0, 0, 0, 1]),
    "if_value_beyond_register": ("qreg q[1]; creg c[1]; x q[0]; measure q[0] -> c[0]; if (c == 3) x q[0];",
                                 [0, 1]),
}


def program(body):
    return body[1:] if body.startswith("!") else HEADER + body


def qiskit_load(text):
    return qasm2.loads(text, custom_instructions=qasm2.LEGACY_CUSTOM_INSTRUCTIONS)


def qiskit_state(circ):
    """Qiskit's state (final measurements removed) in qsim's wire order."""
    circ = circ.copy()
    circ.remove_final_measurements()
    return Statevector(circ).reverse_qargs().data


@pytest.mark.parametrize("body", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_accepted_like_qiskit(body):
    text = program(body)
    circ = qiskit_load(text)
    circuit = qsim.from_qasm(text, dtype=C128)
    assert circuit.n_qubits == circ.num_qubits
    np.testing.assert_allclose(np.asarray(circuit.state()), qiskit_state(circ), atol=TOL[C128])


@pytest.mark.parametrize("body", REJECTED.values(), ids=REJECTED.keys())
def test_rejected_like_qiskit(body):
    """Both reject; qsim names the line Qiskit names (when Qiskit names one)."""
    text = program(body)
    with pytest.raises(qasm2.QASM2ParseError) as theirs:
        qiskit_load(text)
    with pytest.raises(qsim.QasmError, match=r"^line \d+: ") as ours:
        qsim.from_qasm(text)
    where = re.search(r"<input>:(\d+),\d+:", str(theirs.value))
    if where:
        assert str(ours.value).startswith(f"line {where.group(1)}: "), (str(ours.value), str(theirs.value))


@pytest.mark.parametrize("body, message, why", DIFFERENCES.values(), ids=DIFFERENCES.keys())
def test_deliberate_differences(body, message, why):
    qiskit_load(program(body))          # Qiskit accepts
    with pytest.raises(qsim.QasmError, match=message):
        qsim.from_qasm(program(body))


def test_too_many_qubits_names_the_line():
    """Qiskit fails with "Register size too large"; qsim says how much memory the state needs, at the line."""
    text = HEADER + "qreg a[2];\nqreg big[1000000000000];\nh a;"
    with pytest.raises(qsim.StateTooLargeError, match=r"^line 4: qreg big\[1000000000000\] brings the program to "
                                                       r"1000000000002 qubits"):
        qsim.from_qasm(text)


def test_too_many_qubits_for_memory():
    text = HEADER + "qreg q[2];\nqreg r[60];\nh q;"
    with pytest.raises(qsim.StateTooLargeError, match=r"^line 4: qreg r\[60\] brings the program to 62 qubits: "
                                                       r"from_qasm: 62 qubits in complex64 need"):
        qsim.from_qasm(text)
    assert issubclass(qsim.StateTooLargeError, ValueError)


def test_error_reported_at_its_statement_not_a_later_one():
    """A statement's own error comes before any error in the text after it (nothing past ';' is read)."""
    with pytest.raises(qsim.QasmError, match=r"^line 3: 'q' is already defined"):
        qsim.from_qasm(HEADER + "qreg q[1]; qreg q[2];\nQ q;")


@pytest.mark.parametrize("body, probs", DYNAMIC.values(), ids=DYNAMIC.keys())
def test_dynamic_accepted_like_qiskit(body, probs):
    """Qiskit reads these too; qsim's exact outcome-averaged probabilities are the hand-computed ones."""
    qiskit_load(program(body))
    circuit = qsim.from_qasm(program(body), dtype=C128)
    np.testing.assert_allclose(np.asarray(circuit.probs()), probs, atol=TOL[C128])
