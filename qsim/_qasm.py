"""OpenQASM 2.0 import: `from_qasm` turns a program's text into a `Circuit`.

Two steps. `parse` reads the text into a `QasmProgram`: a flat list of gate
applications ``(name, wires, params)`` on ``qelib1.inc`` gate names (user
``gate`` definitions expanded, registers concatenated in declaration order,
register broadcasts unrolled, parameter expressions evaluated to floats) plus
the terminal measurements. `from_qasm` then replays the list on a `Circuit`
through the gate table `_TABLE`, which maps every qelib1 name to a native
`Circuit` method (or to `Circuit.controlled` / `Circuit.unitary` with Qiskit's
exact matrix where there is no native method).

Speed: a plain gate statement (``name(params) args;``) is read by one compiled
regex, and its parameter text and argument text are each resolved once per
distinct string (per-parse caches), so multi-megabyte programs parse in a
fraction of a second. Everything else (declarations, ``gate`` bodies,
``measure``, odd layouts) goes through a small tokenizer and recursive-descent
parser, which also produces the error messages. Every error is a `QasmError`
whose message starts with ``line N:`` (1-based line of the offending token).
"""

from __future__ import annotations

import math
import operator
import re
from typing import Callable, NamedTuple

import numpy as np

from ._circuit import Circuit


class QasmError(ValueError):
    """An OpenQASM program that qsim cannot read; the message starts with ``line N:``."""


# ---------------------------------------------------------------------------
# The gate table: qelib1.inc names -> how to apply them on a Circuit.
class _Gate(NamedTuple):
    """A built-in gate: ``apply(circuit, *wires, *params)``."""

    name: str
    n_params: int
    n_qubits: int
    apply: Callable


def _frozen(m):
    m = np.array(m, dtype=np.complex128)
    m.setflags(write=False)
    return m


def _u3_matrix(theta, phi, lam):
    c, s = math.cos(theta / 2), math.sin(theta / 2)
    return np.array([[c, -np.exp(1j * lam) * s],
                     [np.exp(1j * phi) * s, np.exp(1j * (phi + lam)) * c]])


_X = _frozen([[0, 1], [1, 0]])
_H = _frozen(np.array([[1, 1], [1, -1]]) / math.sqrt(2))
_SX = _frozen([[0.5 + 0.5j, 0.5 - 0.5j], [0.5 - 0.5j, 0.5 + 0.5j]])
_SXDG = _frozen(_SX.conj().T)
# diag(Z, Y) on two wires: Z on the second where the first is 0, Y where it is 1. Qiskit's
# relative-phase Toffolis are rccx = diag(Z, Y) controlled by one wire, rc3x = i diag(Z, Y)
# controlled by two (RCCXGate, RC3XGate: the qelib1 bodies' exact products).
_ZY = _frozen([[1, 0, 0, 0], [0, -1, 0, 0], [0, 0, 0, -1j], [0, 0, 1j, 0]])


def _ctrl(matrix, n_controls):
    """Apply a constant ``matrix`` on the last wires, controlled by the first ``n_controls``."""
    return lambda c, *w: c.controlled(matrix, w[:n_controls], w[n_controls:])


def _cu(c, ctl, tgt, theta, phi, lam, gamma=0.0):
    """Qiskit's CU / CU3: ``e^{i gamma} u3(theta, phi, lam)`` on ``tgt`` where ``ctl`` is 1."""
    return c.controlled(np.exp(1j * gamma) * _u3_matrix(theta, phi, lam), (ctl,), (tgt,))


def _gates(*rows):
    return {row[0]: _Gate(*row) for row in rows}


# name, n_params, n_qubits, apply(circuit, *wires, *params)
_QELIB1 = _gates(
    ("u3", 3, 1, Circuit.u3), ("u2", 2, 1, Circuit.u2), ("u1", 1, 1, Circuit.u1),
    ("u0", 1, 1, lambda c, w, _: c.i(w)), ("u", 3, 1, Circuit.u3), ("p", 1, 1, Circuit.phase),
    ("cx", 0, 2, Circuit.cnot), ("id", 0, 1, Circuit.i),
    ("x", 0, 1, Circuit.x), ("y", 0, 1, Circuit.y), ("z", 0, 1, Circuit.z), ("h", 0, 1, Circuit.h),
    ("s", 0, 1, Circuit.s), ("sdg", 0, 1, Circuit.sdg), ("t", 0, 1, Circuit.t), ("tdg", 0, 1, Circuit.tdg),
    ("rx", 1, 1, Circuit.rx), ("ry", 1, 1, Circuit.ry), ("rz", 1, 1, Circuit.rz),
    ("sx", 0, 1, Circuit.sx), ("sxdg", 0, 1, lambda c, w: c.unitary(_SXDG, (w,))),
    ("cz", 0, 2, Circuit.cz), ("cy", 0, 2, Circuit.cy), ("swap", 0, 2, Circuit.swap),
    ("ch", 0, 2, _ctrl(_H, 1)), ("ccx", 0, 3, Circuit.toffoli), ("cswap", 0, 3, Circuit.cswap),
    ("crx", 1, 2, Circuit.crx), ("cry", 1, 2, Circuit.cry), ("crz", 1, 2, Circuit.crz),
    ("cu1", 1, 2, Circuit.cphase), ("cp", 1, 2, Circuit.cphase), ("cu3", 3, 2, _cu),
    ("csx", 0, 2, _ctrl(_SX, 1)), ("cu", 4, 2, _cu),
    ("rxx", 1, 2, Circuit.rxx), ("rzz", 1, 2, Circuit.rzz),
    ("rccx", 0, 3, _ctrl(_ZY, 1)), ("rc3x", 0, 4, _ctrl(_frozen(1j * _ZY), 2)),
    ("c3x", 0, 4, _ctrl(_X, 3)), ("c3sqrtx", 0, 4, _ctrl(_SX, 3)), ("c4x", 0, 5, _ctrl(_X, 4)),
)
# The two gates OpenQASM 2 defines without any include.
_BUILTIN = _gates(("U", 3, 1, Circuit.u3), ("CX", 0, 2, Circuit.cnot))
_TABLE = {**_QELIB1, **_BUILTIN}


class _UserGate(NamedTuple):
    """A ``gate`` definition: body entries ``(callee, param exprs, indices into the qubit args)``."""

    name: str
    params: tuple[str, ...]
    n_params: int
    n_qubits: int
    body: tuple | None      # None: declared ``opaque``


class QasmProgram(NamedTuple):
    """A parsed program: gate applications on qelib1 names, ready to replay on a Circuit."""

    n_qubits: int
    qregs: dict              # name -> (first wire, size), in declaration order
    cregs: dict              # name -> size
    ops: list                # (qelib1 name, wires tuple, params tuple of floats)
    measurements: list       # (wire, (creg name, index))


# ---------------------------------------------------------------------------
# Lexing.
_COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)
_TOKEN = re.compile(r"""\s*(?:
    (?P<real>(?:\d+\.\d*|\.\d+)(?:[eE][-+]?\d+)?|\d+[eE][-+]?\d+)
  | (?P<int>\d+)
  | (?P<id>[A-Za-z_]\w*)
  | (?P<str>"[^"\n]*")
  | (?P<op>->|==|[-+*/^(),;\[\]{}])
  | (?P<bad>\S))""", re.X)
# One plain gate statement: name, optional (params, one level of nested parentheses), arguments, ';'.
_FAST = re.compile(r"\s*([A-Za-z_]\w*)\b\s*(?:\(([^;{}()]*(?:\([^;{}()]*\)[^;{}()]*)*)\)\s*)?([^;{}()\"]*);")
# Most parameters are a signed product of numbers and pi ("-3*pi/4", "0.25"): read directly.
_NUM = r"(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_PRODUCT = re.compile(rf"\s*([-+]?)\s*((?:{_NUM}|pi)(?:\s*[*/]\s*(?:{_NUM}|pi))*)\s*")
_FACTOR = re.compile(rf"([*/]?)\s*({_NUM}|pi)")
_KEYWORDS = {"OPENQASM", "include", "qreg", "creg", "gate", "opaque", "barrier", "measure", "reset", "if"}
_FUNCTIONS = {"sin": math.sin, "cos": math.cos, "tan": math.tan, "exp": math.exp, "ln": math.log,
              "sqrt": math.sqrt, "asin": math.asin, "acos": math.acos, "atan": math.atan}
_RESERVED = _KEYWORDS | {"pi"} | set(_FUNCTIONS)
_BINARY = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv, "^": math.pow}


class _Lexer:
    """Tokens ``(kind, value, position)`` of ``text[pos:end]``, one at a time."""

    def __init__(self, text, pos=0, end=None):
        self.text, self.pos, self.end = text, pos, len(text) if end is None else end
        self.tok = None
        self.advance()

    def advance(self):
        """Move to the next token; return the current one."""
        tok = self.tok
        m = _TOKEN.match(self.text, self.pos, self.end)
        if m is None:
            self.tok = ("eof", "", self.end)
        else:
            self.tok, self.pos = (m.lastgroup, m.group(m.lastgroup), m.start(m.lastgroup)), m.end()
        return tok

    def fail(self, message, pos=None):
        raise QasmError(f"line {_line(self.text, self.tok[2] if pos is None else pos)}: {message}")

    def unexpected(self, expected):
        kind, value, _ = self.tok
        got = "end of input" if kind == "eof" else f"unexpected character {value!r}" if kind == "bad" \
            else f"{value!r}"
        self.fail(f"expected {expected}, got {got}")

    def accept(self, op):
        if self.tok[0] == "op" and self.tok[1] == op:
            return self.advance()
        return None

    def expect(self, op):
        return self.accept(op) or self.unexpected(f"'{op}'")

    def expect_kind(self, kind, what):
        return self.advance() if self.tok[0] == kind else self.unexpected(what)


def _line(text, pos):
    return text.count("\n", 0, pos) + 1


def _strip_comments(text):
    """Blank out comments, keeping every newline (so line numbers stay right)."""
    if "//" not in text and "/*" not in text:
        return text
    return _COMMENT.sub(lambda m: " " + "\n" * m.group().count("\n"), text)


# ---------------------------------------------------------------------------
# Parameter expressions: a constant folds to a float; one that uses a gate's
# parameters becomes a function ``env -> float`` (env: parameter name -> value).
def _expression(lex, scope):
    """expr := term (('+' | '-') term)*"""
    value = _term(lex, scope)
    while lex.tok[0] == "op" and lex.tok[1] in "+-":
        op, pos = lex.advance()[1], lex.tok[2]
        value = _combine(lex, pos, _BINARY[op], value, _term(lex, scope))
    return value


def _term(lex, scope):
    """term := unary (('*' | '/') unary)*"""
    value = _unary(lex, scope)
    while lex.tok[0] == "op" and lex.tok[1] in "*/":
        op, pos = lex.advance()[1], lex.tok[2]
        value = _combine(lex, pos, _BINARY[op], value, _unary(lex, scope))
    return value


def _unary(lex, scope):
    """unary := ('-' | '+') unary | atom ('^' unary)?   (so ^ is right-associative and binds tighter)"""
    if lex.accept("-"):
        return _combine(lex, lex.tok[2], operator.neg, _unary(lex, scope))
    if lex.accept("+"):
        return _unary(lex, scope)
    base = _atom(lex, scope)
    if lex.tok[0] == "op" and lex.tok[1] == "^":
        pos = lex.advance()[2]
        return _combine(lex, pos, math.pow, base, _unary(lex, scope))
    return base


def _atom(lex, scope):
    """atom := number | pi | parameter | function '(' expr ')' | '(' expr ')'"""
    kind, value, pos = lex.tok
    if kind in ("int", "real"):
        lex.advance()
        return float(value)
    if kind == "id" and value == "pi":
        lex.advance()
        return math.pi
    if kind == "id" and value in _FUNCTIONS:
        lex.advance()
        lex.expect("(")
        arg = _expression(lex, scope)
        lex.expect(")")
        return _combine(lex, pos, _FUNCTIONS[value], arg)
    if kind == "id":
        if value not in scope:
            lex.fail(f"'{value}' is not defined in this scope (not a parameter, 'pi' or a function)")
        lex.advance()
        return lambda env: env[value]
    if lex.accept("("):
        inner = _expression(lex, scope)
        lex.expect(")")
        return inner
    return lex.unexpected("a number, 'pi', a parameter, a function or '('")


def _combine(lex, pos, fn, *args):
    """``fn(*args)``: computed now when every argument is a constant, else deferred."""
    text = lex.text
    if all(type(a) is float for a in args):
        return _compute(text, pos, fn, args)
    parts = [a if callable(a) else (lambda env, v=a: v) for a in args]
    return lambda env: _compute(text, pos, fn, [p(env) for p in parts])


def _compute(text, pos, fn, args):
    try:
        return float(fn(*args))
    except (ValueError, ZeroDivisionError, OverflowError) as e:
        detail = "division by zero" if isinstance(e, ZeroDivisionError) else "math error"
        raise QasmError(f"line {_line(text, pos)}: {detail} in a parameter expression "
                        f"({getattr(fn, '__name__', fn)} of {', '.join(f'{a:g}' for a in args)})") from None


def _product(text):
    """The value of ``[-]a*b/c...`` with numbers and ``pi`` as factors; None for anything else."""
    m = _PRODUCT.fullmatch(text)
    if m is None:
        return None
    sign, body = m.groups()
    if "*" not in body and "/" not in body and body != "pi":
        return -float(body) if sign == "-" else float(body)
    value = 1.0
    for op, factor in _FACTOR.findall(body):
        x = math.pi if factor == "pi" else float(factor)
        if op != "/":
            value *= x
        elif x == 0.0:
            return None     # the general parser reports the division by zero
        else:
            value /= x
    return -value if sign == "-" else value


def _finite(text, pos, values):
    """``values``, or a QasmError if one of them is infinite or nan."""
    if all(map(math.isfinite, values)):
        return values
    for v in values:
        if not math.isfinite(v):
            raise QasmError(f"line {_line(text, pos)}: parameter evaluates to {v}, which is not finite")
    return values


# ---------------------------------------------------------------------------
class _Parser:
    """One parse of one program; all state (registers, gates, caches) lives here."""

    def __init__(self, text):
        self.text = _strip_comments(text)
        self.qregs, self.cregs, self.gates = {}, {}, dict(_BUILTIN)
        self.n_qubits, self.included = 0, False
        self.ops, self.measurements, self.measured = [], [], {}   # measured: wire -> position
        # Per-parse caches: statement (name, params text, args text) -> (ops, wires touched);
        # params text -> values; args text -> applications; (user gate, params) -> flat body.
        self._statements, self._params, self._args, self._expanded = {}, {}, {}, {}

    def parse(self):
        """Read every statement: plain gate statements by `_FAST` and the statement cache."""
        text, fast, cache, ops, measured, pos = self.text, _FAST.match, self._statements, self.ops, self.measured, 0
        while True:
            m = fast(text, pos)
            hit = None if m is None else cache.get(m.groups())
            if hit is None and m is not None and m.group(1) not in _KEYWORDS:
                hit = cache[m.groups()] = self._fast_statement(m)
            if hit is not None:
                if measured:
                    self._check_not_measured(hit[1], m.start(1))
                ops.extend(hit[0])
                pos = m.end()
                continue
            lex = _Lexer(text, pos)
            if lex.tok[0] == "eof":
                break
            self._statement(lex)
            pos = lex.tok[2]
        if not self.qregs:
            raise QasmError(f"line {_line(text, len(text))}: the program declares no qubits (add a 'qreg')")
        return QasmProgram(self.n_qubits, self.qregs, self.cregs, self.ops, self.measurements)

    def _fail(self, pos, message):
        raise QasmError(f"line {_line(self.text, pos)}: {message}")

    # -- gate applications ---------------------------------------------------
    def _fast_statement(self, m):
        """A statement matched by `_FAST`: ``(ops, wires touched)``, params and args through the caches."""
        name, ptext, atext = m.groups()
        gate, pos = self.gates.get(name), m.start(1)
        if gate is None:
            self._unknown_gate(name, pos)
        params = () if ptext is None else self._params.get(ptext)
        if params is None:
            params = self._params[ptext] = self._param_values(ptext, m.start(2), m.end(2))
        args = self._args.get(atext)
        if args is None:
            args = self._args[atext] = self._qargs(_Lexer(self.text, m.start(3), m.end(3) + 1))
        return self._applications(gate, name, params, args, pos)

    def _param_values(self, ptext, start, end):
        """The inside of a gate's parameter list (fast path): products of numbers and pi directly."""
        if "(" not in ptext:
            values = tuple(map(_product, ptext.split(",")))
            if None not in values:
                return _finite(self.text, start, values)
        lex = _Lexer(self.text, start, end + 1)     # up to and with the closing ')'
        return _finite(self.text, start, tuple(self._expressions(lex, frozenset())))

    def _expressions(self, lex, scope):
        """``[expr (',' expr)*] ')'`` (after the opening parenthesis) -> list of constants or functions."""
        exprs = []
        if not lex.accept(")"):
            exprs.append(_expression(lex, scope))
            while lex.accept(","):
                exprs.append(_expression(lex, scope))
            if not lex.accept(")"):
                lex.unexpected("',' or ')'")
        return exprs

    def _applications(self, gate, name, params, args, pos):
        """Check ``name(params) args``; return its ops (broadcast, expanded) and the wires it touches."""
        n_args, apps = args
        if len(params) != gate.n_params or n_args != gate.n_qubits:
            self._fail(pos, f"gate '{name}' takes {gate.n_params} parameter(s) and {gate.n_qubits} qubit(s), "
                            f"got {len(params)} parameter(s) and {n_args} qubit(s)")
        touched = apps[0] if len(apps) == 1 else tuple(dict.fromkeys(w for wires in apps for w in wires))
        if type(gate) is _Gate:
            return tuple((name, wires, params) for wires in apps), touched
        return tuple(op for wires in apps for op in self._expand(gate, params, wires, pos)), touched

    def _unknown_gate(self, name, pos):
        if name in self.qregs or name in self.cregs:
            self._fail(pos, f"'{name}' is a register, not a gate")
        hint = " (it is defined in qelib1.inc: add 'include \"qelib1.inc\";')" if name in _QELIB1 else ""
        self._fail(pos, f"unknown gate '{name}'{hint}")

    def _check_not_measured(self, wires, pos):
        for w in wires:
            if w in self.measured:
                self._fail(pos, f"mid-circuit measurement (a gate on qubit {self._qubit_name(w)} after "
                                f"it was measured on line {_line(self.text, self.measured[w])}) is not "
                                "supported; measure only at the end")

    def _qubit_name(self, wire):
        for name, (first, size) in self.qregs.items():
            if first <= wire < first + size:
                return f"{name}[{wire - first}]"
        raise AssertionError(wire)

    def _expand(self, gate, params, wires, pos):
        """A user gate's body on ``wires`` as ops (the body is flattened once per parameter values)."""
        key = (gate.name, params)
        flat = self._expanded.get(key)
        if flat is None:
            flat = self._expanded[key] = self._flatten(gate, params, pos)
        return [(name, tuple(wires[i] for i in idx), p) for name, idx, p in flat]

    def _flatten(self, gate, params, pos):
        """``gate``'s body as ``(qelib1 name, indices into its qubit args, params)``, recursively."""
        if gate.body is None:
            self._fail(pos, f"gate '{gate.name}' is declared opaque (no definition), so it cannot be simulated")
        env = dict(zip(gate.params, params))
        flat = []
        for callee, exprs, idx in gate.body:
            values = _finite(self.text, pos, tuple(e(env) if callable(e) else e for e in exprs))
            if type(callee) is _Gate:
                flat.append((callee.name, idx, values))
            else:
                flat.extend((n, tuple(idx[i] for i in sub), p) for n, sub, p in self._flatten(callee, values, pos))
        return flat

    # -- arguments -----------------------------------------------------------
    def _qargs(self, lex):
        """``arg (',' arg)* ';'`` to ``(number of args, [wires of each broadcast application])``."""
        groups = [self._qarg(lex)]
        while lex.accept(","):
            groups.append(self._qarg(lex))
        if not lex.accept(";"):
            lex.unexpected("',' or ';'")
        return len(groups), self._broadcast(groups, lex)

    def _qarg(self, lex):
        """``name`` or ``name[i]`` of a qreg: ``(name, wires, is_whole_register, position)``."""
        return self._register_arg(lex, self.qregs, "qreg")

    def _register_arg(self, lex, regs, kind):
        name, pos = lex.tok[1], lex.tok[2]
        lex.expect_kind("id", f"a {kind} name")
        if name not in regs:
            other = self.cregs if kind == "qreg" else self.qregs
            why = f"it is a {'creg' if kind == 'qreg' else 'qreg'}, not a {kind}" if name in other \
                else f"no {kind} of that name was declared"
            lex.fail(f"'{name}' is not defined in this scope ({why})", pos)
        first, size = regs[name] if kind == "qreg" else (0, regs[name])
        if not lex.accept("["):
            return name, tuple(range(first, first + size)), True, pos
        index = int(lex.expect_kind("int", "an integer index")[1])
        lex.expect("]")
        if index >= size:
            lex.fail(f"index {index} is out of range for {kind} {name}[{size}] (allowed 0..{size - 1})", pos)
        return name, (first + index,), False, pos

    def _broadcast(self, groups, lex):
        """Unroll whole-register arguments element-wise; single qubits repeat."""
        sizes = {len(wires) for _, wires, whole, _ in groups if whole}
        if len(sizes) > 1:
            shown = ", ".join(f"{name}[{len(wires)}]" for name, wires, whole, _ in groups if whole)
            lex.fail(f"registers of different sizes in one statement: {shown}", groups[0][3])
        count = sizes.pop() if sizes else 1
        apps = [tuple(wires[i] if whole else wires[0] for _, wires, whole, _ in groups) for i in range(count)]
        for wires in apps:
            if len(set(wires)) != len(wires):
                dup = next(w for w in wires if wires.count(w) > 1)
                lex.fail(f"qubit {self._qubit_name(dup)} is used more than once in one gate", groups[0][3])
        return apps

    # -- other statements ----------------------------------------------------
    def _statement(self, lex):
        """One statement through the tokenizer (keywords, gate bodies, unusual layouts)."""
        kind, word, pos = lex.tok
        if kind != "id":
            lex.unexpected("a statement")
        handler = _HANDLERS.get(word)
        if handler is None:
            return self._gate_statement(lex)
        lex.advance()
        return handler(self, lex, pos)

    def _gate_statement(self, lex):
        """``name ['(' exprs ')'] args ';'`` in a layout `_FAST` does not take."""
        name, pos = lex.advance()[1:]
        gate = self.gates.get(name)
        if gate is None:
            self._unknown_gate(name, pos)
        params = ()
        if lex.accept("("):
            params = _finite(self.text, pos, tuple(self._expressions(lex, frozenset())))
        args = self._qargs(lex)
        ops, touched = self._applications(gate, name, params, args, pos)
        self._check_not_measured(touched, pos)
        self.ops.extend(ops)

    def _openqasm(self, lex, pos):
        version = lex.tok[1]
        lex.expect_kind("real" if "." in version else "int", "a version number such as 2.0")
        if self.text[:pos].strip():
            lex.fail("'OPENQASM' must be the first statement", pos)
        if version.split(".")[0] != "2":
            lex.fail(f"OpenQASM version {version} is not supported (only 2.0)", pos)
        lex.expect(";")

    def _include(self, lex, pos):
        path = lex.expect_kind("str", 'a file name in quotes, such as "qelib1.inc"')[1]
        if path != '"qelib1.inc"':
            lex.fail(f"cannot include {path}: only \"qelib1.inc\" is available (qsim reads no files)", pos)
        lex.expect(";")
        if not self.included:
            self._declare_gates(_QELIB1.values(), pos)
            self.included = True

    def _declare_gates(self, gates, pos):
        for gate in gates:
            self._check_new_name(gate.name, pos)
            self.gates[gate.name] = gate

    def _check_new_name(self, name, pos):
        if name in _RESERVED:
            self._fail(pos, f"'{name}' is a reserved word and cannot name a register or gate")
        if name in self.gates or name in self.qregs or name in self.cregs:
            self._fail(pos, f"'{name}' is already defined (redeclaration)")

    def _register(self, lex, pos, kind):
        name, name_pos = lex.expect_kind("id", f"a {kind} name")[1:]
        lex.expect("[")
        size = int(lex.expect_kind("int", "the register size (an integer)")[1])
        lex.expect("]")
        lex.expect(";")
        self._check_new_name(name, name_pos)
        if size < 1:
            lex.fail(f"{kind} '{name}' must have at least one bit, got size {size}", name_pos)
        if kind == "qreg":
            self.qregs[name] = (self.n_qubits, size)
            self.n_qubits += size
        else:
            self.cregs[name] = size

    def _barrier(self, lex, pos):
        self._qargs(lex)

    def _measure(self, lex, pos):
        qubits = self._qarg(lex)
        lex.expect("->")
        bits = self._register_arg(lex, self.cregs, "creg")
        lex.expect(";")
        (_, wires, whole, _), (creg, clbits, whole_creg, _) = qubits, bits
        if whole != whole_creg or len(wires) != len(clbits):
            lex.fail("measure needs a qubit and a bit, or a qreg and a creg of the same size", pos)
        for wire, clbit in zip(wires, clbits):
            if wire in self.measured:
                lex.fail(f"qubit {self._qubit_name(wire)} is measured a second time (first on line "
                         f"{_line(self.text, self.measured[wire])}); only one terminal measurement per qubit "
                         "is supported", pos)
            self.measured[wire] = pos
            self.measurements.append((wire, (creg, clbit)))

    def _qreg(self, lex, pos):
        self._register(lex, pos, "qreg")

    def _creg(self, lex, pos):
        self._register(lex, pos, "creg")

    # -- gate definitions ----------------------------------------------------
    def _gate_header(self, lex):
        """``name ['(' params ')'] qargs``: the name, parameter names and qubit names."""
        name, pos = lex.expect_kind("id", "a gate name")[1:]
        self._check_new_name(name, pos)
        params = []
        if lex.accept("(") and not lex.accept(")"):
            params = self._id_list(lex, "a parameter name")
            lex.expect(")")
        qubits = self._id_list(lex, "a qubit argument name")
        if len(set(params + qubits)) != len(params + qubits):
            lex.fail(f"gate '{name}' repeats a parameter or qubit name", pos)
        if _RESERVED.intersection(params + qubits):
            lex.fail(f"gate '{name}' uses a reserved word {sorted(_RESERVED.intersection(params + qubits))} "
                     "as a parameter or qubit name", pos)
        return name, tuple(params), tuple(qubits)

    def _id_list(self, lex, what):
        names = [lex.expect_kind("id", what)[1]]
        while lex.accept(","):
            names.append(lex.expect_kind("id", what)[1])
        return names

    def _opaque(self, lex, pos):
        name, params, qubits = self._gate_header(lex)
        lex.expect(";")
        self.gates[name] = _UserGate(name, params, len(params), len(qubits), None)

    def _gate_definition(self, lex, pos):
        name, params, qubits = self._gate_header(lex)
        lex.expect("{")
        body = []
        while not lex.accept("}"):
            entry = self._body_statement(lex, set(params), {q: i for i, q in enumerate(qubits)})
            if entry is not None:
                body.append(entry)
        self.gates[name] = _UserGate(name, params, len(params), len(qubits), tuple(body))

    def _body_statement(self, lex, scope, qubits):
        """One ``name(exprs) qubits;`` inside a gate body -> ``(callee, exprs, qubit indices)``."""
        name, pos = lex.expect_kind("id", "a gate statement or '}'")[1:]
        if name in _KEYWORDS - {"barrier"}:
            lex.fail(f"'{name}' is not allowed inside a gate body", pos)
        exprs = []
        if name != "barrier" and lex.accept("("):
            exprs = self._expressions(lex, scope)
        idx = []
        for qname in self._id_list(lex, "a qubit argument name of the gate"):
            if qname not in qubits:
                lex.fail(f"'{qname}' is not defined in this scope (not a qubit argument of the gate)", pos)
            idx.append(qubits[qname])
        lex.expect(";")
        if name == "barrier":
            return None
        callee = self.gates.get(name)
        if callee is None:
            self._unknown_gate(name, pos)
        if len(exprs) != callee.n_params or len(idx) != callee.n_qubits:
            lex.fail(f"gate '{name}' takes {callee.n_params} parameter(s) and {callee.n_qubits} qubit(s), "
                     f"got {len(exprs)} parameter(s) and {len(idx)} qubit(s)", pos)
        if len(set(idx)) != len(idx):
            lex.fail(f"a qubit is used more than once in one '{name}' gate", pos)
        return callee, tuple(exprs), tuple(idx)


def _unsupported(feature):
    """A statement handler that rejects ``feature`` at the statement's line."""
    def handler(parser, lex, pos):
        lex.fail(f"{feature} is not supported (qsim runs unitary circuits with terminal measurements only)", pos)
    return handler


_HANDLERS = {"OPENQASM": _Parser._openqasm, "include": _Parser._include, "qreg": _Parser._qreg,
             "creg": _Parser._creg, "gate": _Parser._gate_definition, "opaque": _Parser._opaque,
             "barrier": _Parser._barrier, "measure": _Parser._measure, "reset": _unsupported("reset"),
             "if": _unsupported("classical control ('if' statement)")}


# ---------------------------------------------------------------------------
def parse(text: str) -> QasmProgram:
    """Parse OpenQASM 2.0 text into a flat `QasmProgram` (no Circuit is built).

    Raises:
      QasmError: the message starts with ``line N:`` and says what was wrong.
    """
    if not isinstance(text, str):
        raise TypeError(f"from_qasm: text must be the program as a str (read the file first), "
                        f"got {type(text).__name__}")
    return _Parser(text).parse()


def from_qasm(text: str, *, dtype=None) -> Circuit:
    """Build a `Circuit` from an OpenQASM 2.0 program.

    Supports ``qelib1.inc`` (built in, with Qiskit's matrices), ``U`` and ``CX``,
    user ``gate`` definitions, several ``qreg``s (concatenated in declaration
    order: wire 0 is the first qubit of the first register), register
    broadcasting, parameter expressions (``pi``, ``+ - * / ^``, ``sin cos tan
    exp ln sqrt asin acos atan``), ``//`` and ``/* */`` comments. ``barrier``
    is ignored; terminal ``measure`` statements are recorded in
    ``circuit.measurements`` as ``{wire: (creg name, index)}``.

    Args:
      text: the program text.
      dtype: the circuit's dtype (``None``: complex64).

    Returns:
      A `Circuit` on as many wires as the program declares qubits.

    Raises:
      QasmError: a syntax error, an undeclared name, an index out of range, an
        unknown gate, a wrong number of parameters or qubits, a repeated qubit,
        a redeclaration, or an unsupported feature (mid-circuit measurement,
        ``reset``, ``if``, opaque gates); the message starts with ``line N:``.

    Example:
      >>> c = from_qasm('OPENQASM 2.0; include "qelib1.inc"; qreg q[2]; h q[0]; cx q[0], q[1];')
      >>> c.probs()   # [0.5, 0, 0, 0.5]
    """
    program = parse(text)
    circuit = Circuit(program.n_qubits, dtype=dtype)
    for name, wires, params in program.ops:
        _TABLE[name].apply(circuit, *wires, *params)
    for wire, clbit in program.measurements:
        circuit.measure(wire, clbit)
    return circuit
