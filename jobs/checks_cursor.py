"""The memory of ``monitoring_checks_sensor`` (jobs/monitoring_checks_sensor.py), kept as JSON in its cursor."""

from __future__ import annotations

import json
from dataclasses import dataclass, field


@dataclass
class ChecksCursor:
    """The checks sensor's memory, kept as JSON in its cursor.

    ``after_storage_id``: per kind of run end, the last run-status event already read. ``last_retrain``: per model,
    when (ISO UTC) this sensor last requested its training job: the cool-down, so a model whose checks keep failing
    cannot trigger a retraining loop.
    """

    after_storage_id: dict[str, int] = field(default_factory=dict)
    last_retrain: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: str | None, sensor_name: str) -> ChecksCursor | None:
        if not raw:
            return None
        try:
            data = json.loads(raw)
            return cls(after_storage_id=dict(data["after_storage_id"]), last_retrain=dict(data["last_retrain"]))
        except (ValueError, KeyError, TypeError):
            raise ValueError(
                f"sensor {sensor_name}: cursor {raw!r} is not what this sensor writes; "
                "clear it in the UI to start from now"
            ) from None

    def dump(self) -> str:
        data = {"after_storage_id": self.after_storage_id, "last_retrain": self.last_retrain}
        return json.dumps(data, sort_keys=True)
