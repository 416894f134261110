"""Replay one scored case: `python -m jobs.replay --model loan_default_risk --case <id> [--day YYYY-MM-DD]`.

Re-scores the model input stored when the case was scored (predictions.<model>_inputs) with the version its
prediction row names, loaded from the registry after its files are checked against the hash recorded at
registration, and prints the stored and the replayed score, decision and reasons side by side
(:mod:`assets.ml.replay`). Input values are never printed (a column may be declared sensitive).

The decision and the reasons must be equal; the score equal, or equal but for its last digits (one row scored
alone is not summed in the same order as in the nightly batch: the column says "last digits: rounding").

Exit status: 0 the replay matches the stored decision exactly; 1 it differs (the differing fields are named);
2 it cannot replay (the error's name and why: CaseNotFound, AmbiguousCase, InputNotStored, InputOutOfDate,
VersionUnavailable, ModelIntegrityError, ...). It reads the deployment's settings (NIGHTJAR_* variables) like
every other command.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from typing import TextIO

from assets.ml.replay import Replay, ReplayError, replay_case
from assets.ml.spec import ModelSpec, SpecError
from resources.registry import ModelRegistry, RegistryError
from resources.settings import Settings

MATCH, DIFFERS, CANNOT = 0, 1, 2


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a day (YYYY-MM-DD)") from None


def _spec(settings: Settings, name: str) -> ModelSpec:
    from assets.ml.spec.loading import load_specs

    specs = {spec.name: spec for spec in load_specs(settings.model_specs_dir).values()}
    if name not in specs:
        raise SpecError(f"no model spec named '{name}' in {settings.model_specs_dir}; models: {sorted(specs)}")
    return specs[name]


def _shown(value: object) -> str:
    if value is None:
        return "NULL"
    return repr(value) if isinstance(value, float) else str(value)  # repr: every digit of the stored double


def render(replay: Replay, out: TextIO) -> None:
    """The case, the version that decided it and each compared output, stored beside replayed."""
    print(
        f"case '{replay.case}' of {replay.model} on {replay.day.isoformat()}: decided by {replay.decided_by} "
        f"version {replay.version} (run {replay.run_id}); replayed from the stored input",
        file=out,
    )
    rows = [("field", "stored", "replayed", "same")] + [
        (name, _shown(stored), _shown(replayed), replay.verdicts[name])
        for name, (stored, replayed) in replay.compared.items()
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[3], file=out)
    if replay.matches and replay.exact:
        print("MATCH: the replay reproduces every stored output exactly", file=out)
    elif replay.matches:
        print("MATCH: the same decision and reasons exactly; the score but for its last digits (rounding)", file=out)
    else:
        print(f"DIFFERS: {', '.join(replay.differing)}", file=out)


def main(argv: list[str] | None = None, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="the model spec's name, e.g. loan_default_risk")
    parser.add_argument("--case", required=True, help="the case's id (the spec's entity_id)")
    parser.add_argument(
        "--day", type=_day, metavar="YYYY-MM-DD", help="the day it was scored (needed if it was scored on several)"
    )
    args = parser.parse_args(argv)
    from resources.build import open_warehouse
    from resources.model_integrity import ModelIntegrityError

    settings = Settings.from_env()
    try:
        spec = _spec(settings, args.model)
        registry = ModelRegistry(tracking_uri=settings.mlflow_tracking_uri, artifact_root=settings.mlflow_artifact_root)
        replay = replay_case(open_warehouse(settings), registry, spec, args.case, args.day)
    except (ReplayError, SpecError) as error:
        print(f"cannot replay: {type(error).__name__}: {error}", file=err)
        return CANNOT
    except (ModelIntegrityError, RegistryError) as error:
        print(f"cannot replay: {type(error).__name__}: {error.description}", file=err)
        return CANNOT
    render(replay, out)
    return MATCH if replay.matches else DIFFERS


if __name__ == "__main__":
    sys.exit(main())
