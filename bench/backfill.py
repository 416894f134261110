"""A single-run backfill of N days at 2,000 rows/day: nightjar's ``ingest`` job against the peer's bulk load + dbt.

  nightjar   the ``ingest`` job over the N days as ONE run (single-run backfill policy: each raw asset writes, audits
             and publishes day by day, then ONE dagster-dbt invocation over the range), execute_in_process on a
             prepared instance (bench/data_half.py's child)
  peer       bench/peer.py over the same range: the generator's rows of all N days in one insert per table, then ONE
             ``dbt build`` with the range as vars min_date / max_date

Each side in a fresh process on its own fresh root. Goal: nightjar / peer <= 1.5.

    python -m bench.backfill [--days 365] [--rows 2000] [--keep]
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from bench._harness import (
    DBT_STEP,
    Measured,
    child_command,
    dbt_step_split,
    fmt,
    machine_load,
    make_root,
    print_table,
    ratio,
    report_ratio,
    run_measured,
)
from bench._probes import outside_rows, step_rows
from bench.states import State, bench_env, day, ingest_range, prepare_instance

GOAL = "<= 1.5"


def measure_backfill(parent: Path, days: int, rows: int) -> tuple[Measured, Measured, State]:
    """Both sides over START..START+days-1; returns them and nightjar's root as a State (its history: ``days`` days,
    partitions up to the next day, ready to be sealed with a champion and measured on)."""
    first, last = day(0), day(days - 1)
    root, logs = parent / "backfill-nightjar", parent / "backfill-nightjar.logs"
    logs.mkdir(parents=True)
    env = bench_env(root, rows, last)
    prepare_instance(env, logs)
    nightjar = ingest_range(env, first, last, logs, "backfill")

    peer_root, peer_logs = parent / "backfill-peer", parent / "backfill-peer.logs"
    peer_logs.mkdir(parents=True)
    peer_env = bench_env(peer_root, rows, last)
    (peer_root / "data").mkdir(parents=True, exist_ok=True)
    out = peer_logs / "peer.json"
    peer = run_measured(
        child_command("bench.peer", "--first", first, "--last", last, "--out", str(out)),
        peer_env,
        peer_logs / "peer.log",
        out,
    )
    shutil.rmtree(peer_root, ignore_errors=True)
    return nightjar, peer, State(root, bench_env(root, rows, day(days)), logs)


def _span(window: dict[str, float]) -> float:
    return window["end"] - window["start"]


def report_backfill(days: int, rows: int, nj: Measured, peer: Measured) -> float:
    r, p = nj.result, peer.result
    w = {k: v for k, v in r["windows"].items() if not k.startswith("__")}
    phases = p["phases"]
    nj_total, peer_total = r["t_ran"] - nj.started, p["t_done"] - peer.started
    peer_start = (p["t_main"] - peer.started) + sum(_span(v) for k, v in phases.items() if k.startswith("import"))
    d = p["dbt"]
    peer_nodes = d["models_s"] + d["tests_s"]
    peer_dbt = {
        "dbt start-up, imports, parse": d["first_node_start"] - d["start"],
        "models (dbt node time)": d["models_s"],
        "tests (dbt node time)": d["tests_s"],
        "dbt between nodes, artifacts, exit": d["end"] - d["first_node_start"] - peer_nodes,
    }
    lines = [("start-up: interpreter, imports, Definitions | imports", r["t_loaded"] - nj.started, peer_start)]
    for table in ("applications", "outcomes"):
        step = w.get(f"raw__{table}")
        lines.append(
            (
                f"raw/{table}: generate, write{', audit, publish' if step else ''} (per day | bulk)",
                _span(step) if step else None,
                _span(phases[f"ingest {table}"]),
            )
        )
        lines += (
            [(f"  {label}", seconds, None) for label, seconds in step_rows(step, r.get("probes", []))] if step else []
        )
    lines.append(("dbt build over the range (step | subprocess)", _span(w[DBT_STEP]), _span(phases["dbt build"])))
    for label, seconds in dbt_step_split(nj, w[DBT_STEP], r["dbt"]):
        match = next((v for k, v in peer_dbt.items() if label.startswith(k.split(",")[0])), None)
        lines.append((f"  {label}", seconds, match))
    lines += [
        (f"  (across the above: {label})", seconds, None)
        for label, seconds in step_rows(w[DBT_STEP], r.get("probes", []))
        if not label.startswith("rest")
    ]
    steps = sum(_span(v) for v in w.values())
    run_w = r["windows"].get("__run__")
    if run_w:
        lines.append(("Dagster: RUN_START -> RUN_SUCCESS outside the steps", _span(run_w) - steps, None))
        lines.append(
            (
                "Dagster: before RUN_START and after RUN_SUCCESS (plan, storage, result)",
                (r["t_ran"] - r["t_loaded"]) - _span(run_w),
                None,
            )
        )
        lines += [
            (f"  outside the steps: {label}", seconds, None)
            for label, seconds in outside_rows(
                {"start": r["t_loaded"], "end": r["t_ran"]}, list(w.values()), r.get("probes", [])
            )
        ]
    else:
        lines.append(("Dagster outside the steps", (r["t_ran"] - r["t_loaded"]) - steps, None))
    lines.append(("total: process start -> range stored and built", nj_total, peer_total))
    table = [[label, fmt(a), fmt(b), ratio(a, b)] for label, a, b in lines]
    print_table(
        ["backfill step", "nightjar s", "peer s", "ratio"],
        table,
        title=f"== backfill of {days} days x {rows:,} rows/day ({day(0)}..{day(days - 1)}) in one run: "
        f"nightjar `ingest` vs peer bulk load + ONE dbt build ==",
    )
    print(
        f"per stored day: nightjar {nj_total / days:.3f} s, peer {peer_total / days:.3f} s; peer stored "
        f"{p['counts']}; peak MB nightjar {nj.peak_mb():.0f}, peer {peer.peak_mb():.0f}",
        flush=True,
    )
    report_ratio(f"backfill {days} days x {rows:,} rows, nightjar / peer", nj_total / peer_total, GOAL)
    print(flush=True)
    return nj_total / peer_total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    parent = make_root("backfill")
    try:
        print(f"[backfill of {args.days} days: measuring; {machine_load()}]", flush=True)
        nj, peer, _ = measure_backfill(parent, args.days, args.rows)
        print(f"[measured; {machine_load()}]", flush=True)
        report_backfill(args.days, args.rows, nj, peer)
    finally:
        if args.keep:
            print(f"(kept {parent})")
        else:
            shutil.rmtree(parent, ignore_errors=True)


if __name__ == "__main__":
    main()
