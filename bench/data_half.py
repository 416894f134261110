"""The data half (raw applications + raw outcomes + every dbt model and test) for one day, through Dagster and plain.

For each rows/day value, each in a fresh temp dir and each measurement in a fresh process:

  nightjar       the ``ingest`` job of the real Definitions for one day, ``execute_in_process`` on the in-process
                 executor with a persistent instance (as ``make run`` does); step times from the run's STEP_START /
                 STEP_SUCCESS events, dbt's node timings from the events' "Execution Duration", the dbt process's
                 lifetime from the memory sampler
  multiprocess   the same job with NIGHTJAR_EXECUTOR=multiprocess through ``dagster job execute`` (one rows value)
  plain          one Python process: SyntheticSource -> DuckDB (register DataFrame + INSERT, one transaction per
                 table and day), then the dbt project's own compiled SQL (``dbt compile`` into the temp dir,
                 untimed; models, tests and severities read from its manifest) run directly on DuckDB: views
                 replaced, incremental marts as delete-window (their pre-hook's column) + insert, every data test
                 as ``select count(*)`` over its query (dbt's 3-row unit test is not run)

The measured day is 2026-01-02 with NIGHTJAR_LABEL_DELAY_DAYS=1, so its outcomes refer to 2026-01-01, which is
ingested first (untimed, in its own process): the measured day is an incremental nightly run with labels.
``--history-days N`` ingests N days first (measured day 2026-01-01 + N): the dbt tests scan every stored day.

    python -m bench.data_half [--rows 2000 1000000] [--multiprocess-rows 2000] [--history-days 1] [--keep]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import time
from datetime import date, timedelta
from pathlib import Path

from bench._harness import (
    DBT_PROJECT_DIR,
    DBT_STEP,
    PROJECT_ROOT,
    PYTHON,
    QUIET_RUN_CONFIG,
    START_DATE,
    Measured,
    child_command,
    child_peaks,
    dbt_node_summary,
    dbt_step_split,
    fmt,
    machine_load,
    make_root,
    print_table,
    ratio,
    report_ratio,
    run_measured,
    stores_env,
    write_result,
)

MODULE = "bench.data_half"
LABEL_DELAY_DAYS = 1
RAW_STEPS = ("raw__applications", "raw__outcomes")
# Placeholders compiled into the SQL for the partition window, replaced by the measured day.
MIN_PLACEHOLDER, MAX_PLACEHOLDER = "1111-11-11", "2222-02-22"


# ---------------------------------------------------------------------------------------------------------------
# Children


def child_nightjar(day: str, out: str, first: str | None = None) -> None:
    """One ``ingest`` run for ``day`` (or ``first``..``day`` as one single-run backfill) with the in-process executor,
    as ``make run`` launches it."""
    marks = {"t_main": time.time()}
    import dagster as dg

    from bench import _probes
    from bench._harness import step_windows
    from definitions import defs

    instance = dg.DagsterInstance.get()
    # Timers around the write, audit and publish of each day and Dagster's event writes (bench/backfill.py reports
    # them); installing imports what the steps would (pandas): counted in the start-up, not lost.
    _probes.install()
    marks["t_loaded"] = time.time()
    window = (
        {"partition_key": day}
        if not first or first == day
        else {"tags": {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": day}}
    )
    result = defs.resolve_job_def("ingest").execute_in_process(
        instance=instance, run_config=QUIET_RUN_CONFIG, raise_on_error=True, **window
    )
    marks["t_ran"] = time.time()
    write_result(
        out,
        {
            **marks,
            **child_peaks(),
            "run_id": result.run_id,
            "windows": step_windows(instance, result.run_id),
            "dbt": dbt_node_summary(instance, result.run_id),
            "probes": _probes.RECORDS,
        },
    )


def child_events(out: str) -> None:
    """Step windows and dbt timings of the newest run in DAGSTER_HOME (after a ``dagster job execute``)."""
    import dagster as dg

    from bench._harness import step_windows

    with dg.DagsterInstance.get() as instance:
        run = instance.get_runs(limit=1)[0]
        write_result(
            out,
            {
                "run_id": run.run_id,
                "status": str(run.status),
                "windows": step_windows(instance, run.run_id),
                "dbt": dbt_node_summary(instance, run.run_id),
            },
        )


def _compiled_plan(compiled: Path, day: date) -> tuple[list[dict], list[dict]]:
    """What ``dbt build`` runs, from the manifest that ``dbt compile`` wrote, with the window set to ``day``:
    models in dependency order (schema, name, materialization, SQL, the window column of an incremental model's
    delete pre-hook) and data tests (name, severity, SQL). Unit tests are left out."""
    manifest = json.loads((compiled / "manifest.json").read_text())
    nodes = manifest["nodes"]

    def sql(node: dict) -> str:
        text = node["compiled_code"]
        return text.replace(MIN_PLACEHOLDER, day.isoformat()).replace(
            MAX_PLACEHOLDER, (day + timedelta(days=1)).isoformat()
        )

    models = {uid: n for uid, n in nodes.items() if n["resource_type"] == "model"}
    ordered: list[str] = []

    def visit(uid: str) -> None:
        if uid in ordered or uid not in models:
            return
        for parent in models[uid]["depends_on"]["nodes"]:
            visit(parent)
        ordered.append(uid)

    for uid in sorted(models):
        visit(uid)
    plan = []
    for uid in ordered:
        node = models[uid]
        hooks = " ".join(h["sql"] for h in node["config"].get("pre-hook", []))
        window = re.search(r"in_window\(\s*'(\w+)'\s*\)", hooks)
        plan.append(
            {
                "schema": node["schema"],
                "name": node["name"],
                "materialized": node["config"]["materialized"],
                "sql": sql(node),
                "window_column": window.group(1) if window else None,
            }
        )
    tests = [
        {"name": n["name"], "severity": str(n["config"].get("severity", "error")).lower(), "sql": sql(n)}
        for n in nodes.values()
        if n["resource_type"] == "test"
    ]
    return plan, tests


def child_plain(day: str, rows: int, warehouse: str, compiled: str, out: str, first: str | None = None) -> None:
    """The same day's data half in one plain process: generate, write, the dbt SQL, the dbt tests (for each day of
    ``first``..``day`` when ``first`` is given: untimed setup of the history)."""
    if first and first != day:
        current = date.fromisoformat(first)
        while current < date.fromisoformat(day):
            child_plain(current.isoformat(), rows, warehouse, compiled, out)
            current += timedelta(days=1)
    marks = {"t_main": time.time()}
    import duckdb

    from resources.source.declarations import load_raw_tables
    from resources.source.synthetic import SyntheticSource

    # The raw tables as declared (dbt_project/models/staging/loans/__sources.yml), from the manifest `dbt compile`
    # wrote: nightjar's Definitions read the same declarations from the prepared manifest when they load.
    declared = load_raw_tables(Path(compiled) / "manifest.json")
    marks["t_imported"] = time.time()
    the_day = date.fromisoformat(day)
    models, tests = _compiled_plan(Path(compiled), the_day)
    source = SyntheticSource(rows_per_day=rows, seed=7, label_delay_days=LABEL_DELAY_DAYS, start_date=START_DATE)
    steps: dict[str, dict[str, float]] = {}
    con = duckdb.connect(warehouse)

    def write_raw(name: str) -> int:
        """The generator's rows of raw table ``name`` for the day, into its declared warehouse table."""
        table = declared[f"raw.{name}"]
        qualified = table.qualified
        cols = ", ".join(f'"{c.name}" {c.dtype}{"" if c.nullable else " NOT NULL"}' for c in table.columns)
        names = ", ".join(f'"{c}"' for c in table.column_names)
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {table.schema}")
        con.execute(f"CREATE TABLE IF NOT EXISTS {qualified} ({cols})")
        con.execute("BEGIN TRANSACTION")
        con.execute(f'DELETE FROM {qualified} WHERE "{table.partition_column}" = ?', [the_day])
        written = 0
        for chunk in source.read(table.name, the_day):
            con.register("chunk", chunk)
            con.execute(f"INSERT INTO {qualified} ({names}) SELECT {names} FROM chunk")
            con.unregister("chunk")
            written += len(chunk)
        con.execute("COMMIT")
        return written

    counts: dict[str, int] = {}
    start = time.time()
    counts["applications"] = write_raw("applications")
    steps["raw/applications"] = {"start": start, "end": time.time()}

    start = time.time()
    counts["outcomes"] = write_raw("outcomes")
    steps["raw/outcomes"] = {"start": start, "end": time.time()}

    start = time.time()
    for model in models:
        qualified = f"{model['schema']}.{model['name']}"
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {model['schema']}")
        if model["materialized"] == "view":
            con.execute(f"CREATE OR REPLACE VIEW {qualified} AS {model['sql']}")
            continue
        exists = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
            [model["schema"], model["name"]],
        ).fetchone()[0]
        if not exists or model["materialized"] == "table":
            con.execute(f"CREATE OR REPLACE TABLE {qualified} AS {model['sql']}")
            continue
        con.execute("BEGIN TRANSACTION")
        if model["window_column"]:
            column = model["window_column"]
            con.execute(
                f"DELETE FROM {qualified} WHERE {column} >= ? AND {column} < ?", [the_day, the_day + timedelta(days=1)]
            )
        con.execute(f"INSERT INTO {qualified} SELECT * FROM ({model['sql']}) AS new_rows")
        con.execute("COMMIT")
    steps["dbt models (SQL)"] = {"start": start, "end": time.time()}

    start = time.time()
    failures: dict[str, int] = {}
    for test in tests:
        failed = con.execute(f"SELECT count(*) FROM ({test['sql']}) AS dbt_internal_test").fetchone()[0]
        if failed:
            failures[test["name"]] = int(failed)
    steps["dbt tests (SQL)"] = {"start": start, "end": time.time()}
    errors = {t["name"]: failures[t["name"]] for t in tests if t["name"] in failures and t["severity"] == "error"}
    if errors:
        raise SystemExit(f"plain data half: failing tests {errors}")
    counts["features"] = con.execute(
        "SELECT count(*) FROM marts.fct_application_features WHERE application_date = ?", [the_day]
    ).fetchone()[0]
    counts["labeled"] = con.execute(
        "SELECT count(*) FROM marts.fct_labeled_applications WHERE outcome_date = ?", [the_day]
    ).fetchone()[0]
    con.close()
    marks["t_done"] = time.time()
    write_result(
        out,
        {
            **marks,
            **child_peaks(),
            "steps": steps,
            "counts": counts,
            "models": len(models),
            "tests": len(tests),
            "warnings": failures,
        },
    )


# ---------------------------------------------------------------------------------------------------------------
# Parent


def _dbt_compile(root: Path, env: dict[str, str]) -> Path:
    """Compile the dbt project with placeholder window vars into ``root`` (untimed setup of the plain baseline)."""
    target = root / "dbt_compiled"
    command = [
        str(Path(PYTHON).parent / "dbt"),
        "compile",
        "--quiet",
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
        "--target-path",
        str(target),
        "--log-path",
        str(root / "dbt_logs"),
        "--vars",
        json.dumps({"min_date": MIN_PLACEHOLDER, "max_date": MAX_PLACEHOLDER}),
    ]
    run_measured(command, env, root / "dbt_compile.log")
    return target


def _history(history_days: int) -> tuple[str, str, date]:
    """(first, last) day ingested untimed before the measured day, and the measured day."""
    first = date.fromisoformat(START_DATE)
    day = first + timedelta(days=history_days)
    return first.isoformat(), (day - timedelta(days=1)).isoformat(), day


def measure_nightjar(rows: int, history_days: int, keep: bool) -> Measured:
    root = make_root(f"data-{rows}")
    try:
        env = stores_env(root, NIGHTJAR_ROWS_PER_DAY=str(rows), NIGHTJAR_LABEL_DELAY_DAYS=str(LABEL_DELAY_DAYS))
        first, last, day = _history(history_days)
        run_measured(
            child_command(
                MODULE, "--child", "nightjar", "--first", first, "--day", last, "--out", str(root / "setup.json")
            ),
            env,
            root / "setup.log",
        )
        out = root / "nightjar.json"
        return run_measured(
            child_command(MODULE, "--child", "nightjar", "--day", day.isoformat(), "--out", str(out)),
            env,
            root / "nightjar.log",
            out,
        )
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


def measure_multiprocess(rows: int, history_days: int, keep: bool) -> Measured:
    root = make_root(f"data-mp-{rows}")
    try:
        env = stores_env(root, NIGHTJAR_ROWS_PER_DAY=str(rows), NIGHTJAR_LABEL_DELAY_DAYS=str(LABEL_DELAY_DAYS))
        first, last, day = _history(history_days)
        run_measured(
            child_command(
                MODULE, "--child", "nightjar", "--first", first, "--day", last, "--out", str(root / "setup.json")
            ),
            env,
            root / "setup.log",
        )
        mp_env = {**env, "NIGHTJAR_EXECUTOR": "multiprocess"}
        dagster = str(Path(PYTHON).parent / "dagster")
        command = [
            dagster,
            "job",
            "execute",
            "-f",
            str(PROJECT_ROOT / "definitions.py"),
            "-d",
            str(PROJECT_ROOT),
            "-j",
            "ingest",
            "--tags",
            json.dumps({"dagster/partition": day.isoformat()}),
        ]
        measured = run_measured(command, mp_env, root / "multiprocess.log")
        events = root / "events.json"
        run_measured(child_command(MODULE, "--child", "events", "--out", str(events)), mp_env, root / "events.log")
        measured.result = json.loads(events.read_text())
        if "SUCCESS" not in measured.result["status"]:
            raise SystemExit(
                f"multiprocess run did not succeed: {measured.result['status']} (log {root / 'multiprocess.log'})"
            )
        return measured
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


def measure_plain(rows: int, history_days: int, keep: bool) -> Measured:
    root = make_root(f"plain-{rows}")
    try:
        warehouse = root / "data" / "warehouse.duckdb"  # same file name: the compiled SQL names database "warehouse"
        warehouse.parent.mkdir(parents=True)
        env = stores_env(root, NIGHTJAR_ROWS_PER_DAY=str(rows), NIGHTJAR_LABEL_DELAY_DAYS=str(LABEL_DELAY_DAYS))
        compiled = _dbt_compile(root, env)
        first, last, day = _history(history_days)
        common = ["--rows", str(rows), "--warehouse", str(warehouse), "--compiled", str(compiled)]
        run_measured(
            child_command(
                MODULE, "--child", "plain", "--first", first, "--day", last, *common, "--out", str(root / "setup.json")
            ),
            env,
            root / "setup.log",
        )
        out = root / "plain.json"
        return run_measured(
            child_command(MODULE, "--child", "plain", "--day", day.isoformat(), *common, "--out", str(out)),
            env,
            root / "plain.log",
            out,
        )
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


def _span(window: dict[str, float]) -> float:
    return window["end"] - window["start"]


def report(rows: int, history_days: int, nj: Measured, plain: Measured) -> dict[str, float]:
    first, last, day = _history(history_days)
    r, p = nj.result, plain.result
    w = r["windows"]
    steps = {k: v for k, v in w.items() if not k.startswith("__")}
    nj_steps = sum(_span(v) for v in steps.values())
    p_steps = sum(_span(v) for v in p["steps"].values())
    dbt = r["dbt"]
    dbt_w = w[DBT_STEP]
    pm, pt = p["steps"]["dbt models (SQL)"], p["steps"]["dbt tests (SQL)"]
    p_dbt = {"start": pm["start"], "end": pt["end"]}
    nj_total, p_total = r["t_ran"] - nj.started, p["t_done"] - plain.started
    plain_sql = {"models (dbt node time)": pm, "tests (dbt node time)": pt}
    dbt_rows: list[tuple] = [
        (
            f"  {label}",
            seconds,
            _span(plain_sql[label]) if label in plain_sql else None,
            None,
            plain.peak_mb(plain_sql[label]["start"], plain_sql[label]["end"]) if label in plain_sql else None,
        )
        for label, seconds in dbt_step_split(nj, dbt_w, dbt)
    ]
    processes = nj.lifetimes("dbt build")
    if processes:
        proc = processes[0]
        dbt_rows.append(
            (
                "  (the dbt process alone, its whole life)",
                proc["last"] - proc["first"],
                None,
                proc["peak"] / 2**20,
                None,
            )
        )
    lines = [
        (
            "start-up: interpreter, imports, Definitions",
            r["t_loaded"] - nj.started,
            p["t_imported"] - plain.started,
            nj.peak_mb(nj.started, r["t_loaded"]),
            plain.peak_mb(plain.started, p["t_imported"]),
        ),
        (
            "raw/applications: generate + write",
            _span(w["raw__applications"]),
            _span(p["steps"]["raw/applications"]),
            nj.peak_mb(w["raw__applications"]["start"], w["raw__applications"]["end"]),
            plain.peak_mb(p["steps"]["raw/applications"]["start"], p["steps"]["raw/applications"]["end"]),
        ),
        (
            "raw/outcomes: generate + write",
            _span(w["raw__outcomes"]),
            _span(p["steps"]["raw/outcomes"]),
            nj.peak_mb(w["raw__outcomes"]["start"], w["raw__outcomes"]["end"]),
            plain.peak_mb(p["steps"]["raw/outcomes"]["start"], p["steps"]["raw/outcomes"]["end"]),
        ),
        (
            f"dbt build: {p['models']} models + {p['tests']} tests (step)",
            _span(dbt_w),
            _span(p_dbt),
            nj.peak_mb(dbt_w["start"], dbt_w["end"]),
            plain.peak_mb(p_dbt["start"], p_dbt["end"]),
        ),
        *dbt_rows,
        (
            "run overhead outside the steps",
            (r["t_ran"] - r["t_loaded"]) - nj_steps,
            (p["t_done"] - p["t_imported"]) - p_steps,
            None,
            None,
        ),
        ("steps only", nj_steps, p_steps, None, None),
        ("total: process start -> day done", nj_total, p_total, nj.peak_mb(), plain.peak_mb()),
    ]
    table = [[label, fmt(a), fmt(b), ratio(a, b), fmt(ma, ".0f"), fmt(mb, ".0f")] for label, a, b, ma, mb in lines]
    counts = p["counts"]
    print_table(
        ["step", "nightjar s", "plain s", "ratio", "nightjar peak MB", "plain peak MB"],
        table,
        title=(
            f"== data half, {rows:,} rows/day: day {day} after {history_days} day(s) of history ({first}..{last}, untimed); "
            f"its outcomes: {counts['outcomes']:,} labels of {day - timedelta(days=LABEL_DELAY_DAYS)}; "
            f"marts +{counts['features']:,} feature rows, +{counts['labeled']:,} labeled rows =="
        ),
    )
    dbt_processes = nj.lifetimes("dbt build")
    dbt_peak = f"{dbt_processes[0]['peak'] / 2**20:.0f} MB" if dbt_processes else "not sampled"
    print(
        f"peak RSS per process: nightjar main process {r['self_maxrss_mb']:.0f} MB (ru_maxrss), its dbt child "
        f"{dbt_peak} (sampled); plain {p['self_maxrss_mb']:.0f} MB (ru_maxrss). dbt nodes reported: {dbt['nodes']}; "
        "slowest: "
        + ", ".join(f"{n} {v:.2f}s" for n, v in sorted(dbt["by_node"].items(), key=lambda kv: -kv[1])[:4])
        + "\n",
        flush=True,
    )
    report_ratio(
        f"data half {rows:,} rows/day, ingest job / plain compiled SQL (process start -> day done)",
        nj_total / p_total,
        note=f"steps only {nj_steps / p_steps:.2f}",
    )
    print(flush=True)
    return {"nightjar_total": nj_total, "plain_total": p_total}


def report_multiprocess(rows: int, inproc: Measured, mp: Measured) -> None:
    wi, wm = inproc.result["windows"], mp.result["windows"]
    table = []
    for step in (*RAW_STEPS, DBT_STEP):
        a, b = wi[step], wm[step]
        worker = b["start"] - b.get("worker_starting", b["start"])
        table.append(
            [
                step,
                fmt(_span(a)),
                fmt(worker),
                fmt(_span(b)),
                ratio(worker + _span(b), _span(a)),
                fmt(inproc.peak_mb(a["start"], a["end"]), ".0f"),
                fmt(mp.peak_mb(b.get("worker_starting", b["start"]), b["end"]), ".0f"),
            ]
        )
    run_w = wm.get("__run__")
    in_total, mp_total = inproc.result["t_ran"] - inproc.started, mp.wall
    table.append(
        [
            "run: RUN_START -> RUN_SUCCESS",
            fmt(inproc.result["windows"]["__run__"]["end"] - inproc.result["windows"]["__run__"]["start"]),
            "",
            fmt(run_w["end"] - run_w["start"]) if run_w else "-",
            "",
            "",
            "",
        ]
    )
    table.append(
        [
            "total: process start -> day done",
            fmt(in_total),
            "",
            fmt(mp_total),
            ratio(mp_total, in_total),
            fmt(inproc.peak_mb(), ".0f"),
            fmt(mp.peak_mb(), ".0f"),
        ]
    )
    print_table(
        ["step", "in_process s", "mp worker start s", "mp step s", "ratio mp/in", "in peak MB", "mp peak MB"],
        table,
        title=f"== executor overhead, {rows:,} rows/day: execute_in_process (in_process) vs `dagster job execute` "
        "with NIGHTJAR_EXECUTOR=multiprocess ==",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[2000, 1_000_000])
    parser.add_argument(
        "--multiprocess-rows",
        type=int,
        default=2000,
        help="the rows value also measured with the multiprocess executor (0: none)",
    )
    parser.add_argument(
        "--history-days",
        type=int,
        default=1,
        help="days ingested (untimed) before the measured day; dbt's tests scan all of them",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dirs (their paths are in the logs)")
    parser.add_argument("--child", choices=["nightjar", "plain", "events"], help=argparse.SUPPRESS)
    parser.add_argument("--day", help=argparse.SUPPRESS)
    parser.add_argument("--first", help=argparse.SUPPRESS)
    parser.add_argument("--warehouse", help=argparse.SUPPRESS)
    parser.add_argument("--compiled", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child == "nightjar":
        return child_nightjar(args.day, args.out, args.first)
    if args.child == "events":
        return child_events(args.out)
    if args.child == "plain":
        return child_plain(args.day, args.rows[0], args.warehouse, args.compiled, args.out, args.first)

    print(
        "data half of one day: nightjar = `ingest` job via execute_in_process (in-process executor, persistent "
        "instance);\nplain = SyntheticSource + DuckDB + the dbt project's compiled SQL in one process. "
        "Fresh temp dir and process per measurement;\npeak MB = highest RSS of the process tree (dbt included) "
        "sampled every 20 ms within the step. ratio = nightjar / plain.\n",
        flush=True,
    )
    for rows in args.rows:
        print(f"[{rows:,} rows/day: measuring; {machine_load()}]", flush=True)
        nj = measure_nightjar(rows, args.history_days, args.keep)
        plain = measure_plain(rows, args.history_days, args.keep)
        print(f"[measured; {machine_load()}]", flush=True)
        report(rows, args.history_days, nj, plain)
        if rows == args.multiprocess_rows:
            mp = measure_multiprocess(rows, args.history_days, args.keep)
            report_multiprocess(rows, nj, mp)


if __name__ == "__main__":
    main()
