"""Names of the monitoring assets (``<model>/<suffix>``) and of their checks, written once: the assets declare
them (drift_assets.py, quality_assets.py), the monitoring job selects by them (jobs/monitoring.py) and the checks
sensor decides on retraining by them (jobs/retraining.py), so a rename here renames them everywhere."""

DRIFT_ASSET = "drift"
QUALITY_ASSET = "quality"

DATA_DRIFT = "data_drift"
SCORE_DRIFT = "score_drift"
EMPTY_INPUTS = "empty_inputs"  # a checked feature with no value on the day (or in the reference): not a drift
AUC_DROP = "auc_drop"
CALIBRATION = "calibration"

# (asset key suffix, check name) of the monitoring checks whose ERROR failure means the model no longer fits its
# data. Listed, not inferred from the asset key: a retraining is expensive, and other checks may be added to
# these assets later without meaning "retrain".
RETRAIN_CHECKS = frozenset(
    {
        (DRIFT_ASSET, DATA_DRIFT),
        (DRIFT_ASSET, SCORE_DRIFT),
        (QUALITY_ASSET, AUC_DROP),
        (QUALITY_ASSET, CALIBRATION),
    }
)
