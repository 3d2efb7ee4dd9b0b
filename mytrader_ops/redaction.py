"""Secrets: a value type that never prints itself, and a redactor for every output.

Every artefact (terminal, reports, stored runs) passes through `Redactor.redact` as
its last step, so a secret that leaks into an error message or URL is still masked.
"""

from __future__ import annotations

import os
import re
from typing import Any

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
_MIN_SECRET_LEN = 4


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


class Redactor:
    """Masks known secret values plus URL userinfo, token query parameters and bearer tokens."""

    def __init__(self, secrets: list[str] | None = None) -> None:
        self._secrets: set[str] = set()
        for s in secrets or []:
            self.add(s)

    def add(self, value: str | None) -> None:
        """Register a value that must never appear in output (e.g. a password or token)."""
        if value and len(value) >= _MIN_SECRET_LEN:
            self._secrets.add(value)

    def add_secret(self, secret: Secret | None) -> None:
        if secret is not None:
            self.add(secret.reveal())

    def redact(self, text: str) -> str:
        for value in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(value, MASK)
        text = _URL_USERINFO.sub(lambda m: f"{m.group('scheme')}{MASK}@", text)
        text = _QUERY_SECRET.sub(lambda m: f"{m.group('key')}{MASK}", text)
        return _BEARER.sub(lambda m: f"{m.group('key')}{MASK}", text)
