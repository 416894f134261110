"""`make test` lints every dbt model under dbt_project/models with sqlfluff, a user's own models included: the
shipped foreign-domain example (tests/foreign_domain/), placed where a user places a domain, passes that lint with
the project's .sqlfluff, so SQL written after it passes too."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from resources.settings import PROJECT_ROOT

pytestmark = pytest.mark.slow

DOMAIN = Path(__file__).parent / "foreign_domain" / "dbt"
BIN = Path(sys.executable).parent


def test_the_shipped_foreign_domain_passes_the_lint_make_test_applies(tmp_path):
    copy = tmp_path / "project"
    shutil.copytree(PROJECT_ROOT / "dbt_project", copy / "dbt_project", ignore=shutil.ignore_patterns("target", "logs"))
    shutil.copy(PROJECT_ROOT / ".sqlfluff", copy / ".sqlfluff")
    placed = [copy / "dbt_project" / "models" / layer / "parcels" for layer in ("staging", "marts")]
    for layer, folder in zip(("staging", "marts"), placed, strict=True):
        shutil.copytree(DOMAIN / layer, folder)
    parse = subprocess.run(
        [str(BIN / "dbt"), "parse", "--quiet", "--profiles-dir", ".", "--project-dir", "."],
        cwd=copy / "dbt_project",
        capture_output=True,
        text=True,
    )
    assert parse.returncode == 0, parse.stdout[-2000:] + parse.stderr[-2000:]
    lint = subprocess.run([str(BIN / "sqlfluff"), "lint", *map(str, placed)], cwd=copy, capture_output=True, text=True)
    assert lint.returncode == 0, f"sqlfluff on the example as a user's models:\n{lint.stdout[-4000:]}"
