"""Secrets: a value type that never prints itself, and a redactor for every output.

Values are redacted, never rendered text: a secret is masked in each free-text value (a
summary, an evidence line, an error message, a URL) *before* the value is serialised, so
the masking cannot corrupt a document's structure (a key, a status, a tag) and escaping
cannot hide a secret from it. Besides the raw value, the forms a secret takes inside other
text are masked too: JSON- and Python-escaped, HTML-escaped, percent-encoded.

A username is not a secret; passwords, tokens, API keys and webhook URLs are.
"""

from __future__ import annotations

import dataclasses
import html
import json
import os
import re
from enum import Enum
from typing import Any, TypeVar
from urllib.parse import quote, quote_plus

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

MASK = "***"
ENV_REF = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")
_URL_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@")
_QUERY_SECRET = re.compile(
    r"(?i)(?P<key>[?&](?:access_token|token|password|passwd|secret|api_key|apikey|key)=)[^&#\s\"']+"
)
_BEARER = re.compile(r"(?i)(?P<key>bearer\s+)[A-Za-z0-9._~+/=-]+")
MIN_SECRET_LEN = 4
T = TypeVar("T")


class Secret:
    """A credential given as `${ENV_VAR}`; resolved from the environment, never printed."""

    __slots__ = ("_value", "env_var")

    def __init__(self, env_var: str, value: str | None) -> None:
        self.env_var = env_var
        self._value = value

    @classmethod
    def from_reference(cls, ref: str) -> Secret:
        match = ENV_REF.match(ref)
        if match is None:
            raise ValueError("credentials must be an ${ENV_VAR} reference, not a literal value")
        name = match.group(1)
        return cls(name, os.environ.get(name) or None)

    def reveal(self) -> str | None:
        """The secret value, or None when the variable is unset or empty."""
        return self._value

    @property
    def present(self) -> bool:
        return self._value is not None

    def __repr__(self) -> str:
        return f"Secret(${{{self.env_var}}}={MASK})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other.env_var == self.env_var

    def __hash__(self) -> int:
        return hash(self.env_var)

    @classmethod
    def __get_pydantic_core_schema__(
        cls, _source: Any, _handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        def validate(value: object) -> Secret:
            if isinstance(value, Secret):
                return value
            if not isinstance(value, str):
                raise ValueError("credentials must be an ${ENV_VAR} reference string")
            return cls.from_reference(value)

        return core_schema.no_info_plain_validator_function(
            validate,
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda s: f"${{{s.env_var}}}"
            ),
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, _schema: core_schema.CoreSchema, _handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {
            "type": "string",
            "pattern": ENV_REF.pattern,
            "description": "An ${ENV_VAR} reference; literal credentials are rejected.",
        }


def escaped_forms(value: str) -> set[str]:
    """The value and the forms it takes inside JSON, Python reprs, HTML/XML and URLs."""
    forms = {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
    forms |= {repr(value)[1:-1], html.escape(value), html.escape(value, quote=False)}
    forms |= {quote(value, safe=""), quote(value), quote_plus(value)}
    forms.add(html.escape(json.dumps(value)[1:-1]))
    return forms


class Redactor:
    """Masks known secret values plus URL userinfo, token query parameters and bearer tokens."""

    def __init__(self, secrets: list[str] | None = None) -> None:
        self._secrets: set[str] = set()
        for s in secrets or []:
            self.add(s)

    def add(self, value: str | None) -> None:
        """Register a value that must never appear in output (e.g. a password or token).

        Values shorter than MIN_SECRET_LEN cannot be masked without masking ordinary text;
        callers refuse such credentials up front (see validate.plan).
        """
        if value and len(value) >= MIN_SECRET_LEN:
            self._secrets |= {f for f in escaped_forms(value) if len(f) >= MIN_SECRET_LEN}

    def add_secret(self, secret: Secret | None) -> None:
        if secret is not None:
            self.add(secret.reveal())

    def redact(self, text: str) -> str:
        """Mask secrets in one free-text value (never in a serialised document)."""
        for value in sorted(self._secrets, key=len, reverse=True):
            if value in text:
                text = text.replace(value, MASK)
        text = _URL_USERINFO.sub(lambda m: f"{m.group('scheme')}{MASK}@", text)
        text = _QUERY_SECRET.sub(lambda m: f"{m.group('key')}{MASK}", text)
        return _BEARER.sub(lambda m: f"{m.group('key')}{MASK}", text)

    def redact_json(self, value: Any, keep: frozenset[str], free_keys: frozenset[str]) -> Any:
        """A JSON-like document with every free-text string value masked.

        Keys are structure and kept, and so are the values under a key in `keep` (schema
        names, identifiers, states); the keys of objects held under a name in `free_keys`
        are free text (e.g. error messages counted by kind) and are masked.
        """
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for k, v in value.items():
                if k in keep:
                    out[k] = v
                elif k in free_keys and isinstance(v, dict):
                    out[k] = self._merge_keys(v)
                else:
                    out[k] = self.redact_json(v, keep, free_keys)
            return out
        if isinstance(value, list | tuple):
            return [self.redact_json(v, keep, free_keys) for v in value]
        return value

    def _merge_keys(self, counts: dict[str, Any]) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for k, v in counts.items():
            key = self.redact(k)
            merged[key] = merged[key] + v if key in merged else v
        return merged

    def redact_fields(self, value: T, keep: frozenset[str], free_keys: frozenset[str]) -> T:
        """A copy of a tree of frozen dataclasses with every free-text string masked.

        Enums and the fields named in `keep` (identifiers, units, timestamps) are structure
        and stay as they are; the keys of dicts named in `free_keys` are free text (e.g. error
        messages counted by kind) and are masked, their counts merged.
        """
        return self._fields(value, keep, free_keys)  # type: ignore[no-any-return]

    def _fields(self, value: Any, keep: frozenset[str], free_keys: frozenset[str]) -> Any:
        if isinstance(value, Enum):
            return value
        if isinstance(value, str):
            return self.redact(value)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            changes = {}
            for f in dataclasses.fields(value):
                if f.name in keep:
                    continue
                old = getattr(value, f.name)
                if f.name in free_keys and isinstance(old, dict):
                    changes[f.name] = self._merge_keys(old)
                    continue
                new = self._fields(old, keep, free_keys)
                if new is not old:
                    changes[f.name] = new
            return dataclasses.replace(value, **changes) if changes else value
        if isinstance(value, dict):
            return {k: self._fields(v, keep, free_keys) for k, v in value.items()}
        if isinstance(value, tuple):
            return tuple(self._fields(v, keep, free_keys) for v in value)
        if isinstance(value, list):
            return [self._fields(v, keep, free_keys) for v in value]
        return value
