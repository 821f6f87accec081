"""``python -m benchmarks``: options, threads pinned before JAX loads, the suites under one progress bar.

Without options: a quick run of every suite at small and medium sizes. The
run measures the machine's bandwidth first (the floor), then each case of
each suite, prints one table per suite and writes
``<out>/<host>-<date>.json`` and PNG plots beside it.

Example:
  python -m benchmarks --suite gates,circuits --qubits 10:24:2 --dtype complex64 --peers qulacs,lightning
  python -m benchmarks --suite train --qubits 6,10 --batch 1,32,256 --peers tensorcircuit,pennylane
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
import traceback
from pathlib import Path

SUITE_NAMES = ("gates", "circuits", "gradients", "compile", "batch", "qasmbench", "train", "hessian", "sharded",
               "noise", "dynamic")
TRAIN_ONLY_PEERS = ("pennylane",)   # PennyLane default.qubit: timed by the train suite only
DTYPES = ("complex64", "complex128")
DEFAULT_OUT = Path("benchmark-results")   # in the current directory: a run never dirties the checkout


def parse_range(text: str) -> list[int]:
    """``"10:24:2"`` -> [10, 12, .., 24] (stop included); ``"12"`` -> [12]; ``"8,12,16"`` -> [8, 12, 16].

    Raises:
      argparse.ArgumentTypeError: not integers, or an empty range.
    """
    try:
        if ":" in text:
            parts = [int(p) for p in text.split(":")]
            start, stop, step = (parts + [1])[:3] if len(parts) == 2 else parts
            values = list(range(start, stop + 1, step))
        else:
            values = [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        values = None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive START:STOP[:STEP] or a comma list, got {text!r}")
    return values


def _suites(values) -> list[str]:
    names = [s.strip() for v in (values or ["all"]) for s in v.split(",") if s.strip()]
    if "all" in names:
        return list(SUITE_NAMES)
    unknown = [s for s in names if s not in SUITE_NAMES]
    if unknown:
        raise SystemExit(f"--suite: unknown suite(s) {unknown}; allowed: all, {', '.join(SUITE_NAMES)}")
    return list(dict.fromkeys(names))


def _dtypes(text):
    if text is None:
        return None
    values = [s.strip() for s in text.split(",") if s.strip()]
    bad = [v for v in values if v not in DTYPES]
    if bad or not values:
        raise SystemExit(f"--dtype: expected complex64, complex128 or both (comma list), got {text!r}")
    return values


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--suite", action="append", help=f"suite(s), repeatable or comma list: all, {', '.join(SUITE_NAMES)}")
    p.add_argument("--qubits", type=parse_range, help="qubit grid START:STOP[:STEP] or list (overrides every suite's)")
    p.add_argument("--depth", type=parse_range, help="layer grid (QCBM/brick-work layers, HEA L), same syntax")
    p.add_argument("--batch", type=parse_range, help="batch sizes of the train suite (default 1,32; 1,32,256 "
                   "with --full), same syntax")
    p.add_argument("--dtype", help="complex64, complex128 or both (default: both for gates, complex64 elsewhere)")
    p.add_argument("--peers", default="all", help="comma list of qulacs,lightning,aer,tensorcircuit,qujax,pennylane "
                   "(default.qubit, train suite only); all; none")
    p.add_argument("--repeat", type=int, help="timed calls per case (median reported; default 3, 5 with --full)")
    p.add_argument("--threads", type=int, help="threads for qsim, XLA and every peer (default: all CPUs)")
    p.add_argument("--full", action="store_true", help="bigger grids (gates to n=26, circuits to n=24, ...)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"results folder (default ./{DEFAULT_OUT})")
    p.add_argument("--qasm-dir", type=Path, help="QASMBench corpus (default: shared/qasmbench beside the repo)")
    p.add_argument("--floor-mib", type=int, help="array size of the bandwidth kernels in MiB (default: 512 on "
                   "CPU, 4096 on an accelerator, where smaller arrays understate the bandwidth)")
    p.add_argument("--no-memory", action="store_true", help="run gradient cases in this process (no peak memory)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--sync-dispatch", action="store_true",
                   help="JAX runs CPU computations inline (jax_cpu_enable_async_dispatch=False) for qsim and "
                        "every JAX peer, in this process and in each case process: the per-call cost of "
                        "small steps without XLA's thread hand-off")
    return p


def _run_cases(cases, cfg, progress: bool) -> list[dict]:
    """Run every case under a tqdm bar; a failing case becomes an error row and a note.

    The bar is drawn only on a terminal: when stderr is not one (a log file, a pipe), each
    finished case prints one plain line instead of tqdm's carriage returns.
    """
    from tqdm import tqdm

    from .report import one_line

    rows = []
    tty = sys.stderr.isatty()
    bar = tqdm(cases, unit="case", disable=not (progress and tty), file=sys.stderr, dynamic_ncols=True)
    started = time.perf_counter()
    for index, case in enumerate(bar):
        if progress and tty:
            bar.set_postfix_str(f"{case.suite}: {case.name}"[:60])
        t0 = time.perf_counter()
        try:
            new = case.run()
        except Exception as err:  # one broken case must not lose the rest of the run
            cfg.note(f"{case.suite} {case.name}: FAILED, {type(err).__name__}: {str(err)[:200]}")
            new = [{"suite": case.suite, "case": case.name, "impl": "qsim",
                    "note": f"FAILED {type(err).__name__}", "traceback": traceback.format_exc(limit=3)}]
        wall = time.perf_counter() - t0   # the whole case: compiles, checks, peers
        for r in new:
            r["case_wall_s"], r["case_index"] = wall, index
            if not progress:   # a log line per result as it comes (a killed run keeps what it printed)
                print(one_line(r), flush=True)
        if progress and not tty:
            print(f"[{index + 1}/{len(cases)}] {case.suite}: {case.name} ({wall:.1f} s, "
                  f"{time.perf_counter() - started:.0f} s in all)", file=sys.stderr, flush=True)
        rows += new
    return rows


def split_peers(spec: str) -> tuple[str, list[str]]:
    """``--peers`` -> (the spec of the peer adapters, the train-only peers asked for).

    ``"all"`` includes every train-only peer; ``"pennylane"`` alone leaves no adapter (``"none"``).
    """
    names = [s.strip().lower() for s in (spec or "none").split(",") if s.strip()]
    train = [p for p in TRAIN_ONLY_PEERS if p in names or "all" in names]
    rest = [s for s in names if s not in TRAIN_ONLY_PEERS]
    return ",".join(rest) or "none", train


def _native_in_use() -> bool:
    import qsim

    return qsim.Circuit(1).backend.name == "native"


def _setup(args, threads_info):
    """Bandwidth, peers and the suites' `Config` (imports JAX: threads are already pinned)."""
    from . import peers as peer_lib
    from .context import Config
    from .floor import measure_bandwidth

    import jax

    mib = args.floor_mib or (512 if jax.default_backend() == "cpu" else 4096)
    bandwidth = measure_bandwidth(mib, threads_info["threads"])
    adapters, train_peers = split_peers(args.peers)
    peers, notes = peer_lib.load(peer_lib.parse_names(adapters), threads_info["threads"])
    cfg = Config(qubits=args.qubits, depths=args.depth, dtypes=_dtypes(args.dtype), batches=args.batch,
                 train_peers=train_peers,
                 repeat=args.repeat or (5 if args.full else 3), full=args.full, peers=peers,
                 bandwidth=bandwidth, threads=threads_info["threads"], qasm_dir=args.qasm_dir,
                 isolate_memory=not args.no_memory, native=_native_in_use())
    for note in notes:
        cfg.note(note)
    return cfg


def _banner(meta) -> str:
    from .machine import fmt_load

    t, bw = meta["threads"], meta["bandwidth"]
    kernels = ", ".join(f"{k} {v:.1f}" for k, v in bw["kernels_gb_per_s"].items())
    lines = [f"machine: {meta['hostname']}, {meta['cpu_model']}, {meta['cpu_count']} CPUs, "
             f"load {fmt_load(meta['load_average'])}",
             f"threads: {t['threads']} for qsim/XLA and every peer (OMP_NUM_THREADS={t['threads']}, "
             f"Aer max_parallel_threads={t['threads']}, {t['cpus_pinned']} CPUs visible to XLA)",
             f"jax {meta['jax_version']} on {meta['jax_backend']} ({meta['device_kind']}); "
             f"qsim: {meta['qsim_native_status']}",
             f"bandwidth: {bw['gb_per_s']:.1f} GB/s (best of: {kernels} GB/s; {bw['array_mib']} MiB arrays, "
             f"{bw['seconds']:.1f} s)",
             "peers: " + (", ".join(p["how"] for p in meta["peers"].values()) or "none")]
    if t["jax_imported_before_pinning"]:
        lines.append("note: JAX was imported before the threads were pinned; XLA keeps its own pool")
    if not meta.get("cpu_async_dispatch", True):
        lines.append("dispatch: synchronous (--sync-dispatch): every JAX library runs its CPU calls inline")
    if meta.get("dispatch_note"):
        lines.append("note: " + meta["dispatch_note"])
    return "\n".join(lines)


def _suite_walls(rows) -> dict:
    """Wall seconds per suite (each case counted once)."""
    cases = {(r["suite"], r.get("case_index", r["case"]), r.get("case_wall_s")) for r in rows
             if r.get("case_wall_s")}
    out = {}
    for suite, _, wall in cases:
        out[suite] = out.get(suite, 0.0) + wall
    return out


def _finish(args, cfg, meta, rows, started) -> Path:
    from . import report
    from .machine import fmt_load
    from .suites import compile as compile_suite
    from .suites import train as train_suite

    compile_suite.add_ratios(rows)
    train_suite.add_ratios(rows)
    report.add_relative(rows)
    for line in train_suite.summary(rows):
        cfg.note(line)
    print("\n" + report.format_table(rows))
    for note in cfg.notes:
        print(f"note: {note}")
    stem = f"{socket.gethostname()}-{time.strftime('%Y%m%d-%H%M%S')}"
    meta["wall_s"] = time.perf_counter() - started
    meta["load_average_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    meta["suite_wall_s"] = _suite_walls(rows)
    summary = report.peer_summary(rows)
    meta["summary"] = summary + [report.FLOOR_NOTE]
    path = report.write_json(args.out / f"{stem}.json", meta, rows, cfg.notes)
    plots = report.write_plots(rows, args.out, stem, cfg.bandwidth)
    print(f"\nwrote {path}" + "".join(f"\nwrote {p}" for p in plots))
    print("\nsummary (qsim's median time over the fastest peer's, per case; below 1x qsim is faster):")
    for line in summary or ["no peer ran beside qsim"]:
        print(f"  {line}")
    print(f"  {report.FLOOR_NOTE}")
    per_suite = ", ".join(f"{k} {v:.0f} s" for k, v in meta["suite_wall_s"].items())
    print(f"wall time {meta['wall_s']:.1f} s ({per_suite}; load average at the end "
          f"{fmt_load(meta['load_average_end'])})")
    return path


def main(argv=None) -> int:
    """Run the benchmarks; returns the exit status (0, or 1 if any case failed)."""
    args = build_parser().parse_args(argv)
    suites = _suites(args.suite)
    started = time.perf_counter()
    from .machine import SYNC_DISPATCH_VAR, apply_dispatch, describe, pin_threads

    environ = dict(os.environ)
    threads_info = pin_threads(args.threads)   # before JAX is imported
    if args.sync_dispatch:
        os.environ[SYNC_DISPATCH_VAR] = "1"      # case processes inherit it (restored below)
    import jax

    dispatch = apply_dispatch()   # before the bandwidth kernels start JAX's CPU client

    x64 = jax.config.jax_enable_x64
    try:
        # on for every run: complex128 cases and the complex128 peers (Qulacs, Aer) need it; each
        # qsim circuit names its dtype, so complex64 cases are unaffected
        jax.config.update("jax_enable_x64", True)
        cfg = _setup(args, threads_info)
        meta = describe(threads_info, cfg.peers, cfg.bandwidth)
        meta.update(dispatch)
        meta["suites"] = suites
        print(_banner(meta), flush=True)
        from .suites import SUITES

        cases = [case for name in suites for case in SUITES[name].cases(cfg)]
        rows = _run_cases(cases, cfg, progress=not args.no_progress)
        _finish(args, cfg, meta, rows, started)
    finally:   # leave the calling process as it was (tests call main in-process)
        jax.config.update("jax_enable_x64", x64)
        if not dispatch["cpu_async_dispatch"]:
            jax.config.update("jax_cpu_enable_async_dispatch", True)
        os.environ.clear()
        os.environ.update(environ)
    return 1 if any(str(r.get("note", "")).startswith("FAILED") for r in rows) else 0
