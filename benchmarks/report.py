"""The report: a table for the terminal, the JSON record, and PNG plots.

Rows are dicts (see `benchmarks.context.row`). ``rel`` is a row's median time
over qsim's on the same case (above 1: slower than qsim), ``x floor`` its
median over the bandwidth floor (one read and write of the state per gate).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

QSIM = "qsim"
# per suite: (header, function of a row -> text) for the extra columns
_EXTRA = {
    "gradients": [("vg/fwd", lambda r: _num(r.get("ratio"), "x")), ("peak MiB", lambda r: _mib(r))],
    "compile": [("vs min L", lambda r: _num(r.get("ratio"), "x"))],
    "batch": [("samples/s", lambda r: _num(r.get("samples_per_s"), "", 0))],
    "qasmbench": [("parse", lambda r: fmt_time(r.get("parse_s")))],
    "train": [("vs TC", lambda r: _num(r.get("vs_tc"), "x"))],
    "noise": [("per traj", lambda r: fmt_time(r.get("per_trajectory_s")))],
}


def fmt_time(seconds) -> str:
    """Seconds in a readable unit: ``'812 us'``, ``'3.40 ms'``, ``'1.25 s'``; ``'-'`` for none."""
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds:.3g} s"


def _num(x, suffix="", digits=2):
    return "-" if x is None else f"{x:.{digits}f}{suffix}"


def _mib(r):
    if r.get("peak_rss_mib") is None:
        return "-"
    added = f" (+{r['added_mib']:.0f})" if r.get("added_mib") is not None else ""
    return f"{r['peak_rss_mib']:.0f}{added}"


def add_relative(rows) -> None:
    """Set ``rel`` = median time / qsim's median time on the same (suite, case)."""
    ours = {(r["suite"], r["case"]): r["time_s"] for r in rows if r["impl"] == QSIM and r.get("time_s")}
    for r in rows:
        base = ours.get((r["suite"], r["case"]))
        if base and r.get("time_s") is not None:
            r["rel"] = r["time_s"] / base


def _time_cell(r):
    if r.get("time_s") is None:
        return "-"
    return f"{fmt_time(r['time_s'])} [{fmt_time(r.get('time_min_s'))}, {fmt_time(r.get('time_max_s'))}]"


def _cells(r, extra):
    cells = [r["case"], r["impl"], fmt_time(r.get("compile_s")), _time_cell(r),
             _num(r.get("x_floor"), "x"), _num(r.get("rel"), "x")]
    cells += [fn(r) for _, fn in extra]
    return cells + [str(r.get("note", ""))[:70]]


def format_table(rows) -> str:
    """One aligned table per suite: case, impl, compile, median [min, max], x floor, rel, extras, note."""
    out = []
    for suite in dict.fromkeys(r["suite"] for r in rows):
        extra = _EXTRA.get(suite, [])
        header = ["case", "impl", "compile", "median [min, max]", "x floor", "rel"] + [h for h, _ in extra] + ["note"]
        body = [_cells(r, extra) for r in rows if r["suite"] == suite]
        widths = [max(len(str(c)) for c in col) for col in zip(header, *body)]
        line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()
        out += [f"== {suite} ==", line(header), line(["-" * w for w in widths])]
        out += [line(cells) for cells in body] + [""]
    return "\n".join(out)


FLOOR_NOTE = ("x floor: median time over the bandwidth floor, 2 * bytes(state) / measured bandwidth "
              "(one read and one write of the state); below 1x the state fits in cache")


def _peer_name(impl: str) -> str:
    """The peer an impl row belongs to: ``"tensorcircuit state"`` -> ``"tensorcircuit"``."""
    return impl.split()[0]


def peer_summary(rows) -> list[str]:
    """Per suite, qsim against the fastest peer: the geometric mean over the cases where both ran of
    qsim's median time over the fastest peer's (below 1x: qsim faster), and which peer was fastest.

    Uses ``rel`` (see `add_relative`); mismatched or failed peer rows are left out.
    """
    out = []
    for suite in dict.fromkeys(r["suite"] for r in rows):
        best = {}   # case -> the fastest peer row
        for r in rows:
            if (r["suite"] != suite or r["impl"].startswith(QSIM) or not r.get("rel")
                    or r.get("mismatch")):
                continue
            if r["case"] not in best or r["rel"] < best[r["case"]]["rel"]:
                best[r["case"]] = r
        if not best:
            continue
        ratios = [1.0 / r["rel"] for r in best.values()]
        geo = math.exp(sum(math.log(x) for x in ratios) / len(ratios))
        counts = {}
        for r in best.values():
            counts[_peer_name(r["impl"])] = counts.get(_peer_name(r["impl"]), 0) + 1
        who = ", ".join(f"{k} at {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))
        out.append(f"{suite}: {geo:.2f}x (geometric mean over {len(ratios)} cases, "
                   f"range {min(ratios):.2f}-{max(ratios):.2f}x; fastest peer: {who})")
    return out


def one_line(r) -> str:
    """A result row as one log line."""
    x = f", {r['x_floor']:.2f}x floor" if r.get("x_floor") is not None else ""
    return (f"[{r['suite']}] {r['case']} | {r['impl']}: {_time_cell(r)}{x}, compile "
            f"{fmt_time(r.get('compile_s'))}{'  ' + str(r['note']) if r.get('note') else ''}")


def write_json(path: Path, meta: dict, rows, notes) -> Path:
    """Write ``{"meta", "notes", "results"}`` to ``path`` (parents created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"meta": meta, "notes": list(notes), "results": rows}, indent=1, default=str))
    return path


def write_plots(rows, out_dir: Path, stem: str, bandwidth=None) -> list[Path]:
    """PNGs: time vs qubits (gates, circuits) with the floor, memory vs depth, compile time vs depth."""
    from . import plots

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    made = []
    for kind, draw in plots.PLOTS.items():
        path = out_dir / f"{stem}-{kind}.png"
        if draw(rows, path, bandwidth):
            made.append(path)
    return made
