"""Did the change work? Poll the read-only sources until the target recovered or the time is up.

Recovered means: the deployment has as many available replicas as desired (and as many as the action set),
and, when the action feeds a queue, that queue has a consumer and its backlog is back at its baseline, or has
fallen over the last DRAINING_FOR_S without rising above where it stood (a backlog that takes hours to work off
is being worked off). On a
replay, waiting advances the simulated clock (see `WorldWaiter`), so a five-minute watch takes milliseconds.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Protocol

from pydantic import BaseModel, Field

from agent.remediation.models import VerifyTarget
from agent.verdict import Action
from tools.errors import SourceError
from tools.kubernetes.protocol import SPEC_BLOCKED
from tools.toolkit import Sources

DRAINING_FOR_S = 120
BROKEN_WAITING = ("CrashLoopBackOff", *SPEC_BLOCKED)


class Waiter(Protocol):
    def wait(self, seconds: float) -> None: ...


class SleepWaiter:
    """Waiting on a live cluster: real time."""

    def wait(self, seconds: float) -> None:
        time.sleep(seconds)


class Observation(BaseModel):
    at: datetime
    elapsed_s: float
    desired: int | None = None
    available: int | None = None
    restarts: int = 0
    waiting: list[str] = Field(default_factory=list, description="waiting reasons of pods, e.g. CrashLoopBackOff")
    terminated: list[str] = Field(default_factory=list, description="last termination reasons, e.g. OOMKilled")
    images: list[str] = Field(default_factory=list)
    depth: int | None = None
    consumers: int | None = None
    errors: list[str] = Field(default_factory=list)


class VerificationReport(BaseModel):
    recovered: bool
    summary: str = Field(description="one line with the numbers, e.g. 'backlog 5 → 0 in 10 s; consumers 0 → 1'")
    elapsed_s: float
    findings: list[str] = Field(default_factory=list)
    next_steps: list[str] = Field(default_factory=list)
    suggested_action: Action | None = Field(None, description="what to propose next when it did not recover")
    rollback: Action | None = Field(None, description="the recorded inverse of the executed action")
    rollback_command: str | None = None
    observations: list[Observation] = Field(default_factory=list)


def observe(sources: Sources, target: VerifyTarget, started: datetime) -> Observation:
    now = sources.clock()
    seen = Observation(at=now, elapsed_s=round((now - started).total_seconds(), 1))
    try:
        info = sources.cluster.read_deployment(target.namespace, target.deployment)
        seen.desired, seen.available, seen.images = info.desired, info.available, info.images
        for pod in sources.cluster.list_pods(target.namespace, info.selector):
            seen.restarts += pod.restarts
            if pod.waiting_reason:
                seen.waiting.append(pod.waiting_reason)
            if pod.last_termination_reason:
                seen.terminated.append(pod.last_termination_reason)
    except SourceError as exc:
        seen.errors.append(f"kubernetes: {exc.message}")
    if target.queue is not None:
        try:
            queue = sources.broker.get_queue(target.queue.vhost, target.queue.name)
            seen.depth, seen.consumers = queue.messages, queue.consumers
        except SourceError as exc:
            seen.errors.append(f"rabbitmq: {exc.message}")
    return seen


def _deployment_ok(seen: Observation, target: VerifyTarget) -> bool:
    if seen.desired is None or seen.available is None or seen.desired < 1:
        return False
    if target.replicas is not None and seen.desired != target.replicas:
        return False
    return seen.available >= seen.desired and not any(w in BROKEN_WAITING for w in seen.waiting)


def _queue_ok(seen: Observation, target: VerifyTarget) -> bool:
    if target.queue is None:
        return True
    return (seen.consumers or 0) >= 1 and seen.depth is not None and seen.depth <= target.queue.baseline


def draining(observations: list[Observation], target: VerifyTarget) -> bool:
    """Consumers attached at each look of the last DRAINING_FOR_S (at least three), and the backlog lower at the end
    than at the start of that stretch, never above its start in between: messages trickle out between looks."""
    last = observations[-1]
    recent = [o for o in observations if last.elapsed_s - o.elapsed_s <= DRAINING_FOR_S]
    if target.queue is None or len(recent) < 3 or last.elapsed_s - recent[0].elapsed_s < DRAINING_FOR_S:
        return False
    depths = [o.depth for o in recent]
    if any(d is None for d in depths) or not all((o.consumers or 0) >= 1 for o in recent):
        return False
    known = [d for d in depths if d is not None]
    return known[-1] < known[0] and max(known) <= known[0]


def recovered(observations: list[Observation], target: VerifyTarget) -> bool:
    last = observations[-1]
    return _deployment_ok(last, target) and (_queue_ok(last, target) or draining(observations, target))


def verify(sources: Sources, target: VerifyTarget, *, waiter: Waiter, timeout_s: float = 300,
           interval_s: float = 5, give_up_broken_after_s: float = 90, rollback: Action | None = None
           ) -> VerificationReport:
    """Poll every `interval_s` until recovered or `timeout_s`; pods that stay broken end the watch after
    `give_up_broken_after_s`. Reads only through `sources`. At most one look per interval of the timeout, even on
    a clock that does not move."""
    started = sources.clock()
    observations = [observe(sources, target, started)]
    while not recovered(observations, target):
        last = observations[-1]
        if last.elapsed_s >= timeout_s or len(observations) > timeout_s / interval_s:
            break
        if last.elapsed_s >= give_up_broken_after_s and any(w in BROKEN_WAITING for w in last.waiting):
            break
        waiter.wait(interval_s)
        observations.append(observe(sources, target, started))
    return _report(observations, target, rollback)


def _change(values: list[int | None]) -> str:
    known = [v for v in values if v is not None]
    return f"{known[0]} → {known[-1]}" if known else "unknown"


def _numbers(observations: list[Observation], target: VerifyTarget) -> list[str]:
    parts = []
    if target.queue is not None:
        parts.append(f"backlog {_change([o.depth for o in observations])}")
        parts.append(f"consumers {_change([o.consumers for o in observations])}")
    parts.append(f"available {_change([o.available for o in observations])}")
    return parts


def _report(observations: list[Observation], target: VerifyTarget, rollback: Action | None) -> VerificationReport:
    first, last = observations[0], observations[-1]
    ok = recovered(observations, target)
    numbers = _numbers(observations, target)
    rollback_command = rollback.command() if rollback else None
    if ok:
        numbers[0] += f" in {last.elapsed_s:g} s"
        if target.queue is not None and not _queue_ok(last, target):
            numbers[0] += f", still draining toward {target.queue.baseline}"
        return VerificationReport(recovered=True, summary="; ".join(numbers), elapsed_s=last.elapsed_s,
                                  rollback=rollback, rollback_command=rollback_command, observations=observations)
    findings, next_steps, suggested = _diagnose(last, target)
    if target.queue is not None and first.depth is not None and last.depth is not None:
        trend = "rising" if last.depth > first.depth else "falling" if last.depth < first.depth else "flat"
        numbers[0] += f" ({trend}, baseline {target.queue.baseline})"
    desired = f" of {last.desired} desired" if last.desired is not None else ""
    summary = (f"NOT RECOVERED after {last.elapsed_s:g} s: {'; '.join(numbers)}{desired}"
               + (f"; {findings[0]}" if findings else ""))
    if rollback_command:
        next_steps.append(f"to undo the executed change (needs a fresh approval): {rollback_command}")
    return VerificationReport(recovered=False, summary=summary, elapsed_s=last.elapsed_s, findings=findings,
                              next_steps=next_steps, suggested_action=suggested, rollback=rollback,
                              rollback_command=rollback_command, observations=observations)


def _diagnose(last: Observation, target: VerifyTarget) -> tuple[list[str], list[str], Action | None]:
    findings: list[str] = []
    steps: list[str] = []
    suggested: Action | None = None
    ref = f"{target.kind.lower()}/{target.deployment} in {target.namespace}"
    broken = sorted({w for w in last.waiting if w in BROKEN_WAITING})
    terminated = sorted(set(last.terminated))
    if broken:
        detail = f" (last terminated: {', '.join(terminated)})" if terminated else ""
        findings.append(f"pods {', '.join(broken)}{detail}, {last.restarts} restarts")
        if "CrashLoopBackOff" in broken:
            steps.append("more replicas of a crash-looping container only add crashing pods: read its last logs and "
                         "termination reason before changing anything else")
        if "OOMKilled" in terminated:
            steps.append("OOMKilled: the container exceeds its memory limit; raise the limit or fix the leak")
        if any(w in broken for w in ("ImagePullBackOff", "ErrImagePull", "InvalidImageName")):
            steps.append(f"the image cannot be pulled ({', '.join(last.images)}): check the tag and the registry")
        suggested = Action(action="rollback", kind=target.kind, namespace=target.namespace, name=target.deployment)
        steps.append(f"if this began with a rollout, propose a rollback: {suggested.command()}")
    elif last.desired is not None and last.available is not None and last.available < last.desired:
        findings.append(f"{last.desired - last.available} of {last.desired} replicas of {ref} not available")
        steps.append("pods are not becoming ready: check scheduling (Pending pods, quotas) and readiness probes")
    if target.queue is not None and _deployment_ok(last, target):
        if not last.consumers:
            findings.append(f"queue {target.queue.name} still has no consumer although {ref} is available")
            steps.append("check the consumer's connection to the broker (its logs, the broker address, credentials)")
        elif last.depth is not None and last.depth > target.queue.baseline:
            findings.append(f"queue {target.queue.name} has {last.consumers} consumer(s) but {last.depth} messages "
                            f"(baseline {target.queue.baseline})")
            steps.append("the consumer is attached but the backlog is not draining: it may be too slow or failing "
                         "on messages; look at its logs and processing rate, consider more replicas")
    if last.errors:
        findings.extend(last.errors)
    return findings, steps, suggested
