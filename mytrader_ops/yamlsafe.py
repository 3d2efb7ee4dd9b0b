"""A defensive YAML reader for configuration files.

PyYAML's safe loader still keeps the last of duplicate keys silently, resolves YAML 1.1
booleans (`off` -> False), keeps `1e3` as a string and expands alias bombs that explode
when serialised (reliability checklist C1-C3). This reader composes the node graph with
the safe loader, then builds plain Python values itself:

- files above `MAX_BYTES` are refused before parsing;
- only the core tags (map, seq, str, int, float, bool, null) are accepted, any other tag
  (`!!python/object/apply`, `!custom`) is an error;
- more than `MAX_ALIASES` aliases, or an expanded document above `MAX_NODES` nodes, is
  refused before expansion;
- duplicate keys and merge keys (`<<`) are errors;
- plain scalars resolve with the YAML 1.2 core schema; YAML 1.1 booleans (`yes`, `no`,
  `on`, `off`, `y`, `n`) are rejected as ambiguous: quote them or write true/false.

Every value's key path is mapped to its line so later validation errors can name it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

if TYPE_CHECKING:
    from pydantic import ValidationError

from mytrader_ops.errors import ConfigError, ConfigProblem

MAX_BYTES = 256 * 1024
MAX_ALIASES = 32
MAX_NODES = 20_000
MAX_DEPTH = 32

KeyPath = tuple[str | int, ...]
YamlValue = None | bool | int | float | str | list["YamlValue"] | dict[str, "YamlValue"]

_TAG = "tag:yaml.org,2002:"
_CORE_TAGS = {f"{_TAG}{t}" for t in ("map", "seq", "str", "int", "float", "bool", "null")}
_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_YAML11_BOOL = re.compile(r"^(?:y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF)$")
_INT = re.compile(r"^[-+]?[0-9]+$")
_INT_OTHER = re.compile(r"^(?:0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$")
_INF = re.compile(r"^[-+]?\.(?:inf|Inf|INF)$")
_NAN = re.compile(r"^\.(?:nan|NaN|NAN)$")


def format_path(path: KeyPath) -> str:
    """`checks[3].path` style rendering of a key path."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


@dataclass(frozen=True, slots=True)
class YamlDocument:
    """A parsed document: plain data plus the line (1-based) of every key path."""

    file: str
    data: YamlValue
    lines: dict[KeyPath, int]

    def line_of(self, path: KeyPath) -> int | None:
        """The line of the longest known prefix of `path` (union tags in the path are skipped)."""
        best: KeyPath = ()
        for part in path:
            candidate = (*best, part)
            if candidate in self.lines:
                best = candidate
        return self.lines.get(best)


class _Builder:
    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[ConfigProblem] = []
        self.lines: dict[KeyPath, int] = {}
        self.aliases = 0
        self.nodes = 0

    def problem(self, node: yaml.Node, path: KeyPath, message: str) -> None:
        self.problems.append(
            ConfigProblem(self.file, node.start_mark.line + 1, format_path(path), message)
        )

    def build(self, node: yaml.Node, path: KeyPath, depth: int) -> YamlValue:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _TooBig(f"document expands to more than {MAX_NODES} nodes (alias bomb?)")
        if depth > MAX_DEPTH:
            raise _TooBig(f"nesting deeper than {MAX_DEPTH} levels")
        self.lines.setdefault(path, node.start_mark.line + 1)
        if not isinstance(node, yaml.ScalarNode) and node.tag not in _CORE_TAGS:
            self.problem(node, path, f"tag {node.tag!r} is not allowed")
            return None
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path, depth)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(child, (*path, i), depth + 1) for i, child in enumerate(node.value)]
        assert isinstance(node, yaml.ScalarNode)
        return self._scalar(node, path)

    def _mapping(self, node: yaml.MappingNode, path: KeyPath, depth: int) -> YamlValue:
        out: dict[str, YamlValue] = {}
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == f"{_TAG}merge":
                self.problem(key_node, path, "merge keys (<<) are not supported")
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.problem(key_node, path, "mapping keys must be plain strings")
                continue
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in seen:
                self.problem(
                    key_node,
                    (*path, key),
                    f"duplicate key {key!r} (first defined on line {seen[key]})",
                )
                continue
            seen[key] = line
            self.lines[(*path, key)] = line
            out[key] = self.build(value_node, (*path, key), depth + 1)
        return out

    def _scalar(self, node: yaml.ScalarNode, path: KeyPath) -> YamlValue:
        value = str(node.value)
        if node.tag not in _implicit_tags():
            self.problem(node, path, f"tag {node.tag!r} is not allowed")
            return None
        if node.style is not None:  # quoted or block scalar: always text
            return value
        return self._resolve_plain(node, path, value)

    def _resolve_plain(self, node: yaml.ScalarNode, path: KeyPath, value: str) -> YamlValue:
        if _NULL.match(value):
            return None
        if _BOOL.match(value):
            return value.lower() == "true"
        if _YAML11_BOOL.match(value):
            self.problem(
                node,
                path,
                f"ambiguous value {value!r} (YAML 1.1 reads it as a boolean): "
                f"write true/false, or quote it ('{value}') if you mean text",
            )
            return None
        if _INT.match(value):
            return int(value)
        if _INT_OTHER.match(value):
            return int(value, 0)
        if _FLOAT.match(value):
            return float(value)
        if _INF.match(value):
            return -math.inf if value.startswith("-") else math.inf
        if _NAN.match(value):
            return math.nan
        return value


def _implicit_tags() -> set[str]:
    # Tags PyYAML's safe resolver assigns implicitly to plain scalars; we re-resolve them.
    return {f"{_TAG}{t}" for t in ("bool", "int", "float", "null", "str", "timestamp", "value")}


class _TooBig(Exception):
    pass


class _CountingLoader(yaml.SafeLoader):
    """Safe loader that counts aliases while composing, before anything is expanded."""

    max_aliases = MAX_ALIASES

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.alias_count = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            self.alias_count += 1
            if self.alias_count > self.max_aliases:
                event = self.peek_event()  # type: ignore[no-untyped-call]
                raise yaml.composer.ComposerError(
                    None, None, f"more than {self.max_aliases} aliases", event.start_mark
                )
        return super().compose_node(parent, index)


def _iter_documents(loader: _CountingLoader) -> Iterator[yaml.Node]:
    while loader.check_node():
        node = loader.get_node()
        if node is not None:
            yield node


def parse_yaml(text: str, file: str = "<string>") -> YamlDocument:
    """Parse one YAML document defensively; raise ConfigError listing every problem."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise ConfigError([ConfigProblem(file, None, "", f"file larger than {MAX_BYTES} bytes")])
    loader = _CountingLoader(text)
    try:
        documents = list(_iter_documents(loader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(
            [ConfigProblem(file, line, "", f"YAML error: {exc.problem or exc.context}")]
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError([ConfigProblem(file, None, "", f"YAML error: {exc}")]) from None
    finally:
        loader.dispose()
    if len(documents) != 1:
        raise ConfigError(
            [ConfigProblem(file, None, "", f"expected one YAML document, found {len(documents)}")]
        )
    builder = _Builder(file)
    try:
        data = builder.build(documents[0], (), 0)
    except _TooBig as exc:
        raise ConfigError([ConfigProblem(file, None, "", str(exc))]) from None
    except RecursionError:
        raise ConfigError([ConfigProblem(file, None, "", "document nests too deeply")]) from None
    if builder.problems:
        raise ConfigError(builder.problems)
    return YamlDocument(file, data, builder.lines)


def read_text(path: Path) -> str:
    """Read a YAML file's text, refusing oversized files before reading them whole."""
    name = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise ConfigError(
                [ConfigProblem(name, None, "", f"file larger than {MAX_BYTES} bytes")]
            )
        with path.open("rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigError([ConfigProblem(name, None, "", f"cannot read: {exc.strerror}")]) from None
    if len(raw) > MAX_BYTES:  # it grew between stat and read
        raise ConfigError([ConfigProblem(name, None, "", f"file larger than {MAX_BYTES} bytes")])
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError([ConfigProblem(name, None, "", "not UTF-8 text")]) from None


def read_yaml(path: Path) -> YamlDocument:
    """Read and parse a file, refusing oversized files before reading them whole."""
    return parse_yaml(read_text(path), str(path))


def validation_problems(
    doc: YamlDocument, exc: ValidationError, union_tags: frozenset[str]
) -> list[ConfigProblem]:
    """pydantic's errors as problems with the file, line and key path of each.

    Union tags pydantic inserts into locations (``checks, 3, http, ...``) are dropped, and a bad
    or missing tag is reported on the ``kind`` key, naming the kinds there are.
    """
    problems = []
    for err in exc.errors(include_url=False, include_input=False):
        loc: KeyPath = tuple(err["loc"])
        path = tuple(
            part
            for i, part in enumerate(loc)
            if not (part in union_tags and i > 0 and isinstance(loc[i - 1], int))
        )
        message = err["msg"]
        if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
            path = (*path, "kind")
            message += f" (kinds: {', '.join(sorted(union_tags))})"
        if err["type"] == "string_type":
            message += " (quote the value if it is text, e.g. '1.10')"
        problems.append(ConfigProblem(doc.file, doc.line_of(path), format_path(path), message))
    return problems
