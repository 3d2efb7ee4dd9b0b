"""Templated text in rollback plans: `{name}` values and `${ENV_VAR}` secrets, never a shell.

A template is split once into parts: literal text, `{name}` placeholders and `${NAME}`
secret references. Substituting a value replaces a placeholder by that value *as data*:
the value is never re-parsed, so `x; $(touch /tmp/pwned)` or `${HOME}` inside `--reason`
stays exactly that text (checklist C5). Secret references written in the plan file stay
symbolic (`SecretRef`) until a step runs; dry-runs and the audit log show `${NAME}`.

Syntax:
    {name}       a plan variable or a built-in (env, to_version, reason, rollback_id, target,
                 plan, python = the interpreter running mytrader-ops)
    ${NAME}      an environment variable holding a secret (webhook URL, token)
    {{name}}     a literal `{name}` (rarely needed; other braces, e.g. JSON, are literal)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

NAME = r"[a-z_][a-z0-9_]*"
_TOKEN = re.compile(
    r"\{\{(?P<escaped>" + NAME + r")\}\}"
    r"|\$\{(?P<secret>[A-Za-z_][A-Za-z0-9_]*)\}"
    r"|\{(?P<var>" + NAME + r")\}"
)


@dataclass(frozen=True, slots=True)
class SecretRef:
    """A `${NAME}` reference; its value is read from the environment only when a step runs."""

    env_var: str

    def __str__(self) -> str:
        return f"${{{self.env_var}}}"


@dataclass(frozen=True, slots=True)
class Var:
    """A `{name}` placeholder, before substitution."""

    name: str


Part = str | SecretRef
RawPart = str | SecretRef | Var


def parse_template(text: str) -> tuple[RawPart, ...]:
    """Split text into literal, placeholder and secret parts (pure, never fails)."""
    parts: list[RawPart] = []
    pos = 0
    for match in _TOKEN.finditer(text):
        if match.start() > pos:
            parts.append(text[pos : match.start()])
        if match.group("escaped") is not None:
            parts.append("{" + match.group("escaped") + "}")
        elif match.group("secret") is not None:
            parts.append(SecretRef(match.group("secret")))
        else:
            parts.append(Var(match.group("var")))
        pos = match.end()
    if pos < len(text):
        parts.append(text[pos:])
    return _merge_literals(parts)


def _merge_literals(parts: list[RawPart]) -> tuple[RawPart, ...]:
    out: list[RawPart] = []
    for part in parts:
        if isinstance(part, str) and out and isinstance(out[-1], str):
            out[-1] = out[-1] + part
        elif part != "":
            out.append(part)
    return tuple(out)


def placeholders(text: str) -> list[str]:
    """Names of the `{name}` placeholders in text, in order."""
    return [p.name for p in parse_template(text) if isinstance(p, Var)]


def secret_refs(text: str) -> list[str]:
    """Environment variable names of the `${NAME}` references in text."""
    return [p.env_var for p in parse_template(text) if isinstance(p, SecretRef)]


@dataclass(frozen=True, slots=True)
class Text:
    """A resolved template: literal text and secret references, ready to run or to display."""

    parts: tuple[Part, ...]

    @classmethod
    def literal(cls, value: str) -> Text:
        return cls((value,) if value else ())

    def display(self) -> str:
        """The text with secrets shown as `${NAME}` (safe to print and to log)."""
        return "".join(str(p) for p in self.parts)

    def render(self, secrets: Mapping[str, str]) -> str:
        """The text with secret values filled in (only for the program or request itself)."""
        return "".join(secrets[p.env_var] if isinstance(p, SecretRef) else p for p in self.parts)

    @property
    def secret_names(self) -> tuple[str, ...]:
        return tuple(p.env_var for p in self.parts if isinstance(p, SecretRef))


def substitute(text: str, values: Mapping[str, Text]) -> Text:
    """Replace every placeholder by its value, as data. Raises KeyError for an unknown name."""
    out: list[Part] = []
    for part in parse_template(text):
        if isinstance(part, Var):
            out.extend(values[part.name].parts)
        else:
            out.append(part)
    merged: list[Part] = []
    for part in out:
        if isinstance(part, str) and merged and isinstance(merged[-1], str):
            merged[-1] = merged[-1] + part
        elif part != "":
            merged.append(part)
    return Text(tuple(merged))
