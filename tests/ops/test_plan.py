"""Pure run assembly: shipped suite by default, includes, overrides, scope, usage errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from mytrader_ops.errors import OpsError
from mytrader_ops.validate.plan import RunPlan, build_plan


def _plan(tmp_path: Path | None = None, text: str | None = None, **kw: object) -> RunPlan:
    cfg = None
    if text is not None:
        assert tmp_path is not None
        cfg = tmp_path / "c.yaml"
        cfg.write_text(text)
    args: dict[str, object] = {
        "config_file": cfg,
        "env_name": None,
        "target": None,
        "frontend": None,
        "duration_s": None,
        "rate": None,
    }
    args.update(kw)
    return build_plan(**args)  # type: ignore[arg-type]


def test_target_alone_uses_go_live_and_env_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MYTRADER_OPS_USERNAME", "u")
    monkeypatch.setenv("MYTRADER_OPS_PASSWORD", "p-secret")
    plan = _plan(target="http://127.0.0.1:5002/")
    assert plan.environment.backend == "http://127.0.0.1:5002"
    assert plan.environment.credentials.complete
    ids = [c.id for c in plan.checks]
    assert "auth-flow" in ids
    assert "error-rate" in ids
    assert plan.components == frozenset({"backend", "hubs"})
    assert plan.sampler.duration_s == 20
    assert plan.sampler.rate == 50


def test_frontend_brings_its_checks_into_scope() -> None:
    plan = _plan(target="http://a", frontend="http://b", duration_s=3.0, rate=40.0)
    assert "frontend" in plan.components
    assert plan.sampler.duration_s == 3.0
    assert plan.sampler.rate == 40.0


INCLUDE = """version: 1
include: [go-live]
default_env: staging
environments:
  staging: {backend: "https://api.staging.example"}
checks:
  - {id: api-latency, title: API latency, kind: latency, path: /api/symbols, max_ms: 80}
known_issues:
  - {check: api-latency, ticket: T-1, mitigation: m, expires: 2026-12-20}
"""


def test_include_then_override_by_id(tmp_path: Path) -> None:
    plan = _plan(tmp_path, INCLUDE)
    checks = {c.id: c for c in plan.checks}
    assert checks["api-latency"].max_ms == 80
    assert "health-ready" in checks
    assert plan.env_name == "staging"
    assert plan.rollback_triggers
    assert [k.ticket for k in plan.known_issues] == ["T-1"]


def test_target_overrides_the_environment_backend(tmp_path: Path) -> None:
    plan = _plan(tmp_path, INCLUDE, target="http://127.0.0.1:1")
    assert plan.environment.backend == "http://127.0.0.1:1"


@pytest.mark.parametrize(
    ("kw", "fragment"),
    [
        ({}, "nothing to validate"),
        ({"target": "127.0.0.1:5002"}, "must be an http(s) URL"),
        ({"target": "http://a", "frontend": "ftp://b"}, "--frontend"),
        ({"target": "http://a", "rate": 0.0}, "--rate"),
        ({"target": "http://a", "duration_s": 99999.0}, "--duration"),
        ({"target": "http://a", "env_name": "prod"}, "unknown environment"),
    ],
)
def test_usage_errors(kw: dict[str, object], fragment: str) -> None:
    with pytest.raises(OpsError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        _plan(**kw)


def test_unknown_include_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(OpsError, match="unknown suite 'nope'"):
        _plan(tmp_path, "version: 1\ninclude: [nope]\n", target="http://a")


def test_a_password_too_short_to_mask_is_refused_without_being_echoed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MYTRADER_OPS_USERNAME", "u")
    monkeypatch.setenv("MYTRADER_OPS_PASSWORD", "x7Q")
    with pytest.raises(OpsError) as err:
        _plan(target="http://127.0.0.1:5002")
    assert err.value.exit_code == 2
    assert "MYTRADER_OPS_PASSWORD" in str(err.value)
    assert "x7Q" not in str(err.value)


def test_every_go_live_criterion_can_block_the_decision() -> None:
    """Issue 9.6: the go-live suite claims every go-live criterion; a check that cannot block
    (critical: false) would let its criterion fail under a GO. Mobile connectivity is one of
    the release plan's success criteria."""
    plan = _plan(target="http://127.0.0.1:5002")
    assert [c.id for c in plan.checks if not c.critical] == []
    mobile = next(c for c in plan.checks if c.kind == "mobile")
    assert mobile.critical
