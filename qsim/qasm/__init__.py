"""OpenQASM 2.0 for qsim: `from_qasm` reads a program into a `Circuit`.

Modules, one idea each:

- `lexer`: tokens, comments, identifier rules, line numbers and `QasmError`;
- `expressions`: parameter expressions (constants fold, the rest become functions);
- `qelib1`: the ``qelib1.inc`` gates on qsim's gate table (and back, for export);
- `program`: the parsed program (`QasmProgram`, `Statement`) and user-gate expansion;
- `definitions`: ``gate`` and ``opaque`` definitions;
- `parser`: statements, registers, arguments and broadcasting (`parse`);
- `load`: `from_qasm`, the program replayed on a Circuit;
- `decompose`: unitaries as exact sequences of qelib1 gates (for ``to_qasm``).
"""

from .lexer import QasmError
from .load import from_qasm
from .parser import parse
from .program import QasmProgram, Statement

__all__ = ["QasmError", "QasmProgram", "Statement", "from_qasm", "parse"]
