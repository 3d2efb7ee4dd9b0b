"""Plans: templating as data (C5), strict parsing with line numbers, pure resolution."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mytrader_ops.errors import ConfigError
from mytrader_ops.resources import data_dir
from mytrader_ops.rollback.errors import RollbackUsageError
from mytrader_ops.rollback.model import parse_plan
from mytrader_ops.rollback.plan import (
    ResolvedCommand,
    ResolvedHttp,
    format_plan,
    plan_rollback,
    rollback_id_for,
)
from mytrader_ops.rollback.template import SecretRef, Text, Var, parse_template, substitute

INJECTION = "x; $(touch /tmp/pwned)"


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("plain", ("plain",)),
        ("{env}", (Var("env"),)),
        ("deploy/{env}-api", ("deploy/", Var("env"), "-api")),
        ("${SLACK_URL}", (SecretRef("SLACK_URL"),)),
        ("Bearer ${TOKEN}", ("Bearer ", SecretRef("TOKEN"))),
        ("{{env}}", ("{env}",)),
        ('{"spec": {"color": "{color}"}}', ('{"spec": {"color": "', Var("color"), '"}}')),
        ("$(touch /tmp/x)", ("$(touch /tmp/x)",)),
        ("{Upper}", ("{Upper}",)),  # not a placeholder name: literal
        ("", ()),
    ],
)
def test_parse_template(text: str, parts: tuple[object, ...]) -> None:
    assert parse_template(text) == parts


@pytest.mark.parametrize(
    "value",
    [INJECTION, "${HOME}", "{env}", "a b c", "-rf", "'\"", "\n", "$((1+1))`id`"],
)
def test_substituted_values_are_data_never_reparsed(value: str) -> None:
    text = substitute("pre-{reason}-post", {"reason": Text.literal(value)})
    assert text.display() == f"pre-{value}-post"
    assert text.render({}) == f"pre-{value}-post"
    assert text.secret_names == ()


def _plan(steps: str, extra: str = "") -> str:
    return f"name: demo\n{extra}steps:\n{steps}"


BASIC = _plan(
    """  - name: restart
    kind: command
    argv: [deployctl, --env, "{env}", --version, "{to_version}", --why, "{reason}"]
    timeout_s: 30
  - name: notify
    kind: http
    url: "${HOOK_URL}"
    json: {text: "rolled back {env} to {to_version}: {reason}"}
  - name: settle
    kind: wait
    seconds: 1
  - name: verify
    kind: verify
    suite: smoke
""",
    "environments:\n  staging:\n    target: http://127.0.0.1:5002/\n",
)


def test_injection_is_one_literal_argument() -> None:
    plan = plan_rollback(parse_plan(BASIC), "staging", INJECTION, INJECTION)
    action = plan.steps[0].action
    assert isinstance(action, ResolvedCommand)
    argv = [t.render({}) for t in action.argv]
    assert argv == ["deployctl", "--env", "staging", "--version", INJECTION, "--why", INJECTION]
    assert len(argv) == 7


def test_resolution_is_pure_and_deterministic() -> None:
    loaded = parse_plan(BASIC)
    a = plan_rollback(loaded, "staging", "v41", "errors")
    b = plan_rollback(loaded, "staging", "v41", "errors")
    assert a == b
    assert a.rollback_id == rollback_id_for(loaded.sha256, "staging", "v41")
    assert a.rollback_id != plan_rollback(loaded, "staging", "v40", "errors").rollback_id
    assert a.target == "http://127.0.0.1:5002"
    assert a.secret_names == ("HOOK_URL",)
    http = a.steps[1].action
    assert isinstance(http, ResolvedHttp)
    assert http.url.display() == "${HOOK_URL}"
    assert http.url.render({"HOOK_URL": "https://hooks/x"}) == "https://hooks/x"


def test_format_plan_quotes_each_argument_and_keeps_secrets_symbolic() -> None:
    text = format_plan(plan_rollback(parse_plan(BASIC), "staging", INJECTION, "why"))
    assert "'x; $(touch /tmp/pwned)'" in text
    assert "${HOOK_URL}" in text
    assert "[4] verify" in text
    assert "suite smoke" in text


@pytest.mark.parametrize(
    ("env", "to", "reason", "message"),
    [
        ("prod", "v1", "r", "no environment 'prod'"),
        ("staging", None, "r", "pass --to VERSION"),
        ("staging", "-rf", "r", "must not start with '-'"),
        ("staging", "", "r", "must be non-empty"),
        ("staging", "v1", "   ", "--reason is required"),
    ],
)
def test_resolution_usage_errors(env: str, to: str | None, reason: str, message: str) -> None:
    with pytest.raises(RollbackUsageError, match=message.replace("(", r"\(")):
        plan_rollback(parse_plan(BASIC), env, to, reason)


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        (_plan("  - name: a\n    kind: command\n    argv: [x]\n    shell: true\n"), 6, "shell"),
        (_plan("  - name: a\n    kind: command\n    argv: [x]\n    argv: [z]\n"), 6, "duplicate"),
        (_plan("  - name: a\n    kind: command\n    argv: [x, '{verison}']\n"), 5, "verison"),
        (_plan("  - name: a\n    kind: shell\n    argv: [x]\n"), 4, "kind"),
        (_plan("  - name: a\n    kind: wait\n"), 3, "exactly one"),
        (_plan("  - name: a\n    kind: wait\n    seconds: 9\n    timeout_s: 2\n"), 3, "exceeds"),
        (_plan("  - name: a\n    kind: command\n    argv: []\n"), 5, "at least 1"),
        (_plan("  - name: a\n    kind: command\n    argv: [x]\n    timeout_s: 0\n"), 6, "greater"),
        (_plan("  - name: a\n    kind: command\n    argv: [x, off]\n"), 5, "ambiguous"),
        (
            _plan(
                "  - name: a\n    kind: command\n    argv: !!python/object/apply:os.system [id]\n"
            ),
            5,
            "not allowed",
        ),
        (
            _plan(
                "  - name: a\n    kind: command\n    argv: [x]\n  - name: a\n    kind: command\n"
                "    argv: [z]\n"
            ),
            6,
            "duplicate step name",
        ),
        (
            _plan("  - name: a\n    kind: command\n    argv: [x]\n", "vars:\n  env: x\n"),
            3,
            "shadows a built-in",
        ),
        (_plan("  - name: a\n    kind: command\n    argv: [x, 1]\n"), 5, "quote the value"),
    ],
)
def test_plan_errors_name_the_line(text: str, line: int, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_plan(text, "plan.yaml")
    problems = info.value.problems
    assert any(p.line == line and fragment in str(p) for p in problems), [str(p) for p in problems]
    assert all(p.file == "plan.yaml" for p in problems)


SHIPPED = sorted(data_dir("rollback").glob("*.yaml"))


def test_shipped_plans_exist() -> None:
    names = {p.stem for p in SHIPPED}
    assert {
        "systemd",
        "kubernetes",
        "docker-compose",
        "nginx-blue-green",
        "local-mytrader",
    } <= names


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_plans_parse_and_resolve(path: Path) -> None:
    from mytrader_ops.rollback.model import load_plan

    loaded = load_plan(path)
    env = sorted(loaded.model.environments)[0] if loaded.model.environments else "staging"
    plan = plan_rollback(loaded, env, "v1", "example")
    assert any(s.kind == "verify" for s in plan.steps), "every shipped plan verifies"
    text = format_plan(plan)
    assert f"rollback id: {plan.rollback_id}" in text
    assert f"Steps ({len(plan.steps)}, run in order" in text
    for s in plan.steps:  # every step is shown, in order, with its bound
        assert f"[{s.index}] {s.kind:<7} {s.name}  (timeout {s.timeout_s:g} s" in text, s
    assert [s.index for s in plan.steps] == list(range(1, len(plan.steps) + 1))


@settings(max_examples=300, deadline=None)
@given(value=st.text(min_size=1).filter(lambda v: v.strip() and not v.startswith("-")))
def test_any_operator_value_reaches_the_program_verbatim(value: str) -> None:
    plan = plan_rollback(parse_plan(BASIC), "staging", value, value)
    action = plan.steps[0].action
    assert isinstance(action, ResolvedCommand)
    argv = [t.render({}) for t in action.argv]
    assert len(argv) == 7
    assert argv[4] == value
    assert argv[6] == value.strip()
    assert plan.secret_names == ("HOOK_URL",)  # a value never creates a secret reference
