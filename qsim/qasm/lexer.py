"""Tokens of OpenQASM 2.0 text, line numbers, and the reader's error type.

The lexer follows the OpenQASM 2.0 grammar as Qiskit's ``qiskit.qasm2`` reads
it: ``//`` comments only (``/* */`` is not OpenQASM 2.0), identifiers start with
a lowercase letter (the builtins ``U`` and ``CX`` and the ``OPENQASM`` keyword
excepted), integers have no leading zeros, reals are ``1.5``, ``.5``, ``2.``,
``1e-3``. Every error is a `QasmError` whose message starts with ``line N:``.
"""

from __future__ import annotations

import re


class QasmError(ValueError):
    """An OpenQASM program that qsim cannot read; the message starts with ``line N:``."""


KEYWORDS = frozenset({"OPENQASM", "include", "qreg", "creg", "gate", "opaque", "barrier", "measure",
                      "reset", "if"})
FUNCTIONS = ("sin", "cos", "tan", "exp", "ln", "sqrt")
RESERVED = KEYWORDS | {"pi"} | set(FUNCTIONS)
_UPPERCASE_NAMES = frozenset({"U", "CX", "OPENQASM"})

_COMMENT = re.compile(r"//[^\n]*")
_TOKEN = re.compile(r"""\s*(?:
    (?P<real>(?:\d+\.\d*|\.\d+)(?:[eE][-+]?\d+)?|\d+[eE][-+]?\d+)
  | (?P<int>\d+)
  | (?P<id>[A-Za-z_]\w*)
  | (?P<str>"[^"\n]*")
  | (?P<op>->|==|[-+*/^(),;\[\]{}])
  | (?P<bad>\S))""", re.X | re.A)


def line_of(text: str, pos: int) -> int:
    """The 1-based line of character ``pos`` in ``text``."""
    return text.count("\n", 0, pos) + 1


def error(text: str, pos: int, message: str) -> QasmError:
    """A `QasmError` for ``message`` at ``text[pos]`` (the caller raises it)."""
    return QasmError(f"line {line_of(text, pos)}: {message}")


def strip_comments(text: str) -> str:
    """Blank out ``//`` comments, keeping every newline (so line numbers stay right).

    Raises:
      QasmError: at a ``/*``, which starts a block comment in OpenQASM 3 but is not OpenQASM 2.0.
    """
    if "//" in text:
        text = _COMMENT.sub(" ", text)
    block = text.find("/*")
    if block >= 0:
        raise error(text, block, "block comments ('/* ... */') are not OpenQASM 2.0; use '//' comments")
    return text


def check_identifier(text: str, pos: int, name: str) -> str:
    """``name``, or a `QasmError` if OpenQASM 2.0 does not allow it as an identifier."""
    if not name[0].islower() and name not in _UPPERCASE_NAMES:
        raise error(text, pos, f"identifiers start with a lowercase letter in OpenQASM 2.0 (only the "
                               f"builtins 'U' and 'CX' are capitalised), got {name!r}")
    return name


class Lexer:
    """Tokens ``(kind, value, position)`` of ``text[pos:end]``, one at a time.

    ``kind`` is ``"real"``, ``"int"``, ``"id"``, ``"str"``, ``"op"`` or ``"eof"``;
    a character that starts no token is an error when it is reached.
    """

    def __init__(self, text: str, pos: int = 0, end: int | None = None):
        self.text, self.pos, self.end = text, pos, len(text) if end is None else end
        self.tok = ("eof", "", self.end)
        self.advance()

    def advance(self):
        """Move to the next token; return the current one."""
        tok = self.tok
        m = _TOKEN.match(self.text, self.pos, self.end)
        if m is None:
            self.tok = ("eof", "", self.end)
            return tok
        kind = m.lastgroup
        value, start = m.group(kind), m.start(kind)
        if kind == "bad":
            raise error(self.text, start, f"unexpected character {value!r}")
        if kind == "id":
            check_identifier(self.text, start, value)
        elif kind == "int" and value[0] == "0" and len(value) > 1:
            raise error(self.text, start, f"integers cannot have leading zeros, got {value!r}")
        self.tok, self.pos = (kind, value, start), m.end()
        return tok

    def fail(self, message: str, pos: int | None = None):
        raise error(self.text, self.tok[2] if pos is None else pos, message)

    def unexpected(self, expected: str):
        kind, value, _ = self.tok
        self.fail(f"expected {expected}, got {'end of input' if kind == 'eof' else repr(value)}")

    def at(self, op: str) -> bool:
        return self.tok[0] == "op" and self.tok[1] == op

    def accept(self, op: str):
        """The current token if it is the operator ``op`` (then move on), else None."""
        return self.advance() if self.at(op) else None

    def expect(self, op: str):
        return self.accept(op) or self.unexpected(f"'{op}'")

    def expect_kind(self, kind: str, what: str):
        return self.advance() if self.tok[0] == kind else self.unexpected(what)

    def name(self, what: str) -> tuple[str, int]:
        """An identifier that is not a reserved word: ``(name, position)``."""
        kind, value, pos = self.tok
        if kind != "id":
            self.unexpected(what)
        if value in RESERVED:
            self.fail(f"'{value}' is a reserved word and cannot be used as a name")
        self.advance()
        return value, pos

    def comma_list(self, item, stop: str) -> list:
        """``[item (',' item)* [',']]`` up to (not past) the operator ``stop``; a trailing comma is allowed."""
        out = []
        while not self.at(stop):
            out.append(item())
            if not self.accept(","):
                if not self.at(stop):
                    self.unexpected(f"',' or '{stop}'")
                break
        return out

    def finish(self, op: str = ";") -> int:
        """Check that the statement ends here with ``op``; the position just after it.

        Nothing after ``op`` is read, so an error further on is reported only once
        this statement has been fully checked.
        """
        if not self.at(op):
            self.unexpected(f"'{op}'")
        return self.tok[2] + 1
