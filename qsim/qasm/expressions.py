"""Parameter expressions of OpenQASM 2.0: constants fold to floats, the rest become functions.

Grammar (as OpenQASM 2.0 and Qiskit's reader: ``^`` is right-associative and
binds tighter than unary minus, so ``-2^2 == -4``)::

    expr  := term (('+' | '-') term)*
    term  := unary (('*' | '/') unary)*
    unary := ('-' | '+') unary | atom ('^' unary)?
    atom  := real | int | 'pi' | parameter | function '(' expr ')' | '(' expr ')'

with the functions ``sin cos tan exp ln sqrt``. An expression without gate
parameters folds to a ``float`` while it is parsed (a math error is a
`QasmError` at its line). Inside a ``gate`` body an expression that uses the
gate's parameters becomes a function ``args -> float`` of the tuple of the
gate's parameter values; evaluating it may raise ``ZeroDivisionError`` or
``ValueError``, which the caller reports at the line of the gate application.
"""

from __future__ import annotations

import math
import operator
import re

from .lexer import FUNCTIONS, Lexer, error

_MATH = dict(zip(FUNCTIONS, (math.sin, math.cos, math.tan, math.exp, math.log, math.sqrt)))
_BINARY = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv, "^": math.pow}

# A number (an int has no leading zeros), never followed by more of one (so a run of digits is one
# number: the patterns below cannot backtrack through ways of splitting it). Most parameters are a
# signed product of numbers and pi ("-3*pi/4", "0.25"): read without a lexer.
NUMBER = r"(?:(?:\d+\.\d*|\.\d+)(?:[eE][-+]?\d+)?|\d+[eE][-+]?\d+|0|[1-9]\d*)(?![\w.])"
_PRODUCT = re.compile(rf"\s*([-+]?)\s*((?:{NUMBER}|pi)(?:\s*[*/]\s*(?:{NUMBER}|pi))*)\s*", re.A)
_FACTOR = re.compile(rf"([*/]?)\s*({NUMBER}|pi)", re.A)
# Plain expressions (numbers, lowercase names, operators): one scan checks them, one splits them.
_QUICK = re.compile(rf"\s*(?:({NUMBER})|([a-z]\w*)|([-+*/^()]))", re.A)
_PLAIN = re.compile(rf"(?:\s*(?:{NUMBER}|[a-z]\w*(?!\w)|[-+*/^()]))*\s*", re.A)


def expression(lex: Lexer, scope: dict):
    """``expr`` at the lexer: a float, or (when it uses a name in ``scope``) a function of the args."""
    value = _term(lex, scope)
    while lex.tok[0] == "op" and lex.tok[1] in "+-":
        op, pos = lex.advance()[1], lex.tok[2]
        value = _combine(lex, pos, _BINARY[op], value, _term(lex, scope))
    return value


def _term(lex, scope):
    value = _unary(lex, scope)
    while lex.tok[0] == "op" and lex.tok[1] in "*/":
        op, pos = lex.advance()[1], lex.tok[2]
        value = _combine(lex, pos, _BINARY[op], value, _unary(lex, scope))
    return value


def _unary(lex, scope):
    if lex.accept("-"):
        return _combine(lex, lex.tok[2], operator.neg, _unary(lex, scope))
    if lex.accept("+"):
        return _unary(lex, scope)
    base = _atom(lex, scope)
    if lex.at("^"):
        pos = lex.advance()[2]
        return _combine(lex, pos, math.pow, base, _unary(lex, scope))
    return base


def _atom(lex, scope):
    kind, value, pos = lex.tok
    if kind in ("int", "real"):
        lex.advance()
        return float(value)
    if kind == "id" and value == "pi":
        lex.advance()
        return math.pi
    if kind == "id" and value in _MATH:
        lex.advance()
        lex.expect("(")
        arg = expression(lex, scope)
        lex.expect(")")
        return _combine(lex, pos, _MATH[value], arg)
    if kind == "id":
        index = scope.get(value)
        if index is None:
            lex.fail(f"'{value}' is not defined in this scope (not a parameter, 'pi' or a function)")
        lex.advance()
        return operator.itemgetter(index)
    if lex.accept("("):
        inner = expression(lex, scope)
        lex.expect(")")
        return inner
    return lex.unexpected("a number, 'pi', a parameter, a function or '('")


def _combine(lex, pos, fn, *args):
    """``fn(*args)``: computed now when every argument is a float, else a function of the args."""
    try:
        return _fold(fn, *args)
    except (ValueError, ZeroDivisionError, OverflowError) as e:
        raise error(lex.text, pos, f"{math_error(e)} in a parameter expression "
                                   f"({fn.__name__} of {', '.join(f'{a:g}' for a in args)})") from None


def math_error(e: Exception) -> str:
    return "division by zero" if isinstance(e, ZeroDivisionError) else "math error"


def expression_list(lex: Lexer, scope: dict) -> list:
    """``[expr (',' expr)* [',']] ')'`` (after the opening parenthesis): floats or functions."""
    return lex.comma_list(lambda: expression(lex, scope), ")")


def product(text: str):
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


def quick(text: str, scope: dict):
    """``text`` as a float or function, read from one regex scan; None if it is not plainly valid.

    The same grammar as `expression` over a token list (no error messages: on
    anything unusual it returns None and the caller uses the lexer, which reports).
    """
    if _PLAIN.fullmatch(text) is None:
        return None
    tokens = [num or name or op for num, name, op in _QUICK.findall(text)]
    tokens.append(";")
    try:
        value, i = _q_expr(tokens, 0, scope)
    except (_NotQuick, ValueError, ZeroDivisionError, OverflowError):
        return None
    return value if i == len(tokens) - 1 else None


class _NotQuick(Exception):
    pass


def _q_expr(t, i, scope):
    value, i = _q_term(t, i, scope)
    while t[i] in ("+", "-"):
        fn = _BINARY[t[i]]
        rhs, i = _q_term(t, i + 1, scope)
        value = _fold(fn, value, rhs)
    return value, i


def _q_term(t, i, scope):
    value, i = _q_unary(t, i, scope)
    while t[i] in ("*", "/"):
        fn = _BINARY[t[i]]
        rhs, i = _q_unary(t, i + 1, scope)
        value = _fold(fn, value, rhs)
    return value, i


def _q_unary(t, i, scope):
    tok = t[i]
    if tok == "-":
        value, i = _q_unary(t, i + 1, scope)
        return _fold(operator.neg, value), i
    if tok == "+":
        return _q_unary(t, i + 1, scope)
    base, i = _q_atom(t, i, scope)
    if t[i] == "^":
        exponent, i = _q_unary(t, i + 1, scope)
        return _fold(math.pow, base, exponent), i
    return base, i


def _q_atom(t, i, scope):
    tok = t[i]
    c = tok[0]
    if c.isdigit() or c == ".":
        return float(tok), i + 1
    if tok == "pi":
        return math.pi, i + 1
    if tok in _MATH:
        if t[i + 1] != "(":
            raise _NotQuick
        arg, i = _q_expr(t, i + 2, scope)
        if t[i] != ")":
            raise _NotQuick
        return _fold(_MATH[tok], arg), i + 1
    if tok == "(":
        inner, i = _q_expr(t, i + 1, scope)
        if t[i] != ")":
            raise _NotQuick
        return inner, i + 1
    index = scope.get(tok)
    if index is None:
        raise _NotQuick
    return operator.itemgetter(index), i + 1


def _fold(fn, *args):
    """``fn(*args)`` now if every argument is a float (which may raise a math error), else a function."""
    if all(type(a) is float for a in args):
        return float(fn(*args))
    if len(args) == 1:
        (x,) = args
        return lambda a: fn(x(a))
    x, y = args
    if type(x) is float:
        return lambda a: fn(x, y(a))
    if type(y) is float:
        return lambda a: fn(x(a), y)
    return lambda a: fn(x(a), y(a))


def check_finite(text: str, pos: int, values: tuple) -> tuple:
    """``values``, or a `QasmError` at ``pos`` if one of them is infinite or nan."""
    for v in values:
        if not math.isfinite(v):
            raise error(text, pos, f"parameter evaluates to {v}, which is not finite")
    return values


# -- parameter lists of gate bodies: constant tuples or functions of the args ---------------
def evaluator(exprs):
    """A parameter list as a tuple of floats (all constant) or a function ``args -> tuple``."""
    if not any(map(callable, exprs)):
        return tuple(exprs)
    fns = [e if callable(e) else (lambda a, v=e: v) for e in exprs]
    if len(fns) == 1:
        (f,) = fns
        return lambda a: (f(a),)
    return lambda a: tuple([f(a) for f in fns])


def compose(values, args):
    """``values`` (an `evaluator` of a callee's args) with the callee's args given by ``args``.

    Both are tuples of floats or functions; the result is an `evaluator` of the caller's args.
    """
    if type(values) is tuple:
        return values
    if type(args) is tuple:
        return values(args)
    return lambda a: values(args(a))
