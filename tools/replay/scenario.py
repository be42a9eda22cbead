"""The scenario file format: a system written as a timeline, from which every signal is derived.

See docs/scenarios.md. Reading the files (ids, `extends`, validation errors that name the file, the field and the
reason) is `tools.replay.loading`; the bounds every field and the whole replay stay within are `tools.replay.limits`
(applied by the field types of `tools.replay.fields`), the cross-references `tools.replay.references`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator

from tools.kubernetes.protocol import WorkloadKind
from tools.replay.fields import (
    Depth,
    LatencyMs,
    MetricValue,
    MiB,
    Millicores,
    Moment,
    Name,
    Noise,
    PerReplica,
    PodCount,
    PollSeconds,
    Prefetch,
    Rate,
    Replicas,
    Seconds,
    ordered,
)
from tools.replay.limits import MAX_HISTORY, replay_cost
from tools.replay.references import reference_problems

LogStatus = Literal["debug", "info", "warn", "error", "critical"]
PodState = Literal["running", "crashloop", "pending", "imagepull", "unready", "configerror", "mountfail"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class ReplicaChange(_Strict):
    at: Moment
    replicas: Replicas = Field(description="desired replicas from this moment")
    pod_state: PodState = Field("running", description="what the pods do once scheduled")
    reason: str | None = Field(None, description="crashloop: last termination reason (OOMKilled, Error); unready: "
                                                 "the failing readiness probe's message; pending: why the scheduler "
                                                 "cannot place the pods (its FailedScheduling message); configerror: "
                                                 "what the container's config refers to that is missing ('secret "
                                                 "\"db-creds\" not found'); mountfail: the FailedMount message")
    image: str | None = Field(None, description="new image from this moment (a rollout)")
    annotations: dict[str, str] = Field(default_factory=dict, description="annotations set at this moment")


class Gate(_Strict):
    """A condition on one deployment's current state. A flow or log stream with a gate is active only while the
    gate holds, so a remediation that changes the deployment (rollback, scale) also changes what is logged."""

    deployment: Name
    namespace: Name | None = None
    up: bool | None = Field(None, description="true: while it has available pods; false: while it has none")
    image: str | None = Field(None, description="while its current revision runs this image")
    image_not: str | None = Field(None, description="while its current revision runs any other image")

    @model_validator(mode="after")
    def _has_condition(self) -> Gate:
        if self.up is None and self.image is None and self.image_not is None:
            raise ValueError("a gate needs at least one of up, image, image_not")
        return self


class LogStream(_Strict):
    message: str = Field(description="template; {id} 24-hex, {uuid}, {n} counter, {ms} latency")
    rate_per_min: Rate
    status: LogStatus = "info"
    start: Moment | None = None
    end: Moment | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    when: Literal["up", "crashing", "always"] = Field("up", description="log while pods are up / crash-looping")
    only_while: Gate | None = Field(None, description="log only while this gate holds")

    @model_validator(mode="after")
    def _window(self) -> LogStream:
        ordered(self.start, self.end, "end")
        return self


class Hang(_Strict):
    """From `at`, running pods stop making progress while staying attached and ready: a consumer keeps its channel
    and its prefetched messages unacknowledged, acks nothing and logs nothing. Only replacing the pods (a rollout
    restart, a rollback, scaling to 0 and back) ends it; pods created later by a scale-up work."""

    at: Moment
    pods: PodCount | None = Field(
        None, description="how many of the running pods hang (default: all)")


class Autoscaler(_Strict):
    """An autoscaler object that owns the workload's replica count. A `ScaledObject` (KEDA) with a `queue` scales
    the workload from `min_replicas` up when that queue holds messages and back to `min_replicas` after
    `cooldown_seconds` with an empty queue, emitting KEDA's events; an HPA is shown with its bounds."""

    kind: Literal["HorizontalPodAutoscaler", "ScaledObject"]
    name: Name | None = Field(None, description="default: the workload's name")
    min_replicas: Replicas = 1
    max_replicas: PodCount
    queue: Name | None = Field(None, description="ScaledObject: the RabbitMQ queue whose depth drives it")
    messages_per_replica: int = Field(20, ge=1, description="ScaledObject: target queue length per replica")
    cooldown_seconds: Seconds = 300
    polling_seconds: PollSeconds = 30

    @model_validator(mode="after")
    def _bounds(self) -> Autoscaler:
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"min_replicas {self.min_replicas} is above max_replicas {self.max_replicas}")
        return self


def _replicas_form(value: Any) -> str:
    return "timeline" if isinstance(value, list) else "count"


class Deployment(_Strict):
    name: Name
    kind: WorkloadKind = "Deployment"
    namespace: Name | None = None
    image: str
    hangs: list[Hang] = Field(default_factory=list)
    autoscaler: Autoscaler | None = None
    latency_ms: LatencyMs = Field(30.0, description="mean duration of one request span it serves")
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    replicas: Annotated[Annotated[list[ReplicaChange], Field(min_length=1), Tag("timeline")]
                        | Annotated[Replicas, Tag("count")], Discriminator(_replicas_form)] = Field(
        1, description="a constant count, or a timeline of changes")
    startup_seconds: Seconds = 6
    cpu_millicores: Millicores = 20.0
    memory_mib: MiB = 128.0
    logs: list[LogStream] = Field(default_factory=list)


class FlowStep(_Strict):
    deployment: Name | None = Field(None, description="log this step's message in this deployment")
    namespace: Name | None = Field(None, description="namespace of `deployment` or `call` (default: world's)")
    message: str | None = None
    status: LogStatus = "info"
    attributes: dict[str, Any] = Field(default_factory=dict)
    publish: Name | None = Field(None, description="publish one message to this queue")
    vhost: Name | None = Field(None, description="vhost of the `publish` queue (default: the only queue so named)")
    on_publish_failure: FlowStep | None = Field(None, description="logged instead when the broker is down or "
                                                                  "blocks publishers")
    call: Name | None = Field(None, description="a synchronous request to this deployment")
    on_call_failure: FlowStep | None = Field(None, description="logged when the called deployment has no ready "
                                                               "pods; the request ends there")

    @model_validator(mode="after")
    def _one_action(self) -> FlowStep:
        if sum(x is not None for x in (self.deployment, self.publish, self.call)) != 1:
            raise ValueError("a step either logs (deployment + message), publishes (publish) or calls (call)")
        if self.deployment is not None and not self.message:
            raise ValueError("a logging step needs a message")
        return self


class Flow(_Strict):
    name: Name
    rate_per_min: Rate
    start: Moment | None = None
    end: Moment | None = None
    only_while: Gate | None = Field(None, description="run only while this gate holds")
    steps: list[FlowStep] = Field(min_length=1)

    @model_validator(mode="after")
    def _window(self) -> Flow:
        ordered(self.start, self.end, "end")
        return self


class ConsumerFailure(_Strict):
    """While active, the consumer takes messages and fails every one: it logs `message` and gives the message
    back, requeued (redelivered, over and over) or rejected (dead-lettered to the queue's `dead_letter`, else
    dropped). Gate it on the consumer's image to make a bad release the cause: a rollback then ends it."""

    mode: Literal["requeue", "reject"]
    message: str = Field(min_length=1, description="logged per failed message; {id} is the publisher's id")
    status: LogStatus = "error"
    rate_per_min: Rate = Field(30.0, description="messages one consumer fails per minute (retries back off)")
    start: Moment | None = None
    end: Moment | None = None
    only_while: Gate | None = Field(None, description="fail only while this gate holds")

    @model_validator(mode="after")
    def _window(self) -> ConsumerFailure:
        ordered(self.start, self.end, "end")
        return self


class Consumer(_Strict):
    deployment: Name
    namespace: Name | None = None
    per_replica: PerReplica = 1
    rate_per_min: Rate = Field(600.0, description="messages one consumer can process per minute")
    prefetch: Prefetch = Field(10, description="unacknowledged messages one consumer may hold (basic.qos)")
    message: str | None = Field(None, description="logged per consumed message; {id} is the publisher's id")
    status: LogStatus = "info"
    fails: ConsumerFailure | None = Field(None, description="when and how it fails every message it takes")


class Queue(_Strict):
    name: Name
    vhost: Name = "/"
    durable: bool = False
    initial_depth: Depth = 0
    consumer: Consumer | None = Field(None, description="shorthand for a single entry of `consumers`")
    consumers: list[Consumer] = Field(default_factory=list, description="every workload consuming the queue")
    dead_letter: Name | None = Field(None, description="the queue (same vhost) its rejected messages go to, through "
                                                       "the default exchange (x-dead-letter-routing-key)")

    @model_validator(mode="after")
    def _one_consumer_list(self) -> Queue:
        if self.consumer is not None:
            if self.consumers:
                raise ValueError("give either consumer or consumers, not both")
            self.consumers = [self.consumer]
            self.consumer = None
        return self


class BrokerAlarm(_Strict):
    """A RabbitMQ resource alarm: while it is set the broker blocks every publishing connection."""

    resource: Literal["memory", "disk"]
    at: Moment
    until: Moment | None = None

    @model_validator(mode="after")
    def _window(self) -> BrokerAlarm:
        ordered(self.at, self.until, "until")
        return self


class Broker(_Strict):
    deployment: Name
    namespace: Name | None = None
    node: str = "rabbit@rabbitmq"
    alarms: list[BrokerAlarm] = Field(default_factory=list)


class MetricPoint(_Strict):
    at: Moment
    value: MetricValue


class ExtraMetric(_Strict):
    metric: Name
    tags: dict[str, str] = Field(default_factory=dict)
    points: list[MetricPoint] = Field(min_length=1, description="piecewise-linear between points")
    noise: Noise = Field(0.0, description="relative jitter added to each sample")
    replace: bool = Field(False, description="replace the values of derived series of this metric whose tags "
                                             "include all of these tags, instead of adding a series")


class ExplicitEvent(_Strict):
    at: Moment
    namespace: Name | None = None
    kind: str
    name: str
    reason: str
    message: str
    type: Literal["Normal", "Warning"] = "Normal"
    source: str | None = None


class ExplicitLog(_Strict):
    at: Moment
    deployment: Name
    namespace: Name | None = None
    message: str
    status: LogStatus = "info"
    attributes: dict[str, Any] = Field(default_factory=dict)


class Fault(_Strict):
    source: Literal["logs", "metrics", "kubernetes", "rabbitmq", "events"]
    error: Literal["rate_limited", "server_error", "timeout"] | None = None
    calls: int | None = Field(None, ge=1, description="fail only the first N calls (None: every call)")
    drop_from: Moment | None = Field(None, description="with drop_to: telemetry missing in this window")
    drop_to: Moment | None = None

    @model_validator(mode="after")
    def _has_effect(self) -> Fault:
        if self.error is None and (self.drop_from is None or self.drop_to is None):
            raise ValueError("a fault needs an error or a drop_from/drop_to window")
        ordered(self.drop_from, self.drop_to, "drop_to")
        return self


class World(_Strict):
    start: Moment = Field(description="when recorded history begins")
    namespace: Name = Field(description="default namespace for deployments, events and logs")
    extra_namespaces: list[Name] = Field(default_factory=list)
    cluster: Name = "prod"
    deployments: list[Deployment] = Field(min_length=1)
    flows: list[Flow] = Field(default_factory=list)
    queues: list[Queue] = Field(default_factory=list)
    broker: Broker | None = None
    events: list[ExplicitEvent] = Field(default_factory=list)
    logs: list[ExplicitLog] = Field(default_factory=list)
    metrics: list[ExtraMetric] = Field(default_factory=list)
    faults: list[Fault] = Field(default_factory=list)

    def workload_key(self, name: str, namespace: str | None) -> tuple[str, str]:
        return namespace or self.namespace, name

    @model_validator(mode="after")
    def _references_exist(self) -> World:
        problems = reference_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self


class Clock(_Strict):
    now: Moment


class Scenario(_Strict):
    id: Name
    title: Name
    description: str = ""
    question: Name
    clock: Clock
    seed: int = 0
    world: World
    expect: Any = Field(None, description="what a correct answer says; validated by evals.expectations")

    @field_validator("id")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not value.replace("-", "").replace("_", "").isalnum():
            raise ValueError("id must be letters, digits, '-' or '_'")
        return value

    @model_validator(mode="after")
    def _clock_after_start(self) -> Scenario:
        if self.clock.now <= self.world.start:
            raise ValueError(f"clock.now ({self.clock.now}) must be after world.start ({self.world.start})")
        history = self.clock.now - self.world.start
        if history > MAX_HISTORY:
            raise ValueError(f"world.start: {history.total_seconds() / 3600:.1f} h of history before clock.now is "
                             f"above the limit of {MAX_HISTORY.total_seconds() / 3600:.0f} h (MAX_HISTORY)")
        problems = replay_cost(self.world, self.clock.now).problems()
        if problems:
            raise ValueError("world: " + "; ".join(problems))
        return self
