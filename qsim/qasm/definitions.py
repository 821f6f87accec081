"""``gate`` and ``opaque`` definitions, and the parameter lists of gate applications.

A definition is read once into a `UserGate` whose body holds, per statement,
the callee, an evaluator of its parameters (floats, or functions of the gate's
parameter values) and its qubits as indices into the gate's qubit arguments;
`program.Expander` substitutes calls into it later. Programs written by tools
hold thousands of definitions, so the common layout is read by regular
expressions and string splits (`fast_definition`); anything else goes
through the lexer (`_definition`), which also writes the error messages.

Qiskit's rules: a gate acts on at least one qubit; its parameter and qubit
names are distinct and may shadow gate or register names; its body applies
gates defined before it (no recursion), or ``barrier`` (ignored); ``U`` and
``CX`` are always available.
"""

from __future__ import annotations

import re

from .expressions import NUMBER, expression, expression_list, product, quick
from .lexer import KEYWORDS, RESERVED, Lexer
from .program import UserGate, body_entry

_NAME = r"[a-z]\w*"
# (Each part can match text in one way only, so a failed match never backtracks for long.)
_GATE = re.compile(rf"gate\s+({_NAME})\b(?:\s*\(([\w\s,]*)\))?([\w\s,]*)\{{([^{{}}]*)\}}", re.A)
_BODY = re.compile(rf"\s*({_NAME}|U|CX)\b(?:\s*\((.*)\))?((?:\s*{_NAME}\b\s*,)*(?:\s*{_NAME}\b)?\s*)",
                   re.A | re.S)
_IDENTIFIER = re.compile(_NAME, re.A)
_MISSING = object()
# A parameter list of plain signed numbers (a trailing comma allowed), read with float() at once.
_NUMBERS = re.compile(rf"(?:\s*[-+]?{NUMBER}\s*,)*\s*[-+]?{NUMBER}\s*,?\s*", re.A)


def gate_definition(parser, lex: Lexer, pos: int) -> int:
    """``gate name[(params)] qubits { body }``: declares a `UserGate`; the position after ``}``."""
    end = fast_definition(parser, pos)
    return _definition(parser, lex) if end is None else end


def opaque(parser, lex: Lexer, pos: int) -> int:
    """``opaque name[(params)] qubits;``: a gate without a body (an error if it is ever applied)."""
    name, params, qubits = _header(parser, lex, ";")
    parser.gates[name] = UserGate(name, len(params), len(qubits), None)
    return lex.finish(";")


def parameters(parser, start: int, end: int, scope: dict, scope_key: tuple) -> list:
    """The expressions of ``text[start:end]``, the inside of a parameter list (the ')' is at ``end``).

    A list of plain numbers is read at once; otherwise each comma-separated piece is
    parsed once per parse and scope (cached on the parser).
    """
    text = parser.text
    inside = text[start:end]
    if _NUMBERS.fullmatch(inside):
        return [float(x) for x in inside.split(",") if not x.isspace() and x]
    pieces = inside.split(",")
    if len(pieces) > 1 and not pieces[-1].strip():
        pieces.pop()       # a trailing comma
    if "(" in inside or any(not p.strip() for p in pieces):
        lex = Lexer(text, start, end + 1)
        exprs = expression_list(lex, scope)
        lex.expect(")")
        return exprs
    out, cache = [], parser.exprs
    for piece in pieces:
        key = (piece, scope_key)
        value = cache.get(key)
        if value is None:
            value = cache[key] = _piece(text, start, start + len(piece), scope)
        out.append(value)
        start += len(piece) + 1
    return out


def _piece(text, start, end, scope):
    """One parameter of a list: ``text[start:end]``, followed by ',' or ')' at ``end``."""
    value = product(text[start:end])
    if value is None:
        value = quick(text[start:end], scope)
    if value is not None:
        return value
    lex = Lexer(text, start, end + 1)
    value = expression(lex, scope)
    if lex.tok[2] != end:
        lex.unexpected("',' or ')'")
    return value


# -- the common layout, without the lexer ----------------------------------------------
def fast_definition(parser, pos):
    """Read the definition at ``pos`` if its layout is plain and it is valid; None to use the lexer."""
    m = _GATE.match(parser.text, pos)
    if m is None:
        return None
    name, ptext, qtext, btext = m.groups()
    header = parser.headers.get((ptext, qtext))
    if header is None:
        header = parser.headers[(ptext, qtext)] = _header_names(ptext or "", qtext)
    if header is False or name in RESERVED or name in parser.gates or name in parser.qregs or name in parser.cregs:
        return None
    names, scope, qindex = header
    pieces = btext.split(";")
    if pieces[-1].strip():
        return None
    body, start, cache = [], m.start(4), parser.body_statements
    for piece in pieces[:-1]:
        key = (piece, names)
        entry = cache.get(key, _MISSING)
        if entry is _MISSING:
            entry = cache[key] = _fast_statement(parser, piece, start, scope, names[0], qindex)
        if entry is False:
            return None
        if entry is not None:
            body.append(entry)
        start += len(piece) + 1
    parser.gates[name] = UserGate(name, len(scope), len(qindex), tuple(body))
    return m.end()


def _header_names(ptext, qtext):
    """``((params, qubits), scope, qubit index)`` of a plain header's name lists; False if not plain."""
    params, qubits = _names(ptext), _names(qtext)
    if params is None or not qubits or len(set(params + qubits)) != len(params) + len(qubits):
        return False
    return (tuple(params), tuple(qubits)), {p: i for i, p in enumerate(params)}, {q: i for i, q in enumerate(qubits)}


def _names(text):
    """``a, b, c`` (a trailing comma allowed) as a list of valid names; None if one is not."""
    if not text.strip():
        return []
    names = [s.strip() for s in text.split(",")]
    if len(names) > 1 and not names[-1]:
        names.pop()
    if all(_IDENTIFIER.fullmatch(n) and n not in RESERVED for n in names):
        return names
    return None


def _fast_statement(parser, piece, start, scope, scope_key, qindex):
    """One body statement: its entry, None for a barrier, False to use the lexer."""
    m = _BODY.fullmatch(piece)
    if m is None:
        return False
    name, ptext, atext = m.groups()
    args = "".join(atext.split()).split(",")
    if not args[-1]:
        args.pop()          # no arguments, or a trailing comma
    idx = tuple([qindex.get(a) for a in args])
    if None in idx:
        return False
    if name == "barrier":
        return None if ptext is None else False
    callee = parser.gates.get(name)
    if callee is None or name in KEYWORDS:
        return False
    exprs = () if ptext is None else parameters(parser, start + m.start(2), start + m.end(2), scope, scope_key)
    if len(exprs) != callee.n_params or len(idx) != callee.n_qubits or len(set(idx)) != len(idx):
        return False
    return body_entry(callee, exprs, idx)


# -- any layout, with the lexer and its error messages ----------------------------------
def _header(parser, lex, stop):
    """``name ['(' params ')'] qubits`` up to ``stop``: the name, parameter names and qubit names."""
    name, pos = lex.name("a gate name")
    parser.check_new_name(name, pos)
    params = []
    if lex.accept("("):
        params = lex.comma_list(lambda: lex.name("a parameter name")[0], ")")
        lex.expect(")")
    qubits = lex.comma_list(lambda: lex.name("a qubit argument name")[0], stop)
    if not qubits:
        lex.fail(f"gate '{name}' must act on at least one qubit", pos)
    for i, arg in enumerate(params + qubits):
        if arg in (params + qubits)[:i]:
            lex.fail(f"gate '{name}' uses the name '{arg}' twice among its parameters and qubits", pos)
    return name, params, qubits


def _definition(parser, lex):
    name, params, qubits = _header(parser, lex, "{")
    lex.expect("{")
    scope, qindex = {p: i for i, p in enumerate(params)}, {q: i for i, q in enumerate(qubits)}
    body = []
    while not lex.at("}"):
        entry = _statement(parser, lex, scope, qindex)
        if entry is not None:
            body.append(entry)
    parser.gates[name] = UserGate(name, len(params), len(qubits), tuple(body))
    return lex.finish("}")


def _statement(parser, lex, scope, qindex):
    """One ``name(exprs) qubits;`` in a body: its entry (None for a barrier)."""
    kind, name, pos = lex.tok
    if kind != "id":
        lex.unexpected("a gate application or '}'")
    if name in KEYWORDS and name != "barrier":
        lex.fail(f"only gate applications (and 'barrier') are allowed inside a gate body, got '{name}'")
    lex.advance()
    exprs = []
    if name != "barrier" and lex.accept("("):
        exprs = expression_list(lex, scope)
        lex.expect(")")
    idx = lex.comma_list(lambda: _qubit(lex, qindex), ";")
    if name != "barrier":
        callee = parser.gate(name, pos)
        if len(exprs) != callee.n_params or len(idx) != callee.n_qubits:
            lex.fail(f"gate '{name}' takes {callee.n_params} parameter(s) and {callee.n_qubits} qubit(s), "
                     f"got {len(exprs)} parameter(s) and {len(idx)} qubit(s)", pos)
        if len(set(idx)) != len(idx):
            lex.fail(f"a qubit is used more than once in one '{name}' gate", pos)
    lex.expect(";")
    return None if name == "barrier" else body_entry(callee, exprs, tuple(idx))


def _qubit(lex, qindex):
    kind, name, pos = lex.tok
    lex.expect_kind("id", "a qubit argument name of the gate")
    if name not in qindex:
        lex.fail(f"'{name}' is not defined in this scope (not a qubit argument of the gate)", pos)
    return qindex[name]
