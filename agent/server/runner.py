"""Runs investigations in a bounded pool (more wait in its queue) and resumes approved runs in the background.

Each investigation is `agent.run.run_investigation`, or `start_remediation_run` when it should end as a pending
approval; its `on_event` sink feeds the event channel the SSE stream follows and the metrics. A failure is the
record's (status `failed` with a redacted reason), never the server's.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from agent.llm.base import ChatModel, ModelError
from agent.remediation.errors import ApprovalStateError, PolicyRefused, RemediationError
from agent.server.events import Event, EventHub
from agent.server.metrics import Metrics
from agent.server.records import InvestigationRecord, InvestigationStore, RecordError, now
from tools.errors import SourceError
from tools.redaction import redact
from tools.registry import TOOL_SOURCES
from tools.replay.loading import ScenarioError
from tools.settings import ConfigError
from tools.toolkit import Sources

log = logging.getLogger(__name__)

ModelResolver = Callable[[str], ChatModel]
EXPECTED = (ModelError, RemediationError, SourceError, ScenarioError, ConfigError, RecordError)


def describe(exc: BaseException) -> str:
    """One redacted line saying what went wrong, for a record or a response (never a traceback)."""
    if isinstance(exc, RemediationError | SourceError):
        return exc.message
    if isinstance(exc, EXPECTED):
        return redact(str(exc))
    return redact(f"internal error ({type(exc).__name__}): {exc}")[:500]


def open_sources(spec: str, context: str | None) -> Sources:
    from agent.remediation.flow import open_sources as open_run_sources

    return open_run_sources(spec, context)


def terminal_event(record: InvestigationRecord) -> Event:
    """The last event of a stream: the verdict when there is one, else why there is none."""
    if record.status == "done" and record.verdict is not None:
        return {"kind": "verdict", "verdict": record.verdict}
    return {"kind": record.status, "error": record.error}


class Runner:
    def __init__(self, store: InvestigationStore, metrics: Metrics, resolve: ModelResolver, folder: Path,
                 concurrency: int) -> None:
        self.store, self.metrics, self.resolve, self.folder = store, metrics, resolve, folder
        self.hub = EventHub()
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="investigation")
        self._decisions = ThreadPoolExecutor(max_workers=2, thread_name_prefix="approval")
        self.submitted: list[Callable[[InvestigationRecord], None]] = []  # told of each queued one (e.g. Slack)

    # ---- investigations ---------------------------------------------------------------------------------

    def submit(self, record: InvestigationRecord, sources: Sources | None = None,
               model: ChatModel | None = None) -> InvestigationRecord:
        """Queue `record` (saved as queued first); `sources` and `model` are opened in the worker if not given."""
        record.status = "queued"
        self.store.save(record)
        self.hub.channel(record.id).publish({"kind": "status", "status": "queued"})
        self.metrics.queued.inc()
        self._pool.submit(self._run, record.id, sources, model)
        for listener in self.submitted:
            listener(record)
        return record

    def _sink(self, investigation_id: str) -> Callable[[str, dict[str, Any]], None]:
        channel = self.hub.channel(investigation_id)

        def on_event(kind: str, payload: dict[str, Any]) -> None:
            if kind == "verdict":  # the graph's draft notice; the stream ends with the verdict itself
                return
            if kind == "tool" and not payload.get("ok", True):
                self.metrics.tool_errors.labels(TOOL_SOURCES.get(str(payload.get("name")), "unknown")).inc()
            channel.publish({"kind": kind, **payload})

        return on_event

    def _run(self, investigation_id: str, sources: Sources | None, model: ChatModel | None) -> None:
        self.metrics.queued.dec()
        record = self.store.get(investigation_id)
        if record is None or record.status != "queued":  # pragma: no cover - only a hand-edited store
            return
        self.metrics.running.inc()
        channel = self.hub.channel(investigation_id)
        began = time.perf_counter()
        outcome: dict[str, Any] = {}
        try:
            self.store.update(record.id, status="running", started_at=now())
            channel.publish({"kind": "status", "status": "running"})
            sources = sources or open_sources(record.sources, record.context)
            model = model or self.resolve(record.model)
            if record.remediate:
                outcome = self._remediate(record, model, sources)
            else:
                from agent.run import run_investigation

                found = run_investigation(record.question, model, sources, on_event=self._sink(record.id))
                outcome = {"verdict": found.verdict.model_dump(mode="json")}
            outcome["status"] = "done"
        except Exception as exc:  # the boundary of one investigation: its failure is recorded, the server goes on
            if not isinstance(exc, EXPECTED):
                log.error("investigation %s failed: %s", investigation_id, describe(exc), exc_info=True)
            outcome.update(status="failed", error=describe(exc))
        finally:
            self.metrics.running.dec()
        self._finish(record, outcome, time.perf_counter() - began)

    def _remediate(self, record: InvestigationRecord, model: ChatModel, sources: Sources) -> dict[str, Any]:
        from agent.remediation.checkpoint import make_checkpointer
        from agent.remediation.flow import checkpointer_target, open_remediator
        from agent.remediation.runs import RunRecord
        from agent.run import new_run_id, start_remediation_run

        run_id = record.run_id or new_run_id()
        self.store.update(record.id, run_id=run_id)
        remediator = open_remediator(sources, data=self.folder)
        target = checkpointer_target(self.folder)
        run = RunRecord(run_id=run_id, question=record.question, sources=record.sources, model=record.model,
                        context=record.context, checkpointer=redact(target), started_by=record.requested_by)
        with make_checkpointer(target) as saver:
            result = start_remediation_run(run, model, sources, remediator, saver, on_event=self._sink(record.id))
        return {"verdict": result.verdict.model_dump(mode="json") if result.verdict else None,
                "remediation": result.remediation}

    def _finish(self, started: InvestigationRecord, outcome: dict[str, Any], seconds: float) -> None:
        channel = self.hub.channel(started.id)
        ending = {**outcome, "finished_at": now(), "duration_s": round(seconds, 3), "trace": channel.snapshot()}
        try:
            record = self.store.update(started.id, **ending)
        except RecordError as exc:  # the store failed: the stream and the metrics still tell the outcome
            log.error("investigation %s: %s", started.id, exc)
            record = started.model_copy(update=ending)
        self.metrics.duration.observe(seconds)
        outcome_label = str((record.verdict or {}).get("status")) if record.status == "done" else record.status
        self.metrics.investigations.labels(outcome_label).inc()
        channel.publish(terminal_event(record))
        channel.close()
        self.hub.drop(started.id)

    # ---- approvals --------------------------------------------------------------------------------------

    def decide(self, approval_id: str, answer: dict[str, Any]) -> Future[Any]:
        """Resume the run paused at `approval_id` with `answer`, in the background (execute and verify included)."""
        return self._decisions.submit(self._resume, approval_id, answer)

    def _resume(self, approval_id: str, answer: dict[str, Any]) -> Any:
        from agent.run import resume_approval

        try:
            result = resume_approval(approval_id, answer, data=self.folder)
        except (PolicyRefused, ApprovalStateError):
            self.metrics.approvals.labels("refused").inc()
            raise
        except Exception as exc:
            if not isinstance(exc, EXPECTED):
                log.error("resuming approval %s failed: %s", approval_id, describe(exc), exc_info=True)
            raise
        self.metrics.approvals.labels("approved" if answer.get("decision") == "approve" else "rejected").inc()
        record = self.store.by_run(result.run_id)
        if record is not None:
            self.store.update(record.id, remediation=result.remediation)
        return result

    def close(self) -> None:
        """Stop taking work: queued investigations stay queued in the store (the next server runs them); running ones
        and decisions being carried out finish first."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._decisions.shutdown(wait=True)
