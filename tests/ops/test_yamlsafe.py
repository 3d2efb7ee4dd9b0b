"""Checklist rows C1-C3: unsafe tags, alias bombs, duplicate keys, YAML 1.1 surprises."""

from __future__ import annotations

from pathlib import Path

import pytest

from mytrader_ops.errors import ConfigError
from mytrader_ops.yamlsafe import MAX_BYTES, parse_yaml, read_yaml

ALIAS_BOMB = """a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        # C1: unsafe tags, anywhere
        ("!!python/object/apply:os.system ['touch /tmp/x']\n", 1, "not allowed"),
        ("a:\n  b: !!python/object/apply:os.system ['id']\n", 2, "a.b: tag"),
        ("a: !!python/name:os.system\n", 1, "not allowed"),
        ("a: !custom 1\n", 1, "not allowed"),
        # C2: alias bomb rejected before expansion
        (ALIAS_BOMB, None, "aliases"),
        # C3: duplicate keys, the later one would silently win in PyYAML
        ("run: echo safe\nrun: rm -rf /\n", 2, "duplicate key 'run' (first defined on line 1)"),
        ("a:\n  - x: 1\n    x: 2\n", 3, "a[0].x: duplicate key"),
        # C3: YAML 1.1 booleans are ambiguous
        ("enabled: off\n", 1, "enabled: ambiguous value 'off'"),
        ("l:\n  - yes\n", 2, "l[0]: ambiguous value 'yes'"),
        ("<<: {a: 1}\n", 1, "merge keys"),
        ("a: [\n", None, "YAML error"),
        ("--- 1\n--- 2\n", None, "one YAML document"),
    ],
)
def test_rejects_with_line_and_path(text: str, line: int | None, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_yaml(text, "cfg.yaml")
    message = str(info.value)
    assert fragment in message
    if line is not None:
        assert message.startswith(f"cfg.yaml:{line}:")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: 1e3\n", {"a": 1000.0}),  # YAML 1.2 float, not PyYAML's string
        ("a: 1.10\n", {"a": 1.1}),  # a number: a str field rejects it (see test_config)
        ("a: 'off'\n", {"a": "off"}),
        ("a: true\nb: False\n", {"a": True, "b": False}),
        ("a: ~\nb:\n", {"a": None, "b": None}),
        ("a: 0x10\nb: -3\n", {"a": 16, "b": -3}),
        ("d: 2026-12-31\n", {"d": "2026-12-31"}),
        ("a: &x [1]\nb: *x\n", {"a": [1], "b": [1]}),
    ],
)
def test_resolves_core_schema(text: str, expected: object) -> None:
    assert parse_yaml(text).data == expected


def test_oversized_file_rejected_before_parsing(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("a: " + "x" * (MAX_BYTES + 10) + "\n")
    with pytest.raises(ConfigError, match="larger than"):
        read_yaml(big)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        read_yaml(tmp_path / "nope.yaml")


def test_lines_are_recorded_per_key_path() -> None:
    doc = parse_yaml("a:\n  b:\n    - c: 1\n")
    assert doc.line_of(("a", "b", 0, "c")) == 3
    assert doc.line_of(("a", "b", 0, "c", "unknown")) == 3
