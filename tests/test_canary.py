"""The canary: a stable, hash-based slice of entities decided by the challenger, on real runs of the predictions
asset (the lab's Definitions, MLflow store and warehouse: tests/ml_lab.py).

- the slice depends only on the id: the same ids land in the same slice on every day and for every version, and
  the share is respected;
- every prediction row says which role and which version decided it; the metadata compares the two slices;
- a rollback ends the canary at once, and a version that already served never takes the slice.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

import numpy as np
import pandas as pd

from assets.ml.canary import CANARY_BUCKETS, canary_buckets, in_canary, slice_quality
from tests.ml_lab import MODEL, Lab
from tests.scoring_lab import DAY, metadata, predictions, score_day, write_scoring_day

SHARE = 0.25  # large enough that a day of the lab's 300 applications has a real slice


def _one_day_of_applications(lab: Lab) -> pd.DataFrame:
    mart = lab.write_mart(2)
    return mart[mart["application_date"] == mart["application_date"].max()]


# --- the slice itself ------------------------------------------------------------------------------------------------


def test_the_slice_is_the_ids_md5_stable_and_respects_the_share():
    ids = pd.Series([f"app-{i:07d}" for i in range(20_000)])
    # md5 of the id as text: the same bucket in every process and release (Python's hash() is salted per process).
    expected = int.from_bytes(hashlib.md5(b"app-0000001").digest()[:8], "big") % CANARY_BUCKETS
    assert canary_buckets(["app-0000001"])[0] == expected
    for share in (0.01, 0.05, 0.25):
        sliced = in_canary(ids, share)
        # binomial: within 4 standard deviations of the share
        assert abs(sliced.mean() - share) < 4 * np.sqrt(share * (1 - share) / len(ids)), (share, sliced.mean())
    # A larger share keeps every id of a smaller one; order and the other ids do not matter.
    assert not (in_canary(ids, 0.05) & ~in_canary(ids, 0.25)).any()
    shuffled = ids.sample(frac=1.0, random_state=1)
    assert (in_canary(shuffled, 0.05) == in_canary(ids, 0.05)[shuffled.index]).all()
    assert not in_canary(ids, 0.0).any()


def test_quality_splits_by_the_role_that_decided():
    labeled = pd.DataFrame(
        {
            "decided_by": ["champion"] * 4 + ["challenger"] * 2 + [None],
            "defaulted": [0, 1, 0, 1, 0, 1, 0],
            "score": [0.1, 0.9, 0.2, 0.8, 0.3, 0.6, 0.1],
        }
    )
    quality = slice_quality(labeled, "defaulted")
    assert quality["champion"]["rows"] == 5 and quality["challenger"]["rows"] == 2  # NULL: scored before the canary
    assert quality["challenger"]["roc_auc"] == 1.0 and quality["champion"]["roc_auc"] == 1.0


# --- real runs -------------------------------------------------------------------------------------------------------


def test_the_challenger_decides_the_same_ids_on_every_day_and_for_every_version(lab):
    assert lab.train(canary={"share": SHARE}) == 1
    applications = _one_day_of_applications(lab)
    write_scoring_day(lab, DAY, applications)
    first = metadata(score_day(lab, DAY))
    assert first["canary"].startswith("off: no challenger") and "canary_version" not in first
    assert set(predictions(lab, DAY)["decided_by"]) == {"champion"}

    # Version 2 passes the gate and waits for a person (policy manual): it takes the slice.
    assert lab.train({"policy": "manual"}, retrain=True, canary={"share": SHARE}) == 2
    assert (lab.champion(), lab.challenger()) == (1, 2)
    days = [DAY + timedelta(days=1), DAY + timedelta(days=2)]
    for day in days:
        write_scoring_day(lab, day, applications)
        meta = metadata(score_day(lab, day))
        assert meta["canary"] == f"on: challenger version 2 decides {SHARE:.1%} of application_ids"
        assert meta["canary_version"] == 2 and meta["model_version"] == 1
    expected = in_canary(predictions(lab, days[0])["application_id"], SHARE)
    assert 0 < expected.sum() < len(expected)
    for day in days:
        scored = predictions(lab, day)
        challenger = scored["decided_by"] == "challenger"
        assert (challenger.to_numpy() == expected).all()  # the same ids, day after day
        assert set(scored.loc[challenger, "model_version"]) == {2} and set(
            scored.loc[~challenger, "model_version"]
        ) == {1}
        assert scored["decided_by"].isin(["champion", "challenger"]).all()
    # The metadata compares the slices: rows and the decision mix per band of each role.
    assert (meta["challenger_rows"], meta["champion_rows"]) == (int(expected.sum()), int((~expected).sum()))
    for role in ("champion", "challenger"):
        assert abs(sum(meta[f"{role}_{band}_rate"] for band in ("approve", "review", "decline")) - 1) < 1e-9
    assert "| review |" in meta["decision_mix_by_role"]
    # The shadow still holds the challenger's view of every row, said to be the shadow's.
    assert set(predictions(lab, days[0], f"predictions.{MODEL}_shadow")["decided_by"]) == {"shadow"}
    # A re-run of a canary day is the same decisions (the rescore guard knows the canary's version).
    score_day(lab, days[0])
    assert (predictions(lab, days[0])["decided_by"] == "challenger").sum() == expected.sum()

    # A newer challenger (version 3) takes over the very same slice.
    assert lab.train({"policy": "manual"}, retrain=True, canary={"share": SHARE}) == 3
    later = DAY + timedelta(days=3)
    write_scoring_day(lab, later, applications)
    assert metadata(score_day(lab, later))["canary_version"] == 3
    scored = predictions(lab, later)
    assert ((scored["decided_by"] == "challenger").to_numpy() == expected).all()
    assert set(scored.loc[scored["decided_by"] == "challenger", "model_version"]) == {3}


def test_a_rollback_ends_the_canary_at_once(lab):
    assert lab.train(canary={"share": SHARE}) == 1
    applications = _one_day_of_applications(lab)
    assert lab.promote(version=lab.train({"policy": "manual"}, retrain=True), requested_by="ana").success
    assert (lab.champion(), lab.challenger()) == (2, None)
    assert lab.train({"policy": "manual"}, retrain=True, canary={"share": SHARE}) == 3
    write_scoring_day(lab, DAY, applications)
    assert metadata(score_day(lab, DAY))["canary_version"] == 3

    back = lab.rollback(requested_by="bo", reason="bad release")
    assert back.success and (lab.champion(), lab.challenger()) == (1, None)
    [decided] = back.asset_materializations_for_node(f"{MODEL}__champion")
    assert "a rollback ends the canary" in decided.metadata["challenger_cleared"].value
    next_day = DAY + timedelta(days=1)
    write_scoring_day(lab, next_day, applications)
    meta = metadata(score_day(lab, next_day))
    assert meta["canary"].startswith("off: no challenger") and "canary_version" not in meta
    scored = predictions(lab, next_day)
    assert set(scored["decided_by"]) == {"champion"} and set(scored["model_version"]) == {1}

    # Pointing the alias by hand at the version the rollback left does not restart the canary.
    lab.registry.client().set_registered_model_alias(MODEL, "challenger", "2")
    again = DAY + timedelta(days=2)
    write_scoring_day(lab, again, applications)
    meta = metadata(score_day(lab, again))
    assert meta["canary"].startswith("off: challenger version 2 already served as champion")
    assert set(predictions(lab, again)["decided_by"]) == {"champion"}
