"""Shared CLI plumbing: consoles and turning expected errors into clear messages with exit code 2."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.markup import escape

from agent.remediation.errors import RemediationError
from tools.errors import SourceError
from tools.replay.loading import ScenarioError

out = Console(highlight=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)


class UsageProblem(Exception):
    """Bad input from the user: reported as one clear message, never a traceback."""


@contextmanager
def friendly_errors() -> Iterator[None]:
    try:
        yield
    except (ScenarioError, UsageProblem) as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", markup=True)
        raise typer.Exit(2) from None
    except RemediationError as exc:
        hints = escape("".join(f"\n  hint: {hint}" for hint in exc.hints))
        err.print(f"[bold red]error:[/] {escape(exc.message)}{hints}", markup=True)
        raise typer.Exit(2) from None
    except SourceError as exc:
        hints = escape("".join(f"\n  hint: {hint}" for hint in exc.hints))
        err.print(f"[bold red]error ({exc.kind}):[/] {escape(exc.message)}{hints}", markup=True)
        raise typer.Exit(2) from None
