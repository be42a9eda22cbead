"""What moves through a World: the broker and the consumers attached to it, flows arriving at random through
their gates, synchronous calls and the request spans they leave, the consumption of queues, and the log lines
all of it writes. A mixin of World, reading the state World keeps."""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from tools.datadog.protocol import LogRecord
from tools.replay.scenario import ConsumerFailure, FlowStep, Gate, LogStatus, Queue, Scenario
from tools.replay.state import DeploymentSim, PodSim, QueueSim, Request, _stable_hash


class Traffic:
    """The traffic half of World; World sets every attribute declared here."""

    scenario: Scenario
    rng: random.Random
    queues: dict[tuple[str, str], QueueSim]
    logs: list[LogRecord]
    requests: list[Request]

    if TYPE_CHECKING:
        def sim(self, name: str, namespace: str | None = None) -> DeploymentSim: ...

        def _message_vars(self) -> dict[str, str]: ...

    def broker_up(self, at: datetime) -> bool:
        broker = self.scenario.world.broker
        if broker is None:
            return True
        return self.sim(broker.deployment, broker.namespace).available(at) > 0

    def alarms(self, at: datetime) -> list[str]:
        """Resource alarms set on the broker at `at` ('memory', 'disk'); while any is set, publishers are blocked."""
        broker = self.scenario.world.broker
        if broker is None or not self.broker_up(at):
            return []
        return [a.resource for a in broker.alarms if a.at <= at and (a.until is None or at < a.until)]

    def _attached(self, queue: Queue, at: datetime) -> list[tuple[int, DeploymentSim, PodSim]]:
        """(consumer index, workload, pod) for every consuming pod attached to the broker at `at`."""
        if not self.broker_up(at):
            return []
        return [(index, sim, pod) for index, consumer in enumerate(queue.consumers)
                for sim in [self.sim(consumer.deployment, consumer.namespace)] for pod in sim.ready_pods(at)]

    def consumer_hosts(self, queue: Queue, at: datetime) -> list[str]:
        """The address of each attached consumer, as the broker reports its channel's peer host."""
        return [pod.ip for index, _, pod in self._attached(queue, at)
                for _ in range(queue.consumers[index].per_replica)]

    def consumers(self, queue: Queue, at: datetime) -> int:
        return len(self.consumer_hosts(queue, at))

    def working_consumers(self, queue: Queue, at: datetime) -> int:
        return sum(queue.consumers[index].per_replica for index, _, pod in self._attached(queue, at) if not pod.hung)

    def _arrivals(self, rate_per_min: float, begin: datetime, end: datetime) -> list[datetime]:
        expected = rate_per_min * (end - begin).total_seconds() / 60.0
        threshold, count, product = math.exp(-expected), 0, self.rng.random()
        while product > threshold:
            count += 1
            product *= self.rng.random()
        span = (end - begin).total_seconds()
        return sorted(begin + timedelta(seconds=self.rng.uniform(0, span)) for _ in range(count))

    def gate_open(self, gate: Gate | None, at: datetime) -> bool:
        if gate is None:
            return True
        sim = self.sim(gate.deployment, gate.namespace)
        if gate.up is not None and (sim.available(at) > 0) != gate.up:
            return False
        if gate.image is not None and sim.revision.image != gate.image:
            return False
        return gate.image_not is None or sim.revision.image != gate.image_not

    @staticmethod
    def _stream_active(sim: DeploymentSim, when: str, at: datetime) -> bool:
        if when == "always":
            return bool(sim.pods)
        if when == "crashing":
            return sim.crashing()
        return sim.available(at) > 0

    def _queue_named(self, name: str, vhost: str | None) -> QueueSim:
        if vhost is not None:
            return self.queues[(vhost, name)]
        return self.queues.get(("/", name)) or next(q for q in self.queues.values() if q.spec.name == name)

    def _run_flow(self, steps: list[FlowStep], at: datetime) -> None:
        variables = self._message_vars()
        caller: DeploymentSim | None = None
        span: int | None = None  # the caller's span in this request
        for index, step in enumerate(steps):
            moment = at + timedelta(milliseconds=15 * index)
            if step.publish:
                queue = self._queue_named(step.publish, step.vhost)
                if self.broker_up(moment) and not self.alarms(moment):
                    queue.ready.append(dict(variables))
                    queue.published += 1
                    queue.last_activity = moment
                elif step.on_publish_failure:
                    self._log_step(step.on_publish_failure, moment, variables)
                continue
            if step.call:
                callee = self.sim(step.call, step.namespace)
                ready = callee.ready_pods(moment)
                # the Service balances over every ready pod: a hung one takes its share and never answers
                chosen = ready[_stable_hash(self.scenario.seed, callee.name, moment) % len(ready)] if ready else None
                if chosen is not None and not chosen.hung:
                    self._request(callee, moment, error=False)
                    continue
                seconds = 5.0 if chosen is not None else 0.005  # timed out, or refused at once
                failure = step.on_call_failure
                if failure is not None:
                    self._log_step(failure, moment, variables)
                failing = self.sim(failure.deployment, failure.namespace) if failure and failure.deployment \
                    else caller
                if failing is not None:
                    self._fail_span(failing, span, moment, seconds)
                return
            assert step.deployment and step.message
            sim = self.sim(step.deployment, step.namespace)
            if sim.available(moment) == 0:
                return
            caller = sim
            self._log(sim, moment, step.message, step.status, variables, dict(step.attributes))
            self._request(sim, moment, error=step.status in ("error", "critical"))
            span = len(self.requests) - 1

    def _log_step(self, step: FlowStep, at: datetime, variables: dict[str, str]) -> None:
        if step.deployment and step.message:
            sim = self.sim(step.deployment, step.namespace)
            self._log(sim, at, step.message, step.status, variables, dict(step.attributes))

    def _fail_span(self, sim: DeploymentSim, span: int | None, at: datetime, seconds: float) -> None:
        """The failing call makes the caller's own span of this request an error that lasted as long as the call."""
        service = sim.labels.get("app", sim.labels.get("name", sim.name))
        if span is not None and (self.requests[span].namespace, self.requests[span].service) == (sim.namespace,
                                                                                                 service):
            self.requests[span].error = True
            self.requests[span].seconds += seconds
        else:
            self._request(sim, at, error=True, seconds=seconds)

    def _request(self, sim: DeploymentSim, at: datetime, *, error: bool, seconds: float | None = None) -> None:
        service = sim.labels.get("app", sim.labels.get("name", sim.name))
        spread = (_stable_hash(self.scenario.seed, service, at) % 1000) / 1000  # not self.rng: arrivals stay put
        duration = seconds if seconds is not None else sim.spec.latency_ms / 1000 * (0.5 + spread)
        self.requests.append(Request(at, sim.namespace, service, error, duration))

    def _consume(self, queue: QueueSim, begin: datetime, end: datetime) -> None:
        """Hung consumers fill their prefetch once and hold it; working ones deliver, ack and log."""
        attached = self._attached(queue.spec, end)
        for index, consumer in enumerate(queue.spec.consumers):
            pods = [(sim, pod) for i, sim, pod in attached if i == index]
            for _, pod in pods:
                if pod.hung:
                    held = queue.unacked.setdefault(pod.name, [])
                    while queue.ready and len(held) < consumer.prefetch * consumer.per_replica:
                        held.append(queue.ready.popleft())
                        queue.delivered += 1
            working = sum(consumer.per_replica for _, pod in pods if not pod.hung)
            if not working:
                queue.consume_credit[index] = 0.0
                continue
            sim = pods[0][0]
            failure = consumer.fails
            if failure is not None and self._failing(failure, begin, end):
                self._fail_messages(queue, index, failure, working, sim, begin, end)
                continue
            credit = queue.consume_credit.get(index, 0.0)
            credit += working * consumer.rate_per_min * (end - begin).total_seconds() / 60.0
            step = (end - begin) / max(1, len(queue.ready))
            count = 0
            while queue.ready and credit >= 1.0:
                variables = queue.ready.popleft()
                credit -= 1.0
                queue.delivered += 1
                queue.acked += 1
                moment = begin + step * count + timedelta(milliseconds=40)
                count += 1
                queue.last_activity = moment
                if consumer.message:
                    self._log(sim, moment, consumer.message, consumer.status, variables, {})
            queue.consume_credit[index] = min(credit, 1.0) if not queue.ready else credit

    def _failing(self, failure: ConsumerFailure, begin: datetime, end: datetime) -> bool:
        if (failure.start and end <= failure.start) or (failure.end and begin >= failure.end):
            return False
        return self.gate_open(failure.only_while, begin)

    def _fail_messages(self, queue: QueueSim, index: int, failure: ConsumerFailure, working: int,
                       sim: DeploymentSim, begin: datetime, end: datetime) -> None:
        """Each message taken is failed and given back: requeued at the head (redelivered next), or rejected to
        the dead-letter queue (or dropped when there is none)."""
        credit = queue.consume_credit.get(index, 0.0)
        credit += working * failure.rate_per_min * (end - begin).total_seconds() / 60.0
        target = self._queue_named(queue.spec.dead_letter, queue.spec.vhost) if queue.spec.dead_letter else None
        step = (end - begin) / max(1, int(credit))
        count = 0
        while queue.ready and credit >= 1.0:
            variables = queue.ready.popleft()
            credit -= 1.0
            queue.delivered += 1
            self._log(sim, begin + step * count, failure.message, failure.status, variables, {})
            count += 1
            if failure.mode == "requeue":  # back at the head: the same message comes round again
                queue.ready.appendleft(variables)
                queue.redelivered += 1
            elif target is not None:
                target.ready.append(variables)
        queue.consume_credit[index] = min(credit, 1.0)

    def _log(self, sim: DeploymentSim, at: datetime, template: str, status: LogStatus,
             variables: dict[str, str], attributes: dict[str, Any], *, include_hung: bool = False) -> None:
        """One line from one of the workload's pods; a hung pod writes nothing (unless the line is explicit)."""
        live = [p for p in sim.pods if include_hung or not p.hung]
        if sim.pods and not live:
            return
        started_by = at - timedelta(seconds=sim.spec.startup_seconds)
        pods = [p for p in live if p.state != "running" or p.created <= started_by] or live
        pod = pods[self.rng.randrange(len(pods))] if pods else None
        try:
            message = template.format(**variables) if variables else template
        except (KeyError, IndexError, ValueError):
            message = template
        service = sim.labels.get("app", sim.labels.get("name", sim.name))
        owner = "kube_stateful_set" if sim.spec.kind == "StatefulSet" else "kube_deployment"  # as the Datadog agent
        tags = [f"kube_namespace:{sim.namespace}", f"{owner}:{sim.name}", f"service:{service}",
                f"kube_cluster_name:{self.scenario.world.cluster}", f"image_name:{sim.revision.image.split(':')[0]}"]
        if pod:
            tags.append(f"pod_name:{pod.name}")
        self.logs.append(LogRecord(timestamp=at, service=service, status=status, host=pod.node if pod else None,
                                   message=message, tags=tags, attributes=attributes))
