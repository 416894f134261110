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
RMSE = "rmse"  # regression: labeled rows' RMSE / the version's holdout RMSE
MACRO_F1_DROP = "macro_f1_drop"  # multiclass: the version's holdout macro F1 - labeled rows'

# The quality checks each task's quality asset declares (a regressor has no ROC AUC to drop).
QUALITY_CHECKS = {"binary": (AUC_DROP, CALIBRATION), "regression": (RMSE,), "multiclass": (MACRO_F1_DROP,)}

# (asset key suffix, check name) of the monitoring checks whose ERROR failure means the model no longer fits its
# data. Listed, not inferred from the asset key: a retraining is expensive, and other checks may be added to
# these assets later without meaning "retrain".
RETRAIN_CHECKS = frozenset(
    {
        (DRIFT_ASSET, DATA_DRIFT),
        (DRIFT_ASSET, SCORE_DRIFT),
        (QUALITY_ASSET, AUC_DROP),
        (QUALITY_ASSET, CALIBRATION),
        (QUALITY_ASSET, RMSE),
        (QUALITY_ASSET, MACRO_F1_DROP),
    }
)
