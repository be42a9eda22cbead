"""Tools are plain typed functions: the docstring is the description, the typed parameters (after the
`Sources` context) are the input schema, a pydantic model is the output. Schemas are generated, never written.
"""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, get_type_hints

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from tools.datadog.protocol import LogSource, MetricSource
from tools.errors import ErrorKind, SourceError
from tools.kubernetes.protocol import ClusterReader
from tools.rabbitmq.protocol import BrokerReader
from tools.timerange import Clock


@dataclass
class Sources:
    """Everything a tool may read. The agent never knows whether these are live or replayed.

    `missing` names the sources this process has no configuration for ("datadog", "kubernetes", "rabbitmq"), each
    with the message saying what to set; their backends raise NotConfigured (`registry.TOOL_SOURCES` maps each tool
    to the source it reads)."""

    logs: LogSource
    metrics: MetricSource
    cluster: ClusterReader
    broker: BrokerReader
    clock: Clock
    label: str = "replay"
    extras: dict[str, Any] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)


class ToolError(BaseModel):
    """An expected failure, returned to the model so it can correct itself."""

    error: ErrorKind
    message: str
    hints: list[str] = []


MAX_ARG_CHARS = 2000
"""Any one text argument of a tool (a name, a query): a real one is far shorter, an oversized one is refused."""


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=MAX_ARG_CHARS)


@dataclass
class ToolOutcome:
    name: str
    args: dict[str, Any]
    ok: bool
    result: BaseModel
    ms: float

    def text(self) -> str:
        return self.result.model_dump_json(exclude_none=True)

    def data(self) -> dict[str, Any]:
        return json.loads(self.text())


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    function: Callable[..., BaseModel]
    args_model: type[BaseModel]
    result_model: type[BaseModel]

    @classmethod
    def from_function(cls, function: Callable[..., BaseModel]) -> Tool:
        signature = inspect.signature(function)
        hints = get_type_hints(function, include_extras=True)
        fields: dict[str, Any] = {}
        for index, (name, param) in enumerate(signature.parameters.items()):
            if index == 0:
                continue  # the Sources context
            default = ... if param.default is inspect.Parameter.empty else param.default
            fields[name] = (hints[name], default)
        args_model = create_model(f"{function.__name__}_args", __base__=_Args, **fields)
        description = inspect.cleandoc(function.__doc__ or "").strip()
        return cls(function.__name__, description, function, args_model, hints["return"])

    def parameters_schema(self) -> dict[str, Any]:
        schema = self.args_model.model_json_schema()
        schema.pop("title", None)
        for prop in schema.get("properties", {}).values():
            prop.pop("title", None)
        return schema

    def openai_schema(self) -> dict[str, Any]:
        return {"type": "function",
                "function": {"name": self.name, "description": self.description,
                             "parameters": self.parameters_schema()}}

    def run(self, sources: Sources, args: dict[str, Any]) -> ToolOutcome:
        began = time.perf_counter()
        try:
            validated = self.args_model.model_validate(args)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'arguments'}: {e['msg']}" for e in exc.errors())
            error = ToolError(error="bad_argument", message=f"invalid arguments for {self.name}: {problems}",
                              hints=[f"parameters: {json.dumps(self.parameters_schema()['properties'])}"])
            return ToolOutcome(self.name, args, False, error, _ms(began))
        try:
            result = self.function(sources, **validated.model_dump())
        except SourceError as exc:
            error = ToolError(error=exc.kind, message=exc.message, hints=exc.hints)
            return ToolOutcome(self.name, args, False, error, _ms(began))
        return ToolOutcome(self.name, validated.model_dump(), True, result, _ms(began))


def _ms(began: float) -> float:
    return round((time.perf_counter() - began) * 1000, 2)


class Toolbox:
    """The tools an agent may call, by name."""

    def __init__(self, tools: list[Tool]) -> None:
        self.tools = {tool.name: tool for tool in tools}

    def __contains__(self, name: str) -> bool:
        return name in self.tools

    def names(self) -> list[str]:
        return list(self.tools)

    def schemas(self) -> list[dict[str, Any]]:
        return [tool.openai_schema() for tool in self.tools.values()]

    def call(self, sources: Sources, name: str, args: dict[str, Any]) -> ToolOutcome:
        tool = self.tools.get(name)
        if tool is None:
            error = ToolError(error="bad_argument", message=f"there is no tool named {name!r}",
                              hints=[f"available tools: {', '.join(self.tools)}"])
            return ToolOutcome(name, args, False, error, 0.0)
        return tool.run(sources, args)
