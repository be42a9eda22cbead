"""`sre-agent watch`: sweep every interval for silent failures (no LLM); a new anomaly opens an investigation and
notifies. On a replayed world the clock is simulated: `--from`/`--until` replay a timeline in seconds."""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from agent.cli.ask_cmd import ContextOpt, LiveOpt, ModelOpt, ScenarioOpt, load_model, open_sources
from agent.cli.common import UsageProblem, err, friendly_errors, out
from tools.errors import BadArgument
from tools.timerange import parse_time

if TYPE_CHECKING:
    from agent.watch.notify import WebhookNotifier
    from agent.watch.sweep import Anomaly
    from agent.watch.watcher import Notice
    from tools.toolkit import Sources

ROUTING_KEY_ENV = "SRE_AGENT_PAGERDUTY_ROUTING_KEY"


def _hhmm(moment: datetime) -> str:
    return moment.strftime("%H:%M:%SZ")


def _time(text: str | None, option: str, now: datetime) -> datetime | None:
    if text is None:
        return None
    try:
        return parse_time(text, now)
    except BadArgument as exc:
        raise UsageProblem(f"{option}: {exc.message}") from None


def _print(notice: Notice, as_json: bool) -> None:
    if as_json:
        out.print(json.dumps(notice.to_dict()), markup=False, highlight=False, soft_wrap=True)
        return
    label = "[bold red]RAISED[/]" if notice.event == "raised" else "[green]resolved[/]"
    waited = notice.at - notice.first_seen
    extra = f" (first seen {_hhmm(notice.first_seen)})" if notice.event == "raised" and waited else ""
    out.print(f"{_hhmm(notice.at)} {label} {escape(notice.anomaly.key)}: {escape(notice.anomaly.summary)}{extra}",
              soft_wrap=True)
    if notice.verdict:
        cause = notice.verdict.get("root_cause") or {}
        component = cause.get("component") or {}
        line = f"{notice.verdict.get('status')}: {notice.verdict.get('summary')}"
        if component:
            line += f" [{cause.get('category')} {component.get('namespace')}/{component.get('name')}]"
        out.print(f"    {escape(line)}", soft_wrap=True)
    if notice.error:
        out.print(f"    [red]{escape(notice.error)}[/]")


def _notifier(url: str | None, fmt: str) -> WebhookNotifier | None:
    if url is None:
        return None
    from agent.watch.notify import WebhookNotifier

    try:
        return WebhookNotifier(url, fmt="pagerduty" if fmt == "pagerduty" else "json",
                               routing_key=os.environ.get(ROUTING_KEY_ENV))
    except ValueError as exc:
        raise UsageProblem(str(exc)) from None


def _investigator(model_spec: str | None, sources: Sources) -> Any:
    model = load_model(model_spec)

    def investigate(anomaly: Anomaly) -> dict[str, Any]:
        from agent.run import run_investigation

        return run_investigation(anomaly.question(), model, sources).verdict.model_dump(mode="json")

    return investigate


def _replay(scenario: str, start_text: str | None, until_text: str | None,
            interval: timedelta) -> tuple[Sources, datetime, datetime]:
    from tools.replay import replay_sources
    from tools.replay.loading import load_scenario

    loaded = load_scenario(scenario)
    clock = loaded.clock.now
    start = _time(start_text, "--from", clock) or loaded.world.start + interval
    until = _time(until_text, "--until", clock) or clock
    if start <= loaded.world.start:
        raise UsageProblem(f"--from {start.isoformat()} is not after the world's start "
                           f"({loaded.world.start.isoformat()})")
    if until < start:
        raise UsageProblem(f"--until {until.isoformat()} is before --from {start.isoformat()}")
    return replay_sources(loaded, now=start, horizon=until), start, until


def watch(
    scenario: ScenarioOpt = None,
    live: LiveOpt = False,
    context: ContextOpt = None,
    start: Annotated[str | None, typer.Option("--from", help="replay: first sweep (ISO time or now-2h against the "
                                                             "scenario's clock; default: world start + interval)")]
    = None,
    until: Annotated[str | None, typer.Option(help="last sweep (replay default: the scenario's clock; live: run "
                                                    "until interrupted)")] = None,
    interval: Annotated[float, typer.Option(min=1, help="seconds between sweeps")] = 60,
    cooldown: Annotated[float, typer.Option(min=0, help="minutes a resolved anomaly stays remembered: coming back "
                                                        "within it does not notify again")] = 30,
    model: ModelOpt = None,
    investigate: Annotated[bool, typer.Option(help="open an investigation for each new anomaly")] = True,
    notify_url: Annotated[str | None, typer.Option(envvar="SRE_AGENT_WATCH_NOTIFY_URL",
                                                   help="POST each notice to this URL as well")] = None,
    notify_format: Annotated[str, typer.Option(help=f"json, or pagerduty (Events API v2; ${ROUTING_KEY_ENV})")]
    = "json",
    as_json: Annotated[bool, typer.Option("--json", help="one JSON notice per line on stdout")] = False,
) -> None:
    """Sweep for silent failures (no LLM): queues with no consumer or stuck consumers, broker alarms, and
    workloads at 0 that callers wait for. A new anomaly is investigated and notified once (docs/watch.md)."""
    from agent.watch.watcher import Watcher, replay_steps

    step = timedelta(seconds=interval)
    with friendly_errors():
        if notify_format not in ("json", "pagerduty"):
            raise UsageProblem(f"--notify-format {notify_format!r}: use json or pagerduty")
        notifier = _notifier(notify_url, notify_format)
        if live or scenario is None:
            sources = open_sources(scenario, live, context)
            moments = None
        else:
            if context:
                raise UsageProblem("--context names a live cluster: use it with --live")
            sources, first, last = _replay(scenario, start, until, step)
            moments = replay_steps(sources, first, last, step)
        watcher = Watcher(sources, investigate=_investigator(model, sources) if investigate else None,
                          cooldown=timedelta(minutes=cooldown))
        raised = 0
        try:
            for _ in moments if moments is not None else _live_ticks(until, sources, interval):
                for notice in watcher.step():
                    raised += notice.event == "raised"
                    _print(notice, as_json)
                    if notifier is not None:
                        notifier(notice)
        except KeyboardInterrupt:
            pass
        err.print(f"{watcher.sweeps} sweeps, {raised} raised, {len(watcher.open_anomalies())} still open"
                  + (f"; not read in the last sweep: {'; '.join(watcher.unread)}" if watcher.unread else ""),
                  markup=False, highlight=False)


def _live_ticks(until_text: str | None, sources: Sources, interval: float) -> Any:
    until = _time(until_text, "--until", sources.clock())
    while until is None or sources.clock() <= until:
        began = time.monotonic()
        yield sources.clock()
        time.sleep(max(0.0, interval - (time.monotonic() - began)))
