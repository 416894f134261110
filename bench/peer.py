"""The peer: the nightly chain written the way a user without nightjar writes it, as one plain Python script.

    python -m bench.peer --first DAY --last DAY [--score --spec SPEC.yaml --reports DIR] [--out RESULT.json]

1. ingest  the synthetic generator's rows (``SyntheticSource.read``) of every day in [first, last] for each raw table
           declared in the dbt source YAML, with plain duckdb: one transaction per table (delete the range, insert all
           its rows at once); tables created from the YAML's column types if missing
2. dbt     ONE ``dbt build`` subprocess: the repo's dbt project, dev target, window as ``--vars`` min_date / max_date
3. score   (``--score``, one day) ``mlflow.pyfunc.load_model("models:/<name>@champion")`` on the scoring mart's rows of
           the day; predictions (id, day, score, decision band, version) replace the day in ``peer.predictions_<name>``
4. drift   (``--score``) Evidently, the preset nightjar uses (DataDriftPreset, Wasserstein / Jensen-Shannon, the spec's
           threshold, plus ValueDrift of the score), a same-size sample of the day (the spec's ``sample_rows``) against
           the champion's logged reference sample; HTML saved

Settings come from the environment as for a cron script: NIGHTJAR_WAREHOUSE_PATH (also read by profiles.yml),
NIGHTJAR_ROWS_PER_DAY, NIGHTJAR_SEED, NIGHTJAR_LABEL_DELAY_DAYS, NIGHTJAR_START_DATE, MLFLOW_TRACKING_URI,
DBT_TARGET_PATH. Nothing of nightjar is imported except the generator (which is a Dagster resource, so importing it
imports dagster: that cost is timed on its own). Every phase's start and end (time.time()) go to ``--out``.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path

T_MAIN = time.time()
PROJECT = Path(__file__).resolve().parent.parent
DBT_PROJECT = PROJECT / "dbt_project"
SOURCES_YAML = DBT_PROJECT / "models" / "staging" / "loans" / "__sources.yml"
REFERENCE_ARTIFACT = "reference/reference.parquet"  # where training logged the reference sample

phases: dict[str, dict[str, float]] = {}


class phase:
    """Times a block as phases[name] = {"start", "end"}."""

    def __init__(self, name: str):
        self.name = name

    def __enter__(self):
        self.start = time.time()

    def __exit__(self, *exc):
        phases[self.name] = {"start": self.start, "end": time.time()}


def raw_tables() -> list[dict]:
    """The raw tables the generator fills, as declared for dbt: qualified name, partition column, DDL columns. A
    landing table (the loan example's review files) has no file in the bench's state: the script skips it."""
    import yaml

    tables = []
    for source in yaml.safe_load(SOURCES_YAML.read_text())["sources"]:
        for table in source["tables"]:
            meta = table.get("config", {}).get("meta", {}).get("nightjar", {})
            if meta.get("origin") != "synthetic_loans":
                continue
            columns = [
                (c["name"], c["data_type"], any(k.get("type") == "not_null" for k in c.get("constraints", [])))
                for c in table["columns"]
            ]
            tables.append(
                {
                    "name": table["name"],
                    "schema": source["schema"],
                    "partition": meta["partition_column"],
                    "columns": columns,
                }
            )
    return tables


def ingest(warehouse: str, first: date, last: date) -> dict[str, int]:
    with phase("import duckdb, pandas, numpy, yaml"):
        import duckdb
        import numpy  # noqa: F401
        import pandas as pd
        import yaml  # noqa: F401
    with phase("import the generator (a Dagster resource: imports dagster)"):
        from resources.source.synthetic import SyntheticSource

    source = SyntheticSource(
        rows_per_day=int(os.environ.get("NIGHTJAR_ROWS_PER_DAY", "2000")),
        seed=int(os.environ.get("NIGHTJAR_SEED", "7")),
        label_delay_days=int(os.environ.get("NIGHTJAR_LABEL_DELAY_DAYS", "30")),
        start_date=os.environ.get("NIGHTJAR_START_DATE"),
    )
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    counts = {}
    with duckdb.connect(warehouse) as con:
        for table in raw_tables():
            with phase(f"ingest {table['name']}"):
                qualified = f"{table['schema']}.{table['name']}"
                names = ", ".join(f'"{name}"' for name, _, _ in table["columns"])
                ddl = ", ".join(f'"{n}" {t}{" NOT NULL" if nn else ""}' for n, t, nn in table["columns"])
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {table['schema']}")
                con.execute(f"CREATE TABLE IF NOT EXISTS {qualified} ({ddl})")
                frames = [chunk for day in days for chunk in source.read(table["name"], day)]
                con.execute("BEGIN TRANSACTION")
                con.execute(
                    f'DELETE FROM {qualified} WHERE "{table["partition"]}" >= ? AND "{table["partition"]}" < ?',
                    [first, last + timedelta(days=1)],
                )
                if frames:
                    batch = pd.concat(frames, ignore_index=True)
                    con.register("batch", batch)
                    con.execute(f"INSERT INTO {qualified} ({names}) SELECT {names} FROM batch")
                    con.unregister("batch")
                con.execute("COMMIT")
                counts[table["name"]] = sum(len(f) for f in frames)
    return counts


def dbt_build(first: date, last: date) -> dict:
    """ONE `dbt build` over [first, last]; its node timings from run_results.json."""
    window = {"min_date": first.isoformat(), "max_date": (last + timedelta(days=1)).isoformat()}
    command = [
        str(Path(sys.executable).parent / "dbt"),
        "build",
        "--project-dir",
        str(DBT_PROJECT),
        "--profiles-dir",
        str(DBT_PROJECT),
        "--target",
        "dev",
        "--vars",
        json.dumps(window),
    ]
    with phase("dbt build"):
        started = time.time()
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        ended = time.time()
    print(done.stdout, flush=True)
    if done.returncode != 0:
        raise SystemExit(f"dbt build failed ({done.returncode})")
    target = Path(os.environ.get("DBT_TARGET_PATH", DBT_PROJECT / "target"))
    results = json.loads((target / "run_results.json").read_text())["results"]
    starts = [
        datetime.fromisoformat(t["started_at"].replace("Z", "+00:00")).timestamp()
        for r in results
        for t in r.get("timing", [])
        if t.get("started_at")
    ]
    node = lambda kind: sum(r["execution_time"] for r in results if r["unique_id"].startswith(kind))  # noqa: E731
    return {
        "start": started,
        "end": ended,
        "first_node_start": min(starts, default=started),
        "models_s": node("model."),
        "tests_s": node("test.") + node("unit_test."),
        "nodes": len(results),
        "parse": "full" if "Unable to do partial parsing" in done.stdout else "partial",
    }


def score_and_drift(warehouse: str, spec_path: Path, day: date, reports: Path) -> dict:
    import duckdb
    import numpy as np
    import pandas as pd
    import yaml

    with phase("import mlflow"):
        import mlflow
        import mlflow.artifacts
        import mlflow.pyfunc
        from mlflow import MlflowClient
    with phase("import evidently"):
        from evidently import DataDefinition, Dataset, Report
        from evidently.metrics import ValueDrift
        from evidently.presets import DataDriftPreset

    spec = yaml.safe_load(spec_path.read_text())
    name, entity, stamp = spec["name"], spec["entity_id"], spec["timestamp"]
    numeric, categorical = spec["features"]["numeric"], spec["features"]["categorical"]
    features = [*numeric, *categorical]
    with phase("resolve champion (MLflow client)"):
        champion = MlflowClient().get_model_version_by_alias(name, "champion")
    with phase("load champion (pyfunc)"):
        model = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    with duckdb.connect(warehouse) as con:
        with phase("read scoring mart day"):
            frame = con.execute(f"SELECT * FROM marts.{spec['scoring_mart']} WHERE {stamp} = ?", [day]).fetch_df()
        with phase("score"):
            X = frame[features].astype({c: "float64" for c in numeric})
            scores = np.asarray(model.predict(X), dtype="float64")
            scores = scores[:, 1] if scores.ndim == 2 else scores
            bands = spec["decision_bands"]
            decision = np.select(
                [scores < b["below"] for b in bands[:-1]], [b["name"] for b in bands[:-1]], default=bands[-1]["name"]
            )
        with phase("write predictions"):
            out = pd.DataFrame(
                {
                    entity: frame[entity],
                    stamp: frame[stamp],
                    "score": scores,
                    "decision": decision,
                    "model_version": int(champion.version),
                    "scored_at": pd.Timestamp.now(),
                }
            )
            con.execute("CREATE SCHEMA IF NOT EXISTS peer")
            con.execute(
                f"CREATE TABLE IF NOT EXISTS peer.predictions_{name} ({entity} VARCHAR, {stamp} DATE, "
                "score DOUBLE, decision VARCHAR, model_version BIGINT, scored_at TIMESTAMP)"
            )
            con.execute("BEGIN TRANSACTION")
            con.execute(f"DELETE FROM peer.predictions_{name} WHERE {stamp} = ?", [day])
            con.register("scored", out)
            con.execute(f"INSERT INTO peer.predictions_{name} SELECT * FROM scored")
            con.execute("COMMIT")
    monitoring = spec["monitoring"]
    threshold = monitoring["column_drift_threshold"]
    with phase("reference sample (download from MLflow)"):
        reference = pd.read_parquet(
            mlflow.artifacts.download_artifacts(
                run_id=champion.run_id, artifact_path=REFERENCE_ARTIFACT, dst_path=str(reports / "reference")
            )
        )
    # The features the logged reference sample holds: a sensitive one (the loan example's age) is left out of it,
    # and the script compares what it has (nightjar measures it in a second, unstored run: a little more work).
    checked = [c for c in features if c in reference.columns]
    with phase("drift: Evidently report"):
        current = frame[checked].assign(score=scores)
        if len(current) > monitoring["sample_rows"]:
            current = current.sample(n=monitoring["sample_rows"], random_state=0)
        definition = DataDefinition(
            numerical_columns=[*(c for c in numeric if c in checked), "score"],
            categorical_columns=[c for c in categorical if c in checked],
        )
        report = Report(
            [
                DataDriftPreset(
                    columns=checked, num_method="wasserstein", cat_method="jensenshannon", threshold=threshold
                ),
                ValueDrift(column="score", method="wasserstein", threshold=threshold),
            ],
            include_tests=True,
        )
        columns = [*checked, "score"]
        snapshot = report.run(
            Dataset.from_pandas(current[columns], data_definition=definition),
            Dataset.from_pandas(reference[columns], data_definition=definition),
        )
        failed = sum(1 for t in snapshot.dict()["tests"] if t["status"] == "FAIL")
    with phase("drift: HTML report"):
        snapshot.save_html(str(reports / f"drift_{day}.html"))
    return {
        "scored_rows": len(frame),
        "sample_rows": len(current),
        "reference_rows": len(reference),
        "drift_tests_failed": failed,
        "champion_version": int(champion.version),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--first", required=True)
    parser.add_argument("--last", required=True)
    parser.add_argument("--score", action="store_true", help="score the (one) day with the champion and check drift")
    parser.add_argument("--spec", type=Path, help="the model spec YAML (features, bands, thresholds)")
    parser.add_argument("--reports", type=Path, default=Path("peer_reports"))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    first, last = date.fromisoformat(args.first), date.fromisoformat(args.last)
    warehouse = os.environ["NIGHTJAR_WAREHOUSE_PATH"]

    counts = ingest(warehouse, first, last)
    dbt = dbt_build(first, last)
    scored = {}
    if args.score:
        if first != last:
            raise SystemExit("--score scores one day: give --first = --last")
        args.reports.mkdir(parents=True, exist_ok=True)
        scored = score_and_drift(warehouse, args.spec, last, args.reports)
    t_done = time.time()

    import resource

    result = {
        "t_main": T_MAIN,
        "t_done": t_done,
        "phases": phases,
        "dbt": dbt,
        "counts": counts,
        **scored,
        "self_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "children_maxrss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }
    if args.out:
        args.out.write_text(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main()
