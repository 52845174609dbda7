"""Shared fixtures: the prepared data root and a throw-away MLflow store per test."""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA_ROOT = REPO / "data"


@pytest.fixture()
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty directory, so mlflow.db, optuna.db and mlruns/ land there."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def small_overrides(tmp_path: Path, *, epochs: int = 2, limit: int = 2000) -> list[str]:
    """Overrides for a quick run on a slice of the real data with a store under tmp_path."""
    return [f"data.root={DATA_ROOT}", f"data.limit_train={limit}", "data.val_size=1000",
            f"train.epochs={epochs}", f"mlflow.tracking_uri=sqlite:///{tmp_path}/mlflow.db"]
