"""`sre-agent schema verdict`: the JSON schemas of the structured outputs."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from pydantic import BaseModel

from agent.cli.common import UsageProblem, friendly_errors
from agent.drafts import VerdictDraft
from agent.verdict import Verdict

SCHEMAS: dict[str, type[BaseModel]] = {"verdict": Verdict, "verdict-draft": VerdictDraft}


def schema(name: Annotated[str, typer.Argument(help=f"one of: {', '.join(SCHEMAS)}")] = "verdict") -> None:
    """Print a JSON schema."""
    with friendly_errors():
        if name not in SCHEMAS:
            raise UsageProblem(f"no schema {name!r}; choose one of: {', '.join(SCHEMAS)}")
    print(json.dumps(SCHEMAS[name].model_json_schema(), indent=2, sort_keys=True))
