"""What the tools need from RabbitMQ's management API. Live and replay backends both implement this."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from pydantic import BaseModel, Field


class QueueInfo(BaseModel):
    vhost: str
    name: str
    messages: int = 0
    ready: int = 0
    unacked: int = 0
    consumers: int = 0
    consumer_utilisation: float | None = None
    publish_rate: float | None = None
    deliver_rate: float | None = None
    ack_rate: float | None = None
    redeliver_rate: float | None = Field(None, description="messages delivered again after a consumer gave them "
                                                           "back (nack/reject with requeue, or a lost channel)")
    dead_letter_exchange: str | None = Field(None, description="where rejected or expired messages go (queue "
                                                               "argument x-dead-letter-exchange, else the policy's; "
                                                               "'' is the default exchange)")
    dead_letter_routing_key: str | None = None
    depth_rate: float | None = None
    idle_since: datetime | None = None
    durable: bool = False
    state: str | None = None
    consumer_hosts: list[str] = Field(default_factory=list, description="peer address of each consumer's channel")
    depth_samples: list[tuple[datetime, int]] = Field(default_factory=list)


class BrokerReader(Protocol):
    def list_queues(self, vhost: str | None = None) -> list[QueueInfo]:
        """Every queue of `vhost`, or of every vhost when None."""
        ...

    def alarms(self) -> list[str]:
        """The resource alarms ('memory', 'disk') set on the broker's nodes; publishers are blocked while set."""
        ...

    def get_queue(self, vhost: str, name: str, history_seconds: int = 0) -> QueueInfo:
        """One queue; with `history_seconds`, depth samples over that window. Raise NotFound if absent."""
        ...
