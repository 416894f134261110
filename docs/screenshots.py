"""Screenshots of what the Dagster UI, the reports and the MLflow UI show, for the README (docs/*.png).

Not run by CI. From the repo root, with Debian's `chromium` installed::

    .venv/bin/python -m docs.screenshots [--out docs]

It starts the stack of the live UI test in a temp folder (tests/live_ui.py: a small `make run`-like bootstrap of
three scored days, the reports server, `mlflow ui` and `dg dev`, all on ports other than the defaults), promotes the
challenger from the UI as a person would, and saves one PNG per page. Chromium runs headless, driven over its DevTools pipe (standard library
only): each page is shot once the text it is taken for is on screen, not after a fixed delay.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import select
import subprocess
import tempfile
import time
from pathlib import Path

from resources.settings import PROJECT_ROOT
from tests.live_ui import MODEL, live_stack

WIDTH, HEIGHT = 1440, 900
PAGE_DEADLINE_S = 90
GROUPS = ("raw", "staging", "intermediate", "marts", "training", "inference", "monitoring")
# MLflow 3 opens on its GenAI views and its assistant panel; the model-training view is what this project uses.
CLOSE_MLFLOW_ASSISTANT = "document.querySelector('button[aria-label=\"Close\"]')?.click()"


class Chromium:
    """Headless Chromium over ``--remote-debugging-pipe``: DevTools messages are JSON separated by NUL bytes on the
    child's file descriptors 3 (commands in) and 4 (answers and events out)."""

    def __init__(self, profile: Path) -> None:
        to_child, self._to_chrome = os.pipe()
        self._from_chrome, from_child = os.pipe()

        def wire_pipes() -> None:  # in the child, before exec: its fd 3 and fd 4
            high_in, high_out = os.dup(to_child), os.dup(from_child)
            os.dup2(high_in, 3)
            os.dup2(high_out, 4)

        cmd = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run"]
        cmd += ["--remote-debugging-pipe", f"--user-data-dir={profile}", "about:blank"]
        self.proc = subprocess.Popen(
            cmd, preexec_fn=wire_pipes, close_fds=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        os.close(to_child)
        os.close(from_child)
        self._buffer, self._next_id = b"", 0
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.call("Emulation.setDeviceMetricsOverride", width=WIDTH, height=HEIGHT, deviceScaleFactor=1, mobile=False)

    def call(self, method: str, **params) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if method not in ("Target.createTarget", "Target.attachToTarget"):
            message["sessionId"] = self.session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + PAGE_DEADLINE_S
        while True:
            while b"\0" not in self._buffer:
                if not select.select([self._from_chrome], [], [], max(0.0, deadline - time.monotonic()))[0]:
                    raise TimeoutError(f"Chromium did not answer {method}")
                self._buffer += os.read(self._from_chrome, 1 << 20)
            raw, self._buffer = self._buffer.split(b"\0", 1)
            answer = json.loads(raw)
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer["result"]

    def evaluate(self, expression: str):
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def shoot(self, url: str, path: Path, wait_for: str, action: str | None = None) -> bool:
        """Opens ``url``, waits until the page shows ``wait_for`` and its text stops changing, saves a PNG. A page
        that never does is saved as it is (to look at), and False returned."""
        self.call("Page.navigate", url="about:blank")  # no text of the page before counts as this one's
        self.call("Page.navigate", url=url)
        # Settled: the text holds still for three polls (digits aside: the runs list counts down to its refresh).
        text = "document.body ? document.body.innerText.replace(/[0-9]/g, '') : ''"
        deadline, last, steady, seen = time.monotonic() + PAGE_DEADLINE_S, None, 0, False
        while steady < 3 and time.monotonic() < deadline:
            time.sleep(0.5)
            if action:
                self.evaluate(action)
            shown = self.evaluate(text) or ""
            seen = seen or wait_for in shown
            steady = steady + 1 if seen and shown == last else 0
            last = shown
        png = base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])
        path.write_bytes(png)
        problem = "" if steady >= 3 else f" (NOT RIGHT: {'never settled' if seen else f'never showed {wait_for!r}'})"
        print(f"{path.name}: {len(png) // 1024} KB{problem}")
        return not problem

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()
        os.close(self._to_chrome)
        os.close(self._from_chrome)


def _pages(dagster: str, mlflow: str, report: str, day: str) -> dict[str, tuple[str, str, str | None]]:
    """Each screenshot: its page, the text it is taken for, and what to click away first (JavaScript)."""
    location, ml = f"{dagster}/locations/nightjar", "?workflowType=machine_learning"
    expanded = ",".join(f"global@global:{group}" for group in GROUPS)  # every group open in the global graph
    return {
        "dagster_asset_lineage": (f"{dagster}/asset-groups?expanded={expanded}", "stg_applications", None),
        "dagster_dbt_asset_columns": (f"{dagster}/assets/marts/fct_labeled_applications", "varchar", None),
        "dagster_drift_check_report_link": (f"{dagster}/assets/{MODEL}/drift?view=checks", "report: http", None),
        "dagster_predictions_partition": (
            f"{dagster}/assets/{MODEL}/predictions?view=partitions&partition={day}",
            "review_queue_rows",
            None,
        ),
        "dagster_model_mlflow_links": (f"{dagster}/assets/{MODEL}/model", "mlflow_model_version", None),
        "evidently_drift_report": (report, "Drift", None),
        "dagster_promote_launchpad": (f"{location}/jobs/promote_{MODEL}/playground", "requested_by", None),
        "dagster_runs_promotion_tags": (f"{dagster}/runs", "nightjar/requested_by", None),
        "mlflow_experiment_runs": (f"{mlflow}/#/experiments/1{ml}", "matching runs", CLOSE_MLFLOW_ASSISTANT),
        "mlflow_registered_model": (f"{mlflow}/#/models/{MODEL}{ml}", "champion", CLOSE_MLFLOW_ASSISTANT),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "docs")
    out = parser.parse_args().out
    with tempfile.TemporaryDirectory(prefix="nightjar_screens_") as tmp, live_stack(Path(tmp)) as stack:
        ui = stack.ui
        ui.query("mutation { setNuxSeen }")  # Dagster's first-visit newsletter dialog
        version = 2  # the challenger live_stack trains beside the bootstrap's champion
        run = ui.launch(
            f"promote_{MODEL}",
            {"version": version, "requested_by": "jane.doe@example.com", "reason": "v2 holds up on the last two weeks"},
        )
        assert ui.wait_for_run(run)["status"] == "SUCCESS", ui.failure_messages(run)
        day = stack.env["NIGHTJAR_END_DATE"]
        pages = _pages(ui.url, stack.mlflow_url, f"{stack.reports_url}/{MODEL}/drift/{day}.html", day)
        out.mkdir(parents=True, exist_ok=True)
        browser = Chromium(Path(tmp) / "chromium")
        try:
            shot = [browser.shoot(url, out / f"{name}.png", *wait) for name, (url, *wait) in pages.items()]
        finally:
            browser.close()
    if not all(shot):
        raise SystemExit("some pages did not show what they were taken for: look at them before keeping them")


if __name__ == "__main__":
    main()
