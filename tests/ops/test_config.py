"""Configuration validation: strict models, env references, line-located problems (C3, C4)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from mytrader_ops.config import config_schema, load_config, parse_config
from mytrader_ops.errors import ConfigError
from mytrader_ops.redaction import Redactor, Secret
from mytrader_ops.yamlsafe import parse_yaml

GOOD = """\
version: 1
environments:
  staging:
    backend: https://api.staging.example
    credentials:
      username: ${OPS_TEST_USER}
      password: ${OPS_TEST_PASS}
checks:
  - id: live
    title: Backend live
    kind: http
    path: /health/live
known_issue_max_days: 365
known_issues:
  - check: live
    ticket: OPS-1
    mitigation: restart
    expires: 2027-06-01
"""


LITERAL_SECRET = (
    "environments:\n  x:\n    backend: http://h\n    credentials:\n      password: hunter2\n"
)


def _parse(text: str) -> object:
    return parse_config(parse_yaml(text, "c.yaml"))


KNOWN_ISSUE = """version: 1
{top}known_issues:
  - check: live
    ticket: OPS-1
    mitigation: restart
    expires: {expires}
{item}"""


@pytest.mark.parametrize(
    ("expires", "top", "item", "problem"),
    [
        ("2027-01-01", "", "", None),  # 30 days ahead: the default ceiling
        ("2027-01-02", "", "", "c.yaml:6: known_issues[0].expires: 2027-01-02 is more than 30"),
        ("2027-03-01", "known_issue_max_days: 90\n", "", None),
        ("2027-12-31", "known_issue_max_days: 365\n", "", "more than 365 days ahead"),
        ("2027-01-01", "known_issue_max_days: 400\n", "", "known_issue_max_days"),
        ("2027-01-01", "", "    waives: [inconclusive, fail]\n", None),
        ("2027-01-01", "", "    waives: [skipped]\n", "known_issues[0].waives"),
        ("2027-01-01", "", "    waives: []\n", "known_issues[0].waives"),
        ("2027-01-01", "", "    match: 'HTTP 5[0-9]{{2}}'\n", None),
        ("2027-01-01", "", "    match: 'HTTP (5'\n", "match is not a regular expression"),
    ],
)
def test_known_issue_expiry_ceiling_waives_and_match(
    expires: str, top: str, item: str, problem: str | None
) -> None:
    doc = parse_yaml(KNOWN_ISSUE.format(expires=expires, top=top, item=item), "c.yaml")
    if problem is None:
        parse_config(doc, today=dt.date(2026, 12, 2))
        return
    with pytest.raises(ConfigError) as err:
        parse_config(doc, today=dt.date(2026, 12, 2))
    assert problem in str(err.value)


def test_good_config_parses_and_resolves_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPS_TEST_USER", "alice")
    monkeypatch.setenv("OPS_TEST_PASS", "canary-pw-123")
    cfg = parse_config(parse_yaml(GOOD, "c.yaml"), today=dt.date(2026, 12, 2))
    creds = cfg.environments["staging"].credentials
    assert creds.complete
    assert creds.password is not None
    assert creds.password.reveal() == "canary-pw-123"
    assert "canary" not in repr(cfg)
    assert "canary" not in cfg.model_dump_json()


def test_unset_env_var_means_missing_credentials_not_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OPS_TEST_USER", raising=False)
    monkeypatch.delenv("OPS_TEST_PASS", raising=False)
    cfg = parse_config(parse_yaml(GOOD, "c.yaml"))
    assert not cfg.environments["staging"].credentials.complete


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("version: 1\nsurprise: 1\n", "c.yaml:2: surprise: Extra inputs are not permitted"),
        (
            "checks:\n  - id: a\n    title: t\n    kind: http\n    path: /x\n    pth: /y\n",
            "c.yaml:6: checks[0].pth: Extra inputs",
        ),
        (
            "checks:\n  - id: a\n    title: 1.10\n    kind: http\n    path: /x\n",
            "c.yaml:3: checks[0].title: Input should be a valid string (quote",
        ),
        ("checks:\n  - id: Bad_Id\n    title: t\n    kind: http\n    path: /x\n", "checks[0].id"),
        ("checks:\n  - id: a\n    title: t\n    kind: nope\n", "c.yaml:4"),
        (LITERAL_SECRET, "c.yaml:5: environments.x.credentials.password"),
        (
            "environments:\n  x:\n    backend: http://${HOST}\n",
            "c.yaml:3: environments.x.backend: ${...} environment references are allowed only",
        ),
        ("environments:\n  x:\n    backend: ftp://h\n", "environments.x.backend"),
        (
            "checks:\n  - {id: a, title: t, kind: http, path: /x}\n"
            "  - {id: a, title: t, kind: http, path: /y}\n",
            "duplicate check id 'a'",
        ),
        (
            "known_issues:\n  - check: a\n    ticket: T-1\n    mitigation: m\n    expires: soon\n",
            "c.yaml:5: known_issues[0].expires",
        ),
        ("sampler:\n  rate: 0\n", "c.yaml:2: sampler.rate"),
        ("- 1\n", "top level must be a mapping"),
    ],
)
def test_problems_name_file_line_and_path(text: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        _parse(text)
    assert fragment in str(info.value)


def test_literal_secret_value_never_echoed() -> None:
    with pytest.raises(ConfigError) as info:
        _parse(LITERAL_SECRET)
    assert "hunter2" not in str(info.value)


def test_shipped_suites_are_valid() -> None:
    root = Path(__file__).resolve().parents[2] / "checks"
    files = sorted(root.glob("*.yaml"))
    assert {f.name for f in files} >= {"go-live.yaml", "smoke.yaml"}
    for f in files:
        load_config(f)


def test_schema_exports_secret_pattern() -> None:
    schema = config_schema()
    assert schema["$schema"].startswith("https://json-schema.org/")  # type: ignore[union-attr]
    assert "${" in str(schema)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("GET http://user:pw@host/x", "GET http://***@host/x"),
        ("wss://h/hubs/x?id=1&access_token=abc.def.ghi", "wss://h/hubs/x?id=1&access_token=***"),
        ("Authorization: Bearer abc.def", "Authorization: Bearer ***"),
        ("password is canary-XYZ", "password is ***"),
    ],
)
def test_redactor(text: str, expected: str) -> None:
    r = Redactor(["canary-XYZ"])
    assert r.redact(text) == expected


def test_secret_never_prints() -> None:
    s = Secret("X", "canary-value")
    assert "canary" not in f"{s} {s!r}"
    assert s.reveal() == "canary-value"
