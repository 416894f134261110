"""The nightjar side of the nightly chain, in one fresh process: the ``nightly`` job for one day (raw, dbt, scoring),
then the drift asset of ``monitor_<model>`` for that day, as the schedules launch them, on the persistent instance
in DAGSTER_HOME.

    python -m bench.nightjar_chain --day DAY --model NAME --out RESULT.json [--multiprocess]

In-process (as ``make run`` and local runs): ``execute_in_process``, with timers around the functions the steps
call (bench/_probes.py). ``--multiprocess`` (the prod path): ``dagster.execute_job`` of the reconstructable jobs with
NIGHTJAR_EXECUTOR=multiprocess, a process per step; no timers (they would be in the step processes).
"""

from __future__ import annotations

import argparse
import os
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--day", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--multiprocess", action="store_true")
    args = parser.parse_args()

    marks = {"t_main": time.time()}
    import dagster as dg

    from bench import _jobs, _probes
    from bench._harness import QUIET_RUN_CONFIG, child_peaks, dbt_node_summary, step_windows, write_result

    os.environ[_jobs.MODEL_ENV] = args.model
    _jobs.definitions()
    # Installing the timers imports what the steps would (pandas): counted in the start-up, not lost.
    missing = [] if args.multiprocess else _probes.install()
    marks["t_loaded"] = time.time()
    instance = dg.DagsterInstance.get()
    drift = [dg.AssetKey([args.model, "drift"])]
    runs = {}
    for name, job_fn, selection in (("nightly", _jobs.nightly_job, None), ("drift", _jobs.monitor_job, drift)):
        before = time.time()
        if args.multiprocess:
            with dg.execute_job(
                dg.reconstructable(job_fn),
                instance=instance,
                run_config=QUIET_RUN_CONFIG,
                tags={"dagster/partition": args.day},
                asset_selection=selection,
                raise_on_error=True,
            ) as result:
                run_id = result.run_id
        else:
            run_id = (
                job_fn()
                .execute_in_process(
                    instance=instance,
                    run_config=QUIET_RUN_CONFIG,
                    partition_key=args.day,
                    asset_selection=selection,
                    raise_on_error=True,
                )
                .run_id
            )
        runs[name] = {
            "before": before,
            "after": time.time(),
            "run_id": run_id,
            "windows": step_windows(instance, run_id),
            "dbt": dbt_node_summary(instance, run_id),
        }
    marks["t_done"] = time.time()
    write_result(
        args.out,
        {
            **marks,
            **child_peaks(),
            "runs": runs,
            "probes": _probes.RECORDS,
            "probes_missing": missing,
            "multiprocess": args.multiprocess,
        },
    )


if __name__ == "__main__":
    main()
