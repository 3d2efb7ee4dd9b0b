"""Every check id the monitor can report has its runbook (the report links runbooks/<id>.md)."""

from __future__ import annotations

import re
from pathlib import Path

from mytrader_ops.monitor.triggers import default_triggers
from mytrader_ops.resources import data_dir

MONITOR = Path(__file__).resolve().parents[2] / "mytrader_ops" / "monitor"


def _monitor_check_ids() -> set[str]:
    source = "\n".join(p.read_text() for p in MONITOR.glob("*.py"))
    ids = set(re.findall(r'"(monitor-[a-z0-9-]+)"', source))
    paths = re.findall(r'\("(\w+)", "Connectivity: ', source)
    assert paths, "the connectivity paths moved: update this test"
    ids |= {f"monitor-connectivity-{p}" for p in paths}
    ids |= {f"rollback-{spec.id}" for spec in default_triggers()}
    return ids


def test_every_monitor_check_has_a_runbook() -> None:
    ids = _monitor_check_ids()
    assert len(ids) >= 15
    missing = sorted(i for i in ids if not (data_dir("runbooks") / f"{i}.md").is_file())
    assert not missing, f"checks without a runbook: {missing}"
    for check_id in ids:
        text = (data_dir("runbooks") / f"{check_id}.md").read_text()
        assert "## First steps" in text, check_id
        if check_id.startswith("monitor-"):
            for heading in ("## What it checks", "## What a failure means", "## Who decides"):
                assert heading in text, (check_id, heading)
