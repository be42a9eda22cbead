"""Datadog log search syntax, parsed into a predicate so the replay backend answers the same queries as live.

Supported: `key:value` facets and tags, `@attr.path:value` attributes, free text, quoted phrases, `*` wildcards,
`-term` / `NOT term` negation, `AND` / `OR`, parentheses, `key:(a OR b)`, numeric `@attr:>N`.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tools.datadog.protocol import LogRecord
from tools.errors import BadQuery

Predicate = Callable[[LogRecord], bool]

_TOKEN = re.compile(r'\s*(?:(?P<lp>\()|(?P<rp>\))|(?P<quoted>"(?:[^"\\]|\\.)*")|(?P<word>[^\s()"]+(?:"[^"]*")?))')
_EXAMPLE = "e.g. 'service:billing-api kube_namespace:payments status:error' or '-service:web \"timed out\"'"


@dataclass
class _Token:
    kind: str
    text: str


def _tokenize(query: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(query):
        if query[pos:].strip() == "":
            break
        match = _TOKEN.match(query, pos)
        if not match or match.end() == pos:
            raise BadQuery(f"cannot read log query near {query[pos:pos + 20]!r}", hints=[_EXAMPLE])
        pos = match.end()
        if match.group("lp"):
            tokens.append(_Token("(", "("))
        elif match.group("rp"):
            tokens.append(_Token(")", ")"))
        elif match.group("quoted"):
            tokens.append(_Token("text", match.group("quoted")[1:-1]))
        else:
            tokens.append(_Token("word", match.group("word")))
    return tokens


class _Parser:
    def __init__(self, query: str) -> None:
        self.query = query
        self.tokens = _tokenize(query)
        self.pos = 0

    def parse(self) -> Predicate:
        if not self.tokens:
            return lambda record: True
        predicate = self._or()
        if self.pos != len(self.tokens):
            raise BadQuery(f"unexpected {self.tokens[self.pos].text!r} in log query {self.query!r}", hints=[_EXAMPLE])
        return predicate

    def _peek(self) -> _Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _or(self) -> Predicate:
        parts = [self._and()]
        while (token := self._peek()) and token.kind == "word" and token.text == "OR":
            self.pos += 1
            parts.append(self._and())
        if len(parts) == 1:
            return parts[0]

        def either(record: LogRecord) -> bool:  # a loop: faster than any() over a generator, per record
            for part in parts:  # noqa: SIM110
                if part(record):
                    return True
            return False

        return either

    def _and(self) -> Predicate:
        parts = [self._unary()]
        while (token := self._peek()) and token.kind != ")" and not (token.kind == "word" and token.text == "OR"):
            if token.kind == "word" and token.text == "AND":
                self.pos += 1
            parts.append(self._unary())
        if len(parts) == 1:
            return parts[0]

        def every(record: LogRecord) -> bool:  # a loop: faster than all() over a generator, per record
            for part in parts:  # noqa: SIM110
                if not part(record):
                    return False
            return True

        return every

    def _unary(self) -> Predicate:
        token = self._peek()
        if token is None:
            raise BadQuery(f"log query {self.query!r} ends where a term was expected", hints=[_EXAMPLE])
        if token.kind == "word" and token.text == "NOT":
            self.pos += 1
            inner = self._unary()
            return lambda record: not inner(record)
        if token.kind == "word" and token.text.startswith("-") and len(token.text) > 1:
            self.tokens[self.pos] = _Token("word", token.text[1:])
            inner = self._unary()
            return lambda record: not inner(record)
        return self._atom()

    def _atom(self) -> Predicate:
        token = self._peek()
        assert token is not None
        if token.kind == "(":
            self.pos += 1
            inner = self._or()
            if (closing := self._peek()) is None or closing.kind != ")":
                raise BadQuery(f"unbalanced parentheses in log query {self.query!r}", hints=[_EXAMPLE])
            self.pos += 1
            return inner
        if token.kind == ")":
            raise BadQuery(f"unbalanced parentheses in log query {self.query!r}", hints=[_EXAMPLE])
        self.pos += 1
        if token.kind == "text":
            return _text_predicate(token.text)
        key, sep, value = token.text.partition(":")
        if not sep or not key:
            return _text_predicate(token.text)
        if value == "" and (nxt := self._peek()) is not None and nxt.kind == "(":
            self.pos += 1
            alternatives = [_field_predicate(key, v) for v in self._value_group()]
            return lambda record: any(p(record) for p in alternatives)
        if value == "" and (nxt := self._peek()) is not None and nxt.kind == "text":
            self.pos += 1
            value = nxt.text
        if value == "":
            raise BadQuery(f"facet {key!r} has no value in log query {self.query!r}", hints=[_EXAMPLE])
        return _field_predicate(key, value.strip('"'))

    def _value_group(self) -> list[str]:
        values: list[str] = []
        while (token := self._peek()) is not None and token.kind != ")":
            self.pos += 1
            if not (token.kind == "word" and token.text in ("OR", "AND")):
                values.append(token.text)
        if token is None or not values:
            raise BadQuery(f"unbalanced or empty value group in log query {self.query!r}", hints=[_EXAMPLE])
        self.pos += 1
        return values


def _text_predicate(text: str) -> Predicate:
    pattern = text.lower()
    if "*" in pattern or "?" in pattern:
        compiled = re.compile(fnmatch.translate(f"*{pattern}*"))
        return lambda record: compiled.match(record.message.lower()) is not None
    return lambda record: pattern in record.message.lower()


_COMPARISON = re.compile(r"(>=|<=|>|<)(-?\d+(?:\.\d+)?)")
_COMPARE = {">": float.__gt__, "<": float.__lt__, ">=": float.__ge__, "<=": float.__le__}


def _value_matcher(expected: str) -> Callable[[Any], bool]:
    """A test of a facet's value against `expected` (a number comparison, a glob, or a plain value; case-
    insensitive), compiled once per query term rather than once per record."""
    comparison = _COMPARISON.fullmatch(expected)
    if comparison:
        compare, bound = _COMPARE[comparison.group(1)], float(comparison.group(2))

        def numeric(actual: Any) -> bool:
            if isinstance(actual, list):
                return any(numeric(item) for item in actual)
            try:
                return actual is not None and bool(compare(float(actual), bound))
            except (TypeError, ValueError):
                return False

        return numeric
    lowered = expected.lower()
    glob = re.compile(fnmatch.translate(lowered)) if any(c in lowered for c in "*?[") else None

    def matches(actual: Any) -> bool:
        if actual is None:
            return False
        if isinstance(actual, list):
            return any(matches(item) for item in actual)
        text = str(actual).lower()
        return glob.match(text) is not None if glob else text == lowered

    return matches


def _attribute(record: LogRecord, path: str) -> Any:
    node: Any = record.attributes
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _field_predicate(key: str, value: str) -> Predicate:
    if key == "message":
        return _text_predicate(value)
    matches = _value_matcher(value)
    if key.startswith("@"):
        path = key[1:]
        return lambda record: matches(_attribute(record, path))
    if key in ("service", "status", "host"):
        return lambda record: matches(getattr(record, key))
    prefix = key + ":"
    return lambda record: any(matches(tag[len(prefix):]) for tag in record.tags if tag.startswith(prefix))


def parse_log_query(query: str) -> Predicate:
    """Parse a Datadog log query into a predicate over records; raise BadQuery with a reason if malformed."""
    return _Parser(query).parse()
