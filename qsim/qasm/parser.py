"""OpenQASM 2.0 text to a `QasmProgram`: statements, registers, arguments and broadcasting.

Two paths read the same language. The fast one takes the common layouts with
one regular expression per statement: a plain gate application (``name(params)
args;``, whose parameter and argument texts are each resolved once per distinct
string) and a ``gate`` definition (see `definitions`). Everything else, and
anything the fast path is unsure of, goes through the `Lexer` and the
recursive-descent handlers here, which also write the error messages.

The rules are those of OpenQASM 2.0 as Qiskit's ``qiskit.qasm2`` reads them:
``barrier`` takes any qubits and registers (or none); a gate's register
arguments broadcast element-wise and must have equal sizes; empty statements
and trailing commas in lists are allowed; ``measure``, ``reset`` and ``if``
become `Statement` records (including ``if (c == n) measure ...``).
"""

from __future__ import annotations

import contextlib
import gc
import re

from .._validate import StateTooLargeError, check_memory
from . import definitions
from .expressions import check_finite, expression_list
from .lexer import KEYWORDS, RESERVED, Lexer, error, line_of, strip_comments
from .program import ExpansionError, Expander, QasmProgram, Statement, qubit_name
from .qelib1 import BUILTINS, QELIB1, Builtin

# One plain gate statement: name, optional (params, one level of nested parentheses), arguments, ';'.
_FAST = re.compile(r"\s*([a-z]\w*|U|CX)\b(?:\s*\(([^;{}()]*(?:\([^;{}()]*\)[^;{}()]*)*)\))?([^;{}()\"]*);",
                   re.A)
# The start of a ``gate`` definition (read by `definitions.fast_definition` when its layout is plain).
_DEFINITION = re.compile(r"\s*()gate\b", re.A)
# Below this many qubits two statevectors take at most 32 MiB: no need to ask how much memory is free.
_SMALL_QUBITS = 20
# Past this many a statevector is beyond any machine (and 2**n itself gets slow to compute).
_ABSURD_QUBITS = 200


class Parser:
    """One parse of one program; all state (registers, gates, caches) lives here."""

    def __init__(self, text: str, dtype):
        self.text, self.dtype = strip_comments(text), dtype
        self.qregs, self.cregs, self.gates = {}, {}, dict(BUILTINS)
        self.n_qubits, self.included = 0, None
        self.ops, self.starts, self.positions = [], [], []
        self.expander = Expander()
        self._last_line = (0, 1)        # (position, its line): see `line`
        # Per-parse caches: statement text groups -> ops; argument text -> (n args, applications);
        # (parameter text, parameter names in scope) -> float or function; for `definitions`: gate
        # header name lists -> names and indices; (body statement, names) -> its body entry.
        self._statements, self._args, self.exprs, self.headers, self.body_statements = {}, {}, {}, {}, {}

    def parse(self) -> QasmProgram:
        text, fast, cache, ops, pos = self.text, _FAST.match, self._statements, self.ops, 0
        definition = _DEFINITION.match
        starts, positions = self.starts, self.positions
        while True:
            m = fast(text, pos)
            if m is not None:
                hit = cache.get(m.groups())
                if hit is None and m.group(1) not in KEYWORDS:
                    hit = cache[m.groups()] = self._fast_statement(m)
                if hit is not None:
                    starts.append(len(ops))
                    positions.append(m.start(1))
                    ops.extend(hit)
                    pos = m.end()
                    continue
            d = definition(text, pos)
            if d is not None:
                end = definitions.fast_definition(self, d.end(1))
                if end is not None:
                    pos = end
                    continue
            lex = Lexer(text, pos)
            if lex.tok[0] == "eof":
                break
            pos = self._statement(lex)
        if self.n_qubits == 0:
            raise error(text, len(text), "the program declares no qubits (add a 'qreg' of at least one qubit)")
        return QasmProgram(self.n_qubits, self.qregs, self.cregs, ops, text, starts, positions)

    def fail(self, pos, message):
        raise error(self.text, pos, message)

    def line(self, pos):
        """The line of ``text[pos]``, counting on from the last position asked (statements come in order)."""
        last, line = self._last_line
        if pos < last:
            last, line = 0, 1
        line += self.text.count("\n", last, pos)
        self._last_line = (pos, line)
        return line

    # -- gate applications ---------------------------------------------------------
    def _fast_statement(self, m) -> tuple:
        """The ops of a statement matched by `_FAST` (parameters and arguments through the caches)."""
        name, ptext, atext = m.groups()
        pos = m.start(1)
        gate = self.gate(name, pos)
        params = () if ptext is None else check_finite(
            self.text, pos, tuple(definitions.parameters(self, m.start(2), m.end(2), {}, ())))
        args = self._args.get(atext)
        if args is None:
            lex = Lexer(self.text, m.start(3), m.end(3) + 1)
            args = self._args[atext] = self._qargs(lex)
            lex.finish(";")
        return tuple(self._applications(gate, name, params, args, pos))

    def _gate_statement(self, lex, condition=None) -> int:
        """``name ['(' exprs ')'] args ';'`` in a layout `_FAST` does not take (or after ``if``)."""
        name, pos = lex.advance()[1:]
        gate = self.gate(name, pos)
        params = ()
        if lex.accept("("):
            params = check_finite(self.text, pos, tuple(expression_list(lex, {})))
            lex.expect(")")
        n_args, apps = self._qargs(lex)
        end = lex.finish(";")
        if condition is None:
            self.starts.append(len(self.ops))
            self.positions.append(pos)
            self.ops.extend(self._applications(gate, name, params, (n_args, apps), pos))
        else:
            line = self.line(pos)
            for wires in apps:
                ops = tuple(self._applications(gate, name, params, (n_args, [wires]), pos))
                self.ops.append(Statement("gate", ops, condition, line))
        return end

    def gate(self, name, pos):
        """The gate called ``name`` (a `Builtin` or a user gate), or a `QasmError` saying why there is none."""
        gate = self.gates.get(name)
        if gate is not None:
            return gate
        if name in self.qregs or name in self.cregs:
            self.fail(pos, f"'{name}' is a register, not a gate")
        hint = " (it is defined in qelib1.inc: add 'include \"qelib1.inc\";')" if name in QELIB1 else ""
        self.fail(pos, f"unknown gate '{name}'{hint}")

    def _applications(self, gate, name, params, args, pos) -> list:
        """Check ``name(params) args``; its ops, broadcast and expanded."""
        n_args, apps = args
        if len(params) != gate.n_params or n_args != gate.n_qubits:
            self.fail(pos, f"gate '{name}' takes {gate.n_params} parameter(s) and {gate.n_qubits} qubit(s), "
                           f"got {len(params)} parameter(s) and {n_args} qubit(s)")
        if type(gate) is Builtin:
            return [(name, wires, params) for wires in apps]
        try:
            return [op for wires in apps for op in self.expander.expand(gate, params, wires)]
        except ExpansionError as e:
            self.fail(pos, str(e))

    # -- arguments -----------------------------------------------------------------
    def _qargs(self, lex):
        """``arg (',' arg)* [',']`` up to ';': ``(number of args, [wires of each broadcast application])``."""
        groups = lex.comma_list(lambda: self.register_arg(lex, "qreg"), ";")
        return len(groups), self._broadcast(groups)

    def register_arg(self, lex, kind):
        """``name`` or ``name[i]`` of a qreg/creg: ``(name, elements, is_whole_register, position)``.

        Elements are wires for a qreg and indices for a creg.
        """
        name, pos = lex.tok[1], lex.tok[2]
        lex.expect_kind("id", f"a {kind} name")
        regs, other = (self.qregs, self.cregs) if kind == "qreg" else (self.cregs, self.qregs)
        if name not in regs:
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

    def _broadcast(self, groups):
        """Unroll whole-register arguments element-wise (equal sizes); single qubits repeat."""
        sizes = {len(elems) for _, elems, whole, _ in groups if whole}
        if len(sizes) > 1:
            shown = ", ".join(f"{name}[{len(elems)}]" for name, elems, whole, _ in groups if whole)
            self.fail(groups[0][3], f"registers of different sizes in one statement: {shown}")
        count = sizes.pop() if sizes else 1
        apps = [tuple(elems[i] if whole else elems[0] for _, elems, whole, _ in groups) for i in range(count)]
        for wires in apps:
            if len(set(wires)) != len(wires):
                dup = next(w for w in wires if wires.count(w) > 1)
                self.fail(groups[0][3], f"qubit {self.qubit_name(dup)} is used more than once in one gate")
        return apps

    def qubit_name(self, wire):
        return qubit_name(self.qregs, wire)

    # -- statements ----------------------------------------------------------------
    def _statement(self, lex) -> int:
        """One statement through the lexer; the position just after it."""
        kind, word, pos = lex.tok
        if kind == "op" and word == ";":
            return pos + 1      # an empty statement
        if kind != "id":
            lex.unexpected("a statement")
        handler = _HANDLERS.get(word)
        if handler is None:
            return self._gate_statement(lex)
        lex.advance()
        return handler(self, lex, pos)

    def _openqasm(self, lex, pos):
        version = lex.tok[1]
        lex.expect_kind("real" if "." in version else "int", "a version number such as 2.0")
        if self.text[:pos].strip():
            lex.fail("'OPENQASM' must be the first statement", pos)
        if float(version) != 2.0:
            lex.fail(f"OpenQASM version {version} is not supported (only 2.0)", pos)
        return lex.finish(";")

    def _include(self, lex, pos):
        path = lex.expect_kind("str", 'a file name in quotes, such as "qelib1.inc"')[1]
        if path != '"qelib1.inc"':
            lex.fail(f"cannot include {path}: only \"qelib1.inc\" is available (qsim reads no files)", pos)
        end = lex.finish(";")
        if self.included is not None:
            lex.fail(f'"qelib1.inc" is already included (on line {line_of(self.text, self.included)}); '
                     "its gates cannot be defined twice", pos)
        for gate in QELIB1.values():
            self.check_new_name(gate.name, pos)
        self.gates.update(QELIB1)
        self.included = pos
        return end

    def check_new_name(self, name, pos):
        if name in RESERVED:
            self.fail(pos, f"'{name}' is a reserved word and cannot be used as a name")
        if name in self.gates or name in self.qregs or name in self.cregs:
            self.fail(pos, f"'{name}' is already defined (redeclaration)")

    def _register(self, lex, kind):
        name, name_pos = lex.name(f"a {kind} name")
        lex.expect("[")
        size = int(lex.expect_kind("int", "the register size (an integer)")[1])
        lex.expect("]")
        end = lex.finish(";")
        self.check_new_name(name, name_pos)
        if kind == "creg":
            self.cregs[name] = size
            return end
        self.qregs[name] = (self.n_qubits, size)
        self.n_qubits += size
        self._check_memory(name, size, name_pos)
        return end

    def _check_memory(self, name, size, pos):
        """A `StateTooLargeError` naming the line if the qubits declared so far cannot be simulated."""
        n = self.n_qubits
        if n < _SMALL_QUBITS:
            return
        try:
            if n > _ABSURD_QUBITS:
                raise StateTooLargeError(f"from_qasm: {n} qubits need a statevector of 2^{n} amplitudes, "
                                         "far beyond the memory of any machine")
            check_memory(n, self.dtype, 2, "from_qasm")
        except StateTooLargeError as e:
            raise StateTooLargeError(f"line {line_of(self.text, pos)}: qreg {name}[{size}] brings the program "
                                     f"to {n} qubits: {e}") from None

    def _qreg(self, lex, pos):
        return self._register(lex, "qreg")

    def _creg(self, lex, pos):
        return self._register(lex, "creg")

    def _barrier(self, lex, pos):
        """``barrier [args];``: any qubits and registers, of any sizes (ignored: it does nothing to a state)."""
        lex.comma_list(lambda: self.register_arg(lex, "qreg"), ";")
        return lex.finish(";")

    def _measure(self, lex, pos, condition=None):
        (_, wires, whole, _) = self.register_arg(lex, "qreg")
        lex.expect("->")
        (creg, bits, whole_creg, _) = self.register_arg(lex, "creg")
        end = lex.finish(";")
        if whole != whole_creg or len(wires) != len(bits):
            lex.fail("measure needs a qubit and a bit, or a qreg and a creg of the same size", pos)
        line = self.line(pos)
        self.ops.extend(Statement("measure", (w, (creg, b)), condition, line) for w, b in zip(wires, bits))
        return end

    def _reset(self, lex, pos, condition=None):
        (_, wires, _, _) = self.register_arg(lex, "qreg")
        end = lex.finish(";")
        line = self.line(pos)
        self.ops.extend(Statement("reset", (w,), condition, line) for w in wires)
        return end

    def _if(self, lex, pos):
        """``if (creg == n) op``: ``op`` a gate application, measure or reset, recorded with its condition."""
        lex.expect("(")
        name, name_pos = lex.tok[1], lex.tok[2]
        lex.expect_kind("id", "a creg name")
        if name not in self.cregs:
            why = "it is a qreg, not a creg" if name in self.qregs else "no creg of that name was declared"
            lex.fail(f"'{name}' is not defined in this scope ({why})", name_pos)
        lex.expect("==")
        value = int(lex.expect_kind("int", "a non-negative integer")[1])
        lex.expect(")")
        kind, word, op_pos = lex.tok
        if kind == "id" and word in ("measure", "reset"):
            lex.advance()
            return (self._measure if word == "measure" else self._reset)(lex, op_pos, (name, value))
        if kind != "id" or word in KEYWORDS:
            lex.unexpected("a gate application, measure or reset after 'if (...)'")
        return self._gate_statement(lex, (name, value))


_HANDLERS = {"OPENQASM": Parser._openqasm, "include": Parser._include, "qreg": Parser._qreg,
             "creg": Parser._creg, "gate": definitions.gate_definition, "opaque": definitions.opaque,
             "barrier": Parser._barrier, "measure": Parser._measure, "reset": Parser._reset, "if": Parser._if}


def parse(text: str, *, dtype=None) -> QasmProgram:
    """Parse OpenQASM 2.0 text into a flat `QasmProgram` (no Circuit is built).

    Args:
      text: the program.
      dtype: the dtype the statevector will have (complex64 when None), for the memory check.

    Raises:
      QasmError: the message starts with ``line N:`` and says what was wrong.
      StateTooLargeError: the declared qubits would not fit in memory (the message names the line).
    """
    if not isinstance(text, str):
        raise TypeError(f"from_qasm: text must be the program as a str (read the file first), "
                        f"got {type(text).__name__}")
    with paused_gc():
        return Parser(text, "complex64" if dtype is None else dtype).parse()


@contextlib.contextmanager
def paused_gc():
    """Pause the cyclic garbage collector (if it runs) around a block that makes few reference cycles.

    A parse allocates a few objects per character of the program (tuples,
    closures), almost none in cycles (any are collected once it resumes); the
    collector's passes over them and over JAX's heap (through JAX's gc
    callback) took half the time of a large parse.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()
