"""Shared CLI plumbing: consoles and turning expected errors into clear messages with exit code 2."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.markup import escape

from agent.remediation.errors import RemediationError
from tools.errors import SourceError
from tools.redaction import redact
from tools.replay.loading import ScenarioError
from tools.settings import ConfigError

out = Console(highlight=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)


class UsageProblem(Exception):
    """Bad input from the user: reported as one clear message, never a traceback."""


def report(label: str, message: str, hints: list[str] | None = None) -> None:
    """One error on stderr, redacted: `label: message` and a `hint:` line per hint."""
    text = redact(message + "".join(f"\n  hint: {hint}" for hint in hints or []))
    err.print(f"[bold red]{escape(label)}:[/] {escape(text)}", markup=True)


@contextmanager
def friendly_errors() -> Iterator[None]:
    try:
        yield
    except (ScenarioError, UsageProblem, ConfigError) as exc:
        report("error", str(exc))
        raise typer.Exit(2) from None
    except RemediationError as exc:
        report("error", exc.message, exc.hints)
        raise typer.Exit(2) from None
    except SourceError as exc:
        report(f"error ({exc.kind})", exc.message, exc.hints)
        raise typer.Exit(2) from None
