"""Suite ``qasmbench``: real OpenQASM 2.0 programs (QASMBench), parse time and run time.

The corpus is the repository's copy, ``tests/data/qasmbench`` (or ``--qasm-dir``).
Every program that ``qsim.from_qasm`` accepts as a unitary circuit is parsed
(timed), run (``Circuit.state()``: the first call, which compiles, is reported
apart from the median of later calls) and, before a peer is timed on it,
compared with Qiskit Aer (``qiskit.qasm2.loads`` + ``AerSimulator``) and Qulacs
(converted from Qiskit's circuit), amplitude by amplitude. Programs with
mid-circuit measurement, reset or classical control are skipped with a note.
The quick run keeps programs of at most 16 qubits (``--qubits`` sets the bound)
and at most `QUICK_MAX_OPS` gate statements (qsim's compile time grows with the
variety of gates; ``--full`` runs them all).
"""

from __future__ import annotations

import re
from pathlib import Path

from ..context import SHORT_DTYPE, Case, peer_dtype, row, with_floor
from ..peers import check_same
from ..timing import measure, now

QUICK_MAX_QUBITS, FULL_MAX_QUBITS = 16, 26
QUICK_MAX_OPS = 60
DEFAULT_DIR = Path(__file__).resolve().parents[2] / "tests" / "data" / "qasmbench"
_QREG = re.compile(r"^\s*qreg\s+\w+\s*\[\s*(\d+)\s*\]", re.MULTILINE)
_NOT_GATES = ("OPENQASM", "include", "qreg", "creg", "gate", "barrier", "measure", "//", "{", "}")


def qasm_dir(cfg) -> Path:
    return Path(cfg.qasm_dir) if cfg.qasm_dir else DEFAULT_DIR


def count_ops(text: str) -> int:
    """Gate statements outside ``gate`` bodies (a cheap count, for the quick run's bound)."""
    count, depth = 0, 0
    for line in text.splitlines():
        s = line.strip()
        if depth == 0 and s and not s.startswith(_NOT_GATES):
            count += s.count(";")
        depth += s.count("{") - s.count("}")
    return count


def programs(directory: Path, max_qubits: int, max_ops: int | None = None) -> list[tuple[str, Path, int]]:
    """``(name, path, qubits)`` of the programs with at most ``max_qubits`` qubits (and ``max_ops`` ops)."""
    out = []
    for path in sorted(directory.rglob("*.qasm")):
        text = path.read_text(errors="replace")
        n = sum(int(m) for m in _QREG.findall(text))
        if 0 < n <= max_qubits and (max_ops is None or count_ops(text) <= max_ops):
            out.append((f"{path.parent.name}/{path.stem}", path, n))
    return out


def cases(cfg) -> list[Case]:
    directory = qasm_dir(cfg)
    if not directory.is_dir():
        cfg.note(f"qasmbench: skipped, no corpus at {directory} (use --qasm-dir)")
        return []
    limit = max(cfg.qubits) if cfg.qubits else (FULL_MAX_QUBITS if cfg.full else QUICK_MAX_QUBITS)
    max_ops = None if cfg.full else QUICK_MAX_OPS
    selected = programs(directory, limit, max_ops)
    if max_ops is not None:
        cfg.note(f"qasmbench: quick run keeps programs of at most {limit} qubits and {max_ops} gate statements "
                 f"({len(selected)} of them); --full runs every unitary program")
    out = []
    for dtype in cfg.dtype_list():
        for name, path, n in selected:
            case = f"{name} n={n} {SHORT_DTYPE[dtype]}"
            out.append(Case("qasmbench", case, _case_fn(cfg, case, name, path, n, dtype)))
    return out


def _time_qsim(cfg, case, text, fields):
    import qsim

    parse = measure(lambda: qsim.from_qasm(text), max(1, min(cfg.repeat, 3)))
    circuit = qsim.from_qasm(text)
    t0 = now()
    state = circuit.state().block_until_ready()
    first = now() - t0
    timing = measure(lambda: circuit.state().block_until_ready(), cfg.repeat)
    fields = dict(fields, gates=circuit.n_ops)
    r = row("qasmbench", case, "qsim", parse_s=parse["time_s"], first_call_s=first,
            compile_s=max(first - timing["time_s"], 0.0), **fields, **timing)
    return with_floor(r, cfg.floor_s(fields["n"], fields["dtype"], passes=circuit.n_ops)), state


def _time_peer(cfg, peer, case, text, fields, ours):
    dtype = peer_dtype(peer, fields["dtype"])
    try:
        runner, prep_s = peer.qasm(text, dtype)
        runner.run()
        check_same(ours, runner.result(), fields["dtype"], f"{peer.name} {fields['program']}")
    except AssertionError as err:
        return row("qasmbench", case, peer.name, note=f"NOT TIMED, {err}", **dict(fields, dtype=dtype))
    except Exception as err:  # e.g. a program the peer cannot convert
        return row("qasmbench", case, peer.name, note=f"not timed, {type(err).__name__}: {str(err)[:150]}",
                   **dict(fields, dtype=dtype))
    r = row("qasmbench", case, peer.name, parse_s=prep_s, **dict(fields, dtype=dtype),
            **measure(runner.run, cfg.repeat))
    return with_floor(r, fields.get("floor_s"))


def _case_fn(cfg, case, name, path, n, dtype):
    def run():
        import qsim

        text = path.read_text()
        fields = dict(n=n, dtype=dtype, program=name)
        try:
            ours, state = _time_qsim(cfg, case, text, fields)
        except (qsim.QasmError, ValueError) as err:   # mid-circuit measure, reset, if, invalid programs
            cfg.note(f"qasmbench {name}: skipped, {str(err).splitlines()[0][:160]}")
            return []
        fields.update(gates=ours["gates"], floor_s=ours.get("floor_s"))
        rows = [ours]
        for peer in [p for p in cfg.peers if hasattr(p, "qasm")]:
            rows.append(_time_peer(cfg, peer, case, text, fields, state))
        return rows
    return run
