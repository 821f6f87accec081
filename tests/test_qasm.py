"""OpenQASM 2.0 import (`qsim.from_qasm`) against independent references.

- every qelib1.inc gate: its unitary, read off a one-gate program, against closed
  forms written here (no qiskit needed) and against Qiskit's `Operator`;
- the QASMBench corpus (tests/data/qasmbench, see its README): final states
  against Qiskit's, the unsupported programs and the invalid ones with the
  line Qiskit reports;
- random programs over several registers against Qiskit;
- expressions, user gates, broadcasting, comments, statement records, a program
  with thousands of gate definitions, and every error path.

Conformance with Qiskit's reader, statement by statement, is in test_qasm_conformance.py.

A gate's unitary U (k qubits) is read from ONE program on 2k qubits: ``h r;
cx r, q;`` makes the maximally entangled state sum_j |j>_q |j>_r / sqrt(d),
the gate on q turns it into sum_j (U|j>)_q |j>_r / sqrt(d), so the state
reshaped to (d, d) and scaled by sqrt(d) is U (q is declared first: its wires
are the most significant, and q[0] is U's most significant bit).
"""

import importlib.util
import math
import re
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import qsim
from qsim.qasm import Statement, parse
from reference import TOL

CORPUS = Path(__file__).resolve().parent / "data" / "qasmbench"
HEADER = 'OPENQASM 2.0;\ninclude "qelib1.inc";\n'
C128 = np.complex128

# Every gate a program may use after `include "qelib1.inc"` (plus the builtins U
# and CX): name -> (number of parameters, number of qubits), from qelib1.inc.
QELIB1 = {
    "u3": (3, 1), "u2": (2, 1), "u1": (1, 1), "u0": (1, 1), "u": (3, 1), "p": (1, 1),
    "cx": (0, 2), "id": (0, 1), "x": (0, 1), "y": (0, 1), "z": (0, 1), "h": (0, 1),
    "s": (0, 1), "sdg": (0, 1), "t": (0, 1), "tdg": (0, 1), "rx": (1, 1), "ry": (1, 1), "rz": (1, 1),
    "sx": (0, 1), "sxdg": (0, 1), "cz": (0, 2), "cy": (0, 2), "swap": (0, 2), "ch": (0, 2),
    "ccx": (0, 3), "cswap": (0, 3), "crx": (1, 2), "cry": (1, 2), "crz": (1, 2), "cu1": (1, 2),
    "cp": (1, 2), "cu3": (3, 2), "csx": (0, 2), "cu": (4, 2), "rxx": (1, 2), "rzz": (1, 2),
    "rccx": (0, 3), "rc3x": (0, 4), "c3x": (0, 4), "c3sqrtx": (0, 4), "c4x": (0, 5),
    "U": (3, 1), "CX": (0, 2),
}
PARAMS = (0.7, -1.3, 2.1, 0.4)   # arbitrary angles, different enough to tell parameters apart


# --- closed forms (big-endian: the first qubit argument is the most significant bit)
def _diag(*d):
    return np.diag(np.array(d, dtype=complex))


X = np.array([[0, 1], [1, 0]], complex)
Y = np.array([[0, -1j], [1j, 0]], complex)
Z = _diag(1, -1)
H = np.array([[1, 1], [1, -1]], complex) / math.sqrt(2)
SX = np.array([[1 + 1j, 1 - 1j], [1 - 1j, 1 + 1j]]) / 2
SWAP = np.eye(4)[[0, 2, 1, 3]].astype(complex)


def u3(t, p, l):
    return np.array([[math.cos(t / 2), -np.exp(1j * l) * math.sin(t / 2)],
                     [np.exp(1j * p) * math.sin(t / 2), np.exp(1j * (p + l)) * math.cos(t / 2)]])


def rot(pauli, t):
    """exp(-i t P / 2) for a Pauli word P."""
    return math.cos(t / 2) * np.eye(len(pauli)) - 1j * math.sin(t / 2) * pauli


def ctrl(u, n=1):
    """``u`` where the ``n`` leading qubits are all 1."""
    out = np.eye(len(u) << n, dtype=complex)
    out[-len(u):, -len(u):] = u
    return out


def block_diag(*blocks):
    out = np.zeros((sum(map(len, blocks)),) * 2, complex)
    i = 0
    for b in blocks:
        out[i:i + len(b), i:i + len(b)] = b
        i += len(b)
    return out


p0, p1, p2, p3 = PARAMS
CLOSED_FORMS = {
    "u3": u3(p0, p1, p2), "u2": u3(math.pi / 2, p0, p1), "u1": _diag(1, np.exp(1j * p0)), "u0": np.eye(2),
    "u": u3(p0, p1, p2), "U": u3(p0, p1, p2), "p": _diag(1, np.exp(1j * p0)), "id": np.eye(2),
    "x": X, "y": Y, "z": Z, "h": H, "s": _diag(1, 1j), "sdg": _diag(1, -1j),
    "t": _diag(1, np.exp(1j * math.pi / 4)), "tdg": _diag(1, np.exp(-1j * math.pi / 4)),
    "rx": rot(X, p0), "ry": rot(Y, p0), "rz": _diag(np.exp(-0.5j * p0), np.exp(0.5j * p0)),
    "sx": SX, "sxdg": SX.conj().T, "cx": ctrl(X), "CX": ctrl(X), "cy": ctrl(Y), "cz": ctrl(Z),
    "ch": ctrl(H), "swap": SWAP, "ccx": ctrl(X, 2), "cswap": ctrl(SWAP), "crx": ctrl(rot(X, p0)),
    "cry": ctrl(rot(Y, p0)), "crz": ctrl(_diag(np.exp(-0.5j * p0), np.exp(0.5j * p0))),
    "cu1": ctrl(_diag(1, np.exp(1j * p0))), "cp": ctrl(_diag(1, np.exp(1j * p0))),
    "cu3": ctrl(u3(p0, p1, p2)), "csx": ctrl(SX), "cu": ctrl(np.exp(1j * p3) * u3(p0, p1, p2)),
    "rxx": rot(np.kron(X, X), p0), "rzz": rot(np.kron(Z, Z), p0),
    # Relative-phase Toffolis (Qiskit's RCCXGate, RC3XGate). rccx a,b,c: Z on c
    # where a=1, b=0 and Y on c where a=b=1. rc3x a,b,c,d: where a=b=1, i Z on d
    # if c=0 and i Y on d if c=1.
    "rccx": ctrl(block_diag(Z, Y)),
    "rc3x": ctrl(1j * block_diag(Z, Y), 2),
    "c3x": ctrl(X, 3), "c3sqrtx": ctrl(SX, 3), "c4x": ctrl(X, 4),
}


def one_gate(name):
    """A statement applying ``name`` to q[0], q[1], ... with the first PARAMS."""
    n_params, k = QELIB1[name]
    values = (2,) if name == "u0" else PARAMS[:n_params]   # u0(n): n idle cycles, an integer for Qiskit
    params = f"({', '.join(map(repr, values))})" if n_params else ""
    return f"{name}{params} {', '.join(f'q[{i}]' for i in range(k))};", k


def qasm_unitary(statement, k, dtype=C128):
    """The unitary of ``statement`` on q[0..k-1], read from one 2k-qubit program (module docstring)."""
    text = f"{HEADER}qreg q[{k}];\nqreg r[{k}];\nh r;\ncx r, q;\n{statement}\n"
    psi = np.asarray(qsim.from_qasm(text, dtype=dtype).state())
    dim = 1 << k
    return psi.reshape(dim, dim) * math.sqrt(dim)


# --- Qiskit references ---------------------------------------------------------
def qiskit_circuit(text):
    qasm2 = pytest.importorskip("qiskit.qasm2")
    return qasm2.loads(text, custom_instructions=qasm2.LEGACY_CUSTOM_INSTRUCTIONS)


def big_endian(u):
    """Qiskit's little-endian operator with its qubit order reversed (qubit 0 most significant)."""
    k = int(np.log2(len(u)))
    rev = list(range(k - 1, -1, -1))
    return u.reshape((2,) * 2 * k).transpose(rev + [k + r for r in rev]).reshape(u.shape)


def qiskit_state(text):
    """Qiskit's final state (measurements removed) in qsim's wire order, complex128."""
    Statevector = pytest.importorskip("qiskit.quantum_info").Statevector
    circ = qiskit_circuit(text)
    circ.remove_final_measurements()
    if circ.num_qubits < 20:
        return Statevector(circ).reverse_qargs().data
    from qiskit import transpile
    from qiskit_aer import AerSimulator
    sim = AerSimulator(method="statevector")
    circ = transpile(circ, sim)
    circ.save_statevector()
    data = np.asarray(sim.run(circ).result().get_statevector())
    n = circ.num_qubits
    return data.reshape((2,) * n).transpose(range(n - 1, -1, -1)).ravel()


def qiskit_measurements(text):
    """``{wire: (creg name, index)}`` of Qiskit's measure instructions."""
    circ = qiskit_circuit(text)
    out = {}
    for inst in circ.data:
        if inst.operation.name == "measure":
            (reg, idx), = circ.find_bit(inst.clbits[0]).registers
            out[circ.find_bit(inst.qubits[0]).index] = (reg.name, idx)
    return out


# --- every gate -----------------------------------------------------------------
def test_table_covers_qelib1():
    assert set(CLOSED_FORMS) == set(QELIB1)


@pytest.mark.parametrize("name", sorted(QELIB1))
def test_gate_closed_form(name):
    statement, k = one_gate(name)
    np.testing.assert_allclose(qasm_unitary(statement, k), CLOSED_FORMS[name], atol=TOL[C128])


@pytest.mark.parametrize("name", sorted(QELIB1))
def test_gate_matches_qiskit(name):
    Operator = pytest.importorskip("qiskit.quantum_info").Operator
    statement, k = one_gate(name)
    want = big_endian(Operator(qiskit_circuit(f"{HEADER}qreg q[{k}];\n{statement}")).data)
    np.testing.assert_allclose(qasm_unitary(statement, k), want, atol=TOL[C128])


@pytest.mark.parametrize("name", ["h", "rx", "cu3", "rzz", "rccx"])
def test_gate_complex64(name):
    """The default dtype gives the same unitary at single precision."""
    statement, k = one_gate(name)
    got = qasm_unitary(statement, k, dtype=None)
    assert got.dtype == np.complex64
    np.testing.assert_allclose(got, CLOSED_FORMS[name], atol=TOL[np.complex64])


# --- the QASMBench corpus -------------------------------------------------------
def _readme_programs(section):
    """``(relative path, n, ops)`` of one README section (the ``## `` heading starting with ``section``)."""
    readme = CORPUS / "README.md"
    if not readme.exists():
        return []
    text = readme.read_text().split(f"## {section}", 1)[1].split("\n## ", 1)[0]
    return [(p, int(n), int(ops)) for p, n, ops in re.findall(r"^- (\S+\.qasm): n=(\d+) ops=(\d+)", text, re.M)]


UNITARY = _readme_programs("52 programs")
needs_corpus = pytest.mark.skipif(not UNITARY, reason=f"QASMBench corpus not found at {CORPUS}")
HAVE_QISKIT = importlib.util.find_spec("qiskit") is not None


def _corpus_params(programs):
    """One param per program; slow: n >= 20 (GBs of state) or > 300 ops (long jit compiles)."""
    return [pytest.param(p, n, id=Path(p).stem, marks=[pytest.mark.slow] if n >= 20 or ops > 300 else [])
            for p, n, ops in programs]


def _expected_measurements(text):
    """``{wire: (creg, index)}`` from the text's measure statements (by regex, not by the parser)."""
    text = re.sub(r"//[^\n]*", "", text)
    qregs, total = {}, 0
    for name, size in re.findall(r"^\s*qreg\s+(\w+)\s*\[\s*(\d+)\s*\]", text, re.M):
        qregs[name], total = (total, int(size)), total + int(size)
    out = {}
    for q, i, c, j in re.findall(r"measure\s+(\w+)\s*(?:\[\s*(\d+)\s*\])?\s*->\s*(\w+)\s*(?:\[\s*(\d+)\s*\])?", text):
        first, size = qregs[q]
        pairs = [(int(i), int(j))] if i else [(k, k) for k in range(size)]
        out.update({first + qi: (c, ci) for qi, ci in pairs})
    return out


@needs_corpus
def test_corpus_lists_52_programs():
    assert len(UNITARY) == 52


@needs_corpus
@pytest.mark.parametrize("path, n", _corpus_params(UNITARY))
def test_corpus_program(path, n):
    """Terminal measurements recorded, a normalised state, and (with qiskit) Qiskit's state."""
    text = (CORPUS / path).read_text()
    # Double precision where the state is small; n >= 20 runs in complex64 (half the
    # memory), where float32 rounding over a few hundred gates needs 2e-5.
    dtype, tol = (C128, TOL[C128]) if n < 20 else (np.complex64, 2e-5)
    circuit = qsim.from_qasm(text, dtype=dtype)
    assert circuit.n_qubits == n
    assert circuit.measurements == _expected_measurements(text)
    psi = np.asarray(circuit.state())
    assert abs(np.linalg.norm(psi.astype(C128)) - 1) < tol
    if HAVE_QISKIT:
        np.testing.assert_allclose(psi, qiskit_state(text), atol=tol)
        assert circuit.measurements == qiskit_measurements(text)


DYNAMIC = [   # (path, n_clbits, deferred wires, first line of a dynamic statement): mid-circuit measure, reset, if
    ("medium/bwt_n21.qasm", 42, 7617, 6),
    ("medium/cc_n12.qasm", 12, 13, 31),
    ("medium/seca_n11.qasm", 11, 11, 50),
    ("medium/square_root_n18.qasm", 13, 78, 25),
    ("small/bb84_n8.qasm", 8, 16, 40),
    ("small/inverseqft_n4.qasm", 4, 4, 13),
    ("small/ipea_n2.qasm", 4, 5, 29),
    ("small/qec_sm_n5.qasm", 5, 5, 17),
    ("small/shor_n5.qasm", 5, 7, 9),
]
INVALID = [("small/hhl_n10.qasm", 186801), ("small/vqe_uccsd_n4.qasm", 225),
           ("small/vqe_uccsd_n6.qasm", 2286), ("small/vqe_uccsd_n8.qasm", 10813)]


@needs_corpus
@pytest.mark.parametrize("path, n_clbits, n_wires, line", DYNAMIC, ids=[Path(p).stem for p, *_ in DYNAMIC])
def test_corpus_dynamic_programs_load(path, n_clbits, n_wires, line):
    """They load as dynamic circuits (they were clear errors naming line ``line`` before mid-circuit
    measurement, reset and if were supported); their outcomes are checked against Qiskit Aer in
    test_dynamic.py. ``n_wires``: the deferred-measurement program's width."""
    from qsim import _deferred
    circuit = qsim.from_qasm((CORPUS / path).read_text())
    assert circuit.is_dynamic and circuit.n_clbits == n_clbits
    plan = _deferred.plan(tuple(circuit._program), circuit.n_qubits, circuit.n_clbits)
    assert plan.n_wires == n_wires


@needs_corpus
@pytest.mark.parametrize("path, line", INVALID, ids=[Path(p).stem for p, _ in INVALID])
def test_corpus_invalid(path, line):
    with pytest.raises(qsim.QasmError, match=rf"^line {line}: 'q' is not defined in this scope"):
        qsim.from_qasm((CORPUS / path).read_text())


@needs_corpus
@pytest.mark.parametrize("path, line", INVALID, ids=[Path(p).stem for p, _ in INVALID])
def test_corpus_invalid_same_line_as_qiskit(path, line):
    qasm2 = pytest.importorskip("qiskit.qasm2")
    with pytest.raises(qasm2.QASM2ParseError, match=rf"<input>:{line},\d+: 'q' is not defined"):
        qiskit_circuit((CORPUS / path).read_text())


@needs_corpus
def test_large_invalid_program_fails_fast():
    """3.3 MB, 186801 lines: the error comes in well under a second (2 s allowed for noisy machines)."""
    text = (CORPUS / "small/hhl_n10.qasm").read_text()
    start = time.perf_counter()
    with pytest.raises(qsim.QasmError, match="^line 186801:"):
        qsim.from_qasm(text)
    assert time.perf_counter() - start < 2.0


def test_long_runs_of_digits_and_spaces_fail_at_once():
    """Failed matches do not backtrack through ways of splitting a run (these would take years if they did)."""
    with pytest.raises(qsim.QasmError, match=r"^line 4: unexpected character '@'"):
        qsim.from_qasm(HEADER + "qreg q[1];\nrz(" + "1" * 5000 + "@) q[0];")
    with pytest.raises(qsim.QasmError, match=r"^line 3: expected ',' or '\{', got end of input"):
        qsim.from_qasm(HEADER + "gate g" + " " * 20000 + "a" * 5000 + " " * 20000)


def test_large_valid_program_parses_fast():
    """A 3 MB program of 200k plain statements parses (to the flat op list) in well under 2 s."""
    body = "".join(f"rz({i % 97 * 0.01}) q[{i % 7}];\ncx q[{i % 7}], r[{i % 3}];\n" for i in range(100_000))
    text = f"{HEADER}qreg q[7];\nqreg r[3];\n{body}"
    assert len(text) > 3_000_000
    start = time.perf_counter()
    program = parse(text)
    assert time.perf_counter() - start < 2.0
    assert len(program.ops) == 200_000 and program.ops[-1] == ("cx", (99_999 % 7, 7 + 99_999 % 3), ())


# --- programs with thousands of gate definitions -----------------------------------
def many_definitions(n_defs, n_qubits=6, seed=0):
    """A program of ``n_defs`` parametrised gates, each applied once; about half call the previous one.

    Returns the text and the ops it must expand to, computed here from the same
    random choices (gate i(t) on (a, b): rz(t*c+pi/k) a; cx a, b; u3(t, -t/2, d) b;
    h a; and maybe gate i-1(t/2) b, a).
    """
    rng = np.random.default_rng(seed)
    lines, defs, ops = [HEADER + f"qreg q[{n_qubits}];"], [], []

    def expand(i, t, a, b):
        c, k, d, nested = defs[i]
        out = [("rz", (a,), (t * c + math.pi / k,)), ("cx", (a, b), ()), ("u3", (b,), (t, -t / 2, d)),
               ("h", (a,), ())]
        return out + (expand(i - 1, t / 2, b, a) if nested else [])

    for i in range(n_defs):
        c, k, d = round(float(rng.random()), 4), int(rng.integers(1, 9)), round(float(rng.random()), 3)
        nested = i > 0 and rng.random() < 0.5
        defs.append((c, k, d, nested))
        call = f" g{i - 1}(t/2) b, a;" if nested else ""
        lines.append(f"gate g{i}(t) a, b {{ rz(t*{c}+pi/{k}) a; cx a, b; u3(t, -t/2, {d}) b; h a;{call} }}")
        a, b = (int(x) for x in rng.choice(n_qubits, 2, replace=False))
        t = round(float(rng.random()), 5)
        lines.append(f"g{i}({t}) q[{a}], q[{b}];")
        ops += expand(i, t, a, b)
    return "\n".join(lines) + "\n", ops


def test_many_gate_definitions_expand_correctly():
    """4,250 definitions (the size that once took seconds to read): every op as computed independently."""
    text, ops = many_definitions(4250)
    assert parse(text).ops == ops


def test_many_gate_definitions_match_qiskit():
    pytest.importorskip("qiskit")
    text, _ = many_definitions(60, n_qubits=4, seed=1)
    np.testing.assert_allclose(np.asarray(qsim.from_qasm(text, dtype=C128).state()), qiskit_state(text),
                               atol=TOL[C128])


def test_gate_applied_with_many_parameter_values():
    """One definition, many distinct angles: each application substitutes into the same parsed body."""
    body = "".join(f"zz({0.01 * i}) q[{i % 3}], q[3];\n" for i in range(300))
    text = HEADER + "gate zz(t) a, b { cx a, b; rz(2*t) b; cx a, b; }\nqreg q[4];\n" + body
    ops = parse(text).ops
    assert len(ops) == 900 and ops[1] == ("rz", (3,), (0.0,)) and ops[-2] == ("rz", (3,), (2 * (0.01 * 299),))


# --- random programs ------------------------------------------------------------
def random_program(rng, n_gates=40):
    """Random qelib1 gates with random parameters on random qubits of three registers."""
    regs = {"a": 2, "bb": 3, "c1": 1}
    qubits = [f"{r}[{i}]" for r, size in regs.items() for i in range(size)]
    lines = [HEADER] + [f"qreg {r}[{size}];" for r, size in regs.items()] + ["creg m[6];"]
    names = sorted(n for n, (_, k) in QELIB1.items() if k <= len(qubits))
    for _ in range(n_gates):
        name = names[rng.integers(len(names))]
        n_params, k = QELIB1[name]
        values = rng.integers(0, 3, n_params) if name == "u0" else rng.uniform(-np.pi, np.pi, n_params)
        params = ", ".join(repr(x.item()) for x in values)
        args = ", ".join(qubits[i] for i in rng.permutation(len(qubits))[:k])
        lines.append(f"{name}({params}) {args};" if n_params else f"{name} {args};")
    lines += ["h bb;", "cx a[1], bb;", "measure a[0] -> m[5];"]    # broadcasts, a terminal measurement
    return "\n".join(lines)


@pytest.mark.parametrize("seed", range(5))
def test_random_programs_match_qiskit(seed):
    pytest.importorskip("qiskit")
    rng = np.random.default_rng(seed)
    text = random_program(rng)
    circuit = qsim.from_qasm(text, dtype=C128)
    np.testing.assert_allclose(np.asarray(circuit.state()), qiskit_state(text), atol=TOL[C128])
    assert circuit.measurements == {0: ("m", 5)} == qiskit_measurements(text)


# --- expressions ----------------------------------------------------------------
def param_of(expr):
    """The value ``expr`` gives as the angle of an rz."""
    (op,) = parse(f"{HEADER}qreg q[1];\nrz({expr}) q[0];").ops
    return op[2][0]


@pytest.mark.parametrize("expr, value", [
    ("pi", math.pi), ("-pi/2", -math.pi / 2), ("3*pi/4", 3 * math.pi / 4), ("1e-3", 1e-3), (".5", 0.5),
    ("2.", 2.0), ("1.5E+2", 150.0), ("2^3^2", 2.0 ** 9), ("-2^2", -4.0), ("2^-1", 0.5), ("(1+2)*3", 9.0),
    ("1 - 2 - 3", -4.0), ("8/2/2", 2.0), ("1/2", 0.5), ("--1", 1.0), ("+1", 1.0), ("-(pi)", -math.pi),
    ("sin(pi/2)", 1.0), ("cos(0)", 1.0), ("tan(pi/4)", math.tan(math.pi / 4)), ("exp(1)", math.e),
    ("ln(exp(2))", 2.0), ("sqrt(2)^2", 2.0), ("2*sin(pi/6)+ln(1)", 2 * math.sin(math.pi / 6)),
    ("( 1 +\n 2 )", 3.0), ("pi/(2*2)", math.pi / 4), ("-3*pi/4*-1", 3 * math.pi / 4),
])
def test_expressions(expr, value):
    assert param_of(expr) == pytest.approx(value, rel=1e-15, abs=1e-15)


def test_expression_state():
    """An rz angle from an expression acts as that angle (public API)."""
    psi = qsim.from_qasm(f"{HEADER}qreg q[1];\nh q[0];\nrz(2*ln(exp(pi/2))/3) q[0];", dtype=C128).state()
    want = _diag(np.exp(-1j * math.pi / 6), np.exp(1j * math.pi / 6)) @ H[:, 0]
    np.testing.assert_allclose(np.asarray(psi), want, atol=TOL[C128])


# --- user gates, broadcasting, registers, comments ---------------------------------
def state_of(text, dtype=C128):
    return np.asarray(qsim.from_qasm(text, dtype=dtype).state())


def test_user_gates_with_params_and_nesting():
    user = HEADER + """
    gate rot(theta, phi) a { rz(phi) a; ry(theta/2*2) a; }
    gate pair(t) a, b { rot(t, -t) a; cx a, b; rot(t^2, pi) b; barrier a, b; }
    gate noparams a, b { pair(0.3) b, a; }
    qreg q[3];
    pair(0.5) q[0], q[2];
    noparams q[1], q[0];
    """
    flat = HEADER + """
    qreg q[3];
    rz(-0.5) q[0]; ry(0.5) q[0]; cx q[0], q[2]; rz(pi) q[2]; ry(0.25) q[2];
    rz(-0.3) q[0]; ry(0.3) q[0]; cx q[0], q[1]; rz(pi) q[1]; ry(0.09) q[1];
    """
    np.testing.assert_allclose(state_of(user), state_of(flat), atol=TOL[C128])


def test_user_gate_expansion_ops():
    program = parse(HEADER + "gate g(t) a, b { cx b, a; u1(2*t) a; }\nqreg q[2];\nqreg r[1];\ng(1) r[0], q[1];")
    assert program.ops == [("cx", (1, 2), ()), ("u1", (2,), (2.0,))]


def test_builtins_without_include():
    program = parse("OPENQASM 2.0;\nqreg q[2];\nU(0.1, 0.2, 0.3) q[0];\nCX q[0], q[1];")
    assert program.ops == [("U", (0,), (0.1, 0.2, 0.3)), ("CX", (0, 1), ())]


def test_registers_concatenate_in_declaration_order():
    program = parse(HEADER + "qreg a[2];\ncreg m[2];\nqreg b[3];\nx b[2];\ncx a[1], b[0];")
    assert program.n_qubits == 5 and program.qregs == {"a": (0, 2), "b": (2, 3)} and program.cregs == {"m": 2}
    assert program.ops == [("x", (4,), ()), ("cx", (1, 2), ())]
    psi = state_of(HEADER + "qreg a[2];\nqreg b[3];\nx b[2];\nx a[0];")
    assert np.argmax(np.abs(psi)) == 0b10001


def test_broadcasting():
    ops = parse(HEADER + "qreg q[3];\nqreg r[3];\nh q;\ncx q, r;\ncx q[0], r;\nrz(0.5) r;").ops
    assert ops == ([("h", (i,), ()) for i in range(3)] + [("cx", (i, 3 + i), ()) for i in range(3)]
                   + [("cx", (0, 3 + i), ()) for i in range(3)] + [("rz", (3 + i,), (0.5,)) for i in range(3)])


def test_broadcast_user_gate():
    ops = parse(HEADER + "gate g a, b { cx a, b; }\nqreg q[2];\nqreg r[2];\ng q, r;").ops
    assert ops == [("cx", (0, 2), ()), ("cx", (1, 3), ())]


def test_comments_and_whitespace_anywhere():
    text = """// leading comment
    OPENQASM 2.0 ;   // after
    include "qelib1.inc"; // a comment
    qreg
      q [ 2 ] ;
    rz ( pi // comment inside an expression
      / 2 ) q
      [ 0 ] ; cx q[0] ,
    q[1];
    """
    assert parse(text).ops == [("rz", (0,), (math.pi / 2,)), ("cx", (0, 1), ())]


def test_statement_records():
    """measure, reset and if become records (kind, operands, condition, line) in program order."""
    program = parse(HEADER + "qreg q[2];\ncreg c[2];\nh q[0];\nmeasure q -> c;\nreset q[1];\n"
                             "if (c == 2) cx q[0], q[1];\nif (c == 1) measure q[1] -> c[0];")
    assert program.ops == [
        ("h", (0,), ()),
        Statement("measure", (0, ("c", 0)), None, 6), Statement("measure", (1, ("c", 1)), None, 6),
        Statement("reset", (1,), None, 7),
        Statement("gate", (("cx", (0, 1), ()),), ("c", 2), 8),
        Statement("measure", (1, ("c", 0)), ("c", 1), 9),
    ]
    assert program.measurements == [(0, ("c", 0)), (1, ("c", 1))]
    assert [program.line(i) for i in range(len(program.ops))] == [5, 6, 6, 7, 8, 9]


def test_conditioned_user_gate_is_one_record_per_broadcast():
    program = parse(HEADER + "gate g(t) a, b { cx a, b; rz(t) b; }\nqreg q[2];\nqreg r[2];\ncreg c[1];\n"
                             "if (c == 1) g(0.5) q, r;")
    assert program.ops == [Statement("gate", (("cx", (0, 2), ()), ("rz", (2,), (0.5,))), ("c", 1), 7),
                           Statement("gate", (("cx", (1, 3), ()), ("rz", (3,), (0.5,))), ("c", 1), 7)]


def test_line_of_each_op():
    program = parse(HEADER + "gate g a, b { h a; cx a, b; }\nqreg q[2];\n\ng q[0], q[1];  x q[1];\nh q;")
    assert [program.line(i) for i in range(len(program.ops))] == [6, 6, 6, 7, 7]


def test_measurements_recorded():
    circuit = qsim.from_qasm(HEADER + "qreg q[2];\nqreg r[1];\ncreg c[2];\ncreg d[1];\nh q[0];\n"
                                      "measure q -> c;\nbarrier q;\nmeasure r[0] -> d[0];")
    assert circuit.measurements == {0: ("c", 0), 1: ("c", 1), 2: ("d", 0)}


def test_dtype():
    text = HEADER + "qreg q[2];\nh q[0];\ncx q[0], q[1];"
    assert qsim.from_qasm(text).state().dtype == jnp.complex64
    psi = qsim.from_qasm(text, dtype=jnp.complex128).state()
    assert psi.dtype == jnp.complex128
    np.testing.assert_allclose(np.asarray(psi), [2 ** -0.5, 0, 0, 2 ** -0.5], atol=TOL[C128])


# --- errors ---------------------------------------------------------------------
@pytest.mark.parametrize("body, message", [
    # syntax
    ("qreg q[2]\nh q[0];", r"^line 4: expected ';', got 'h'"),
    ("qreg q[2];\nh q[0] q[1];", r"^line 4: expected ',' or ';', got 'q'"),
    ("qreg q[2];\nrz(1 +) q[0];", r"^line 4: expected a number, 'pi', a parameter, a function or '\(', got '\)'"),
    ("qreg q[2];\nrz(1 +\n) q[0];", r"^line 5: expected a number, 'pi', a parameter, a function or '\(', got '\)'"),
    ("qreg q[2];\nrz(1 2) q[0];", r"^line 4: expected ',' or '\)', got '2'"),
    ("qreg q[2];\nh q[0];\n@", r"^line 5: unexpected character '@'"),
    ("qreg q[2];\nh q[0];\n/* block */", r"^line 5: block comments \('/\* ... \*/'\) are not OpenQASM 2.0"),
    ("qreg Q[2];", r"^line 3: identifiers start with a lowercase letter"),
    ("qreg q[2];\nh q[00];", r"^line 4: integers cannot have leading zeros, got '00'"),
    ("qreg q[2];\nrz(asin(1)) q[0];", r"^line 4: 'asin' is not defined in this scope"),
    ('include "qelib1.inc";', r'^line 3: "qelib1.inc" is already included \(on line 2\)'),
    ("qreg q[2];\nh q[0]", r"^line 4: expected ',' or ';', got end of input"),
    ("qreg q[2];\nrz(foo) q[0];", r"^line 4: 'foo' is not defined in this scope"),
    ("qreg q[2];\nrz(1/0) q[0];", r"^line 4: division by zero"),
    ("qreg q[2];\nrz(ln(0)) q[0];", r"^line 4: math error"),
    ("qreg q[2];\nrz(1e999) q[0];", r"^line 4: parameter evaluates to inf"),
    ("OPENQASM 2.0;\nqreg q[1];", r"^line 3: 'OPENQASM' must be the first statement"),
    ('qreg q[1];\ninclude "other.inc";', r'^line 4: cannot include "other.inc"'),
    # names and indices
    ("qreg q[2];\nh r[0];", r"^line 4: 'r' is not defined in this scope"),
    ("qreg q[2];\ncreg c[2];\nh c[0];", r"^line 5: 'c' is not defined in this scope \(it is a creg"),
    ("qreg q[2];\ncreg c[2];\nmeasure q[0] -> d[0];", r"^line 5: 'd' is not defined in this scope"),
    ("qreg q[2];\nh q[2];", r"^line 4: index 2 is out of range for qreg q\[2\] \(allowed 0..1\)"),
    ("qreg q[2];\ncreg c[1];\nmeasure q[0] -> c[1];", r"^line 5: index 1 is out of range for creg c\[1\]"),
    ("qreg q[2];\nfoo q[0];", r"^line 4: unknown gate 'foo'"),
    ("qreg q[2];\nq q[0];", r"^line 4: 'q' is a register, not a gate"),
    ("qreg q[0];", r"^line 3: the program declares no qubits"),
    # arity, duplicates, broadcasting
    ("qreg q[2];\ncx q[0];", r"^line 4: gate 'cx' takes 0 parameter\(s\) and 2 qubit\(s\), got 0 parameter\(s\) "
                              r"and 1 qubit\(s\)"),
    ("qreg q[2];\nrx q[0];", r"^line 4: gate 'rx' takes 1 parameter\(s\)"),
    ("qreg q[2];\nh(1) q[0];", r"^line 4: gate 'h' takes 0 parameter\(s\)"),
    ("qreg q[2];\ncx q[1], q[1];", r"^line 4: qubit q\[1\] is used more than once in one gate"),
    ("qreg q[2];\ncx q[0], q;", r"^line 4: qubit q\[0\] is used more than once"),
    ("qreg q[2];\nqreg r[3];\ncx q, r;", r"^line 5: registers of different sizes in one statement: q\[2\], r\[3\]"),
    ("qreg q[2];\ncreg c[1];\nmeasure q -> c;", r"^line 5: measure needs a qubit and a bit, or a qreg and a creg "
                                                r"of the same size"),
    # redeclaration
    ("qreg q[2];\nqreg q[1];", r"^line 4: 'q' is already defined \(redeclaration\)"),
    ("qreg h[2];", r"^line 3: 'h' is already defined \(redeclaration\)"),
    ("qreg q[2];\ncreg q[1];", r"^line 4: 'q' is already defined"),
    ("gate h a { x a; }", r"^line 3: 'h' is already defined"),
    ("gate g a { x a; }\ngate g a { y a; }", r"^line 4: 'g' is already defined"),
    # gate definitions
    ("gate g a { x b; }", r"^line 3: 'b' is not defined in this scope \(not a qubit argument"),
    ("gate g(t) a { rz(s) a; }", r"^line 3: 's' is not defined in this scope"),
    ("gate g a, a { x a; }", r"^line 3: gate 'g' uses the name 'a' twice among its parameters and qubits"),
    ("gate g(pi) a { rz(pi) a; }", r"^line 3: 'pi' is a reserved word and cannot be used as a name"),
    ("gate g() { }", r"^line 3: gate 'g' must act on at least one qubit"),
    ("qreg measure[1];", r"^line 3: 'measure' is a reserved word"),
    ("gate sin a { x a; }", r"^line 3: 'sin' is a reserved word"),
    ("gate g a { g a; }", r"^line 3: unknown gate 'g'"),
    ("gate g a, b { cx a, a; }", r"^line 3: a qubit is used more than once in one 'cx' gate"),
    ("gate g a { rx a; }", r"^line 3: gate 'rx' takes 1 parameter\(s\)"),
    ("gate g a {\n measure a -> c[0]; }", r"^line 4: only gate applications \(and 'barrier'\) are allowed "
                                        r"inside a gate body, got 'measure'"),
    ("gate g a { x a[0]; }", r"^line 3: expected ',' or ';', got '\['"),
    ("gate g(t) a { rx(1/t) a; }\nqreg q[1];\ng(0) q[0];", r"^line 5: division by zero in a parameter expression "
                                                          r"of gate 'g' \(parameters 0\)"),
    ("gate g(t) a { rx(exp(t)) a; }\nqreg q[1];\ng(1000) q[0];", r"^line 5: math error in a parameter expression"),
    ("gate g(t) a { rx(t*1e300) a; }\nqreg q[1];\ng(1e300) q[0];", r"^line 5: a parameter of 'rx' in gate 'g' "
                                                                   r"evaluates to inf, which is not finite"),
    ("qreg q[1];\nu0(1.5) q[0];", r"^line 4: u0 takes a whole number of idle cycles, got 1.5"),
    ("opaque g(t) a;\nqreg q[1];\ng(1) q[0];", r"^line 5: gate 'g' is declared opaque"),
    ("opaque o a;\ngate g a { o a; }\nqreg q[1];\ng q[0];", r"^line 6: gate 'o' is declared opaque"),
    # unsupported features
    ("qreg q[1];\ncreg c[1];\nif (c == 1) reset q[0];", r"^line 5: a conditioned reset \('if \(\.\.\.\) reset'\) "
                                                         r"is not supported; only gates can be classically controlled"),
    ("qreg q[1];\ncreg c[1];\nif (c == 1) measure q[0] -> c[0];", r"^line 5: a conditioned measure"),
    ("qreg q[1];\ncreg c[1];\nif (c == 1) barrier q[0];", r"^line 5: expected a gate application, measure or "
                                                          r"reset after 'if \(...\)', got 'barrier'"),
    ("qreg q[1];\ncreg c[1];\nif (q == 1) x q[0];", r"^line 5: 'q' is not defined in this scope \(it is a qreg"),
    ("qreg q[1];\nif (c == 1) x q[0];", r"^line 4: 'c' is not defined in this scope \(no creg of that name"),
    ("creg c[1];", r"^line 3: the program declares no qubits"),
])
def test_errors(body, message):
    with pytest.raises(qsim.QasmError, match=message):
        qsim.from_qasm(HEADER + body)


def test_version_other_than_2():
    with pytest.raises(qsim.QasmError, match=r"^line 1: OpenQASM version 3.0 is not supported \(only 2.0\)"):
        qsim.from_qasm("OPENQASM 3.0;\nqreg q[1];")


def test_error_without_include_names_the_include():
    with pytest.raises(qsim.QasmError, match=r"^line 2: unknown gate 'h' \(it is defined in qelib1.inc"):
        qsim.from_qasm("qreg q[1];\nh q[0];")


# Programs that were clear errors before mid-circuit measurement, reset and if were supported: (body,
# exact outcome-averaged probabilities of the final wires, the classical bits of every shot or None).
@pytest.mark.parametrize("body, probs, bits", [
    ("qreg q[2];\ncreg c[2];\nx q[1];\nmeasure q[1] -> c[1];\nh q[0];\n\ncx q[0], q[1];", [0, 0.5, 0.5, 0], [0, 1]),
    ("qreg q[2];\ncreg c[2];\nmeasure q -> c;\nh q;", [0.25] * 4, [0, 0]),
    ("gate g a, b { h a; cx a, b; }\nqreg q[2];\ncreg c[2];\nmeasure q[1] -> c[1];\ng q[0], q[1];",
     [0.5, 0, 0, 0.5], [0, 0]),
    ("qreg q[1];\ncreg c[2];\nx q[0];\nmeasure q[0] -> c[0];\nmeasure q[0] -> c[1];", [0, 1], [1, 1]),
    ("qreg q[1];\ncreg c[1];\nx q[0];\nmeasure q[0] -> c[0];\nreset q[0];\nif (c == 1) h q[0];",
     [0.5, 0.5], [1]),
    ("qreg q[2];\ncreg a[1];\ncreg b[1];\nx q[1];\nmeasure q[1] -> b[0];\nif (b == 1) x q[0];\nif (a == 1) x q[1];",
     [0, 0, 0, 1], [0, 1]),
])
def test_mid_circuit_programs_run(body, probs, bits):
    circuit = qsim.from_qasm(HEADER + body, dtype=C128)
    np.testing.assert_allclose(np.asarray(circuit.probs()), probs, atol=TOL[C128])
    got = np.asarray(circuit.run(jax.random.key(0), shots=8))
    np.testing.assert_array_equal(got, np.tile(bits, (8, 1)))


def test_barrier_after_measure_is_fine():
    circuit = qsim.from_qasm(HEADER + "qreg q[2];\ncreg c[2];\nmeasure q[0] -> c[0];\nbarrier q;\nh q[1];")
    assert circuit.measurements == {0: ("c", 0)}


def test_gate_that_leaves_a_measured_qubit_alone_is_fine():
    """g's body never touches its second qubit, so nothing acts on q[1] after its measurement."""
    circuit = qsim.from_qasm(HEADER + "gate g a, b { h a; }\nqreg q[2];\ncreg c[2];\nmeasure q[1] -> c[1];\n"
                                      "g q[0], q[1];")
    assert circuit.measurements == {1: ("c", 1)}


def test_qasm_error_is_value_error():
    assert issubclass(qsim.QasmError, ValueError)


def test_text_must_be_str():
    with pytest.raises(TypeError, match="from_qasm: text must be the program as a str"):
        qsim.from_qasm(b"OPENQASM 2.0;")
