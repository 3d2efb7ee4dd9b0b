"""Locate shipped data (suites, runbooks): inside the wheel first, the source tree second."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def data_dir(name: str) -> Path:
    """`checks`, `runbooks` or `rollback`, from `mytrader_ops/_data/` or the repository root."""
    packaged = resources.files("mytrader_ops").joinpath("_data", name)
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[1] / name


def suite_path(name: str) -> Path:
    return data_dir("checks") / f"{name}.yaml"


def shipped_suites() -> list[str]:
    return sorted(p.stem for p in data_dir("checks").glob("*.yaml"))
