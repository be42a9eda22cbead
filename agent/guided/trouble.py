"""What rules out 'healthy' for the question's scope, whichever workload the model names: facts no reading of the
other results can explain away."""

from __future__ import annotations

from agent.findings import (
    autoscaled_to_rest,
    broker_alarms,
    intentional_pause,
    missing_consumer,
    serving_failure,
    stuck_consumers,
    unconsumed,
)
from agent.guided.inventory import called_and_failing
from agent.scope import EVERYTHING, Scope
from agent.signals import Observation, consumer_refs


def standing_trouble(observations: list[Observation], scope: Scope = EVERYTHING) -> list[str]:
    """Facts that rule out 'healthy' for the question's scope: a broker alarm blocking publishers, consumers
    attached but stuck, a queue receiving work that nothing consumes while its consumer is at 0 or while it grows,
    a workload that cannot serve while its callers' errors name it."""
    from agent.validator import known_deployments

    found = [f"broker {alarm} alarm" for alarm in broker_alarms(
        [o.data for o in observations if o.ok and o.tool == "get_queue_stats"])]
    states = known_deployments(observations)
    zero = [key for key, state in states.items() if state.get("desired") == 0 and scope.covers_workload(*key)
            and not intentional_pause(state) and not autoscaled_to_rest(state)]
    down = [key for key, state in states.items() if state.get("desired") and not state.get("available")
            and scope.covers_workload(*key)]  # wanted but not one replica serving
    whole = scope.everything and not scope.excluded and not scope.focus
    for obs in observations:
        data = obs.data
        if not (obs.ok and obs.tool == "get_queue_stats" and "queue" in data):
            continue
        if stuck_consumers(data) and any(scope.covers_workload(*r) for r in consumer_refs(data)):
            found.append(f"{data['queue']}: consumers stuck")
        growing = (data.get("depth_trend") or {}).get("direction") == "rising"
        queue = str(data["queue"])
        if unconsumed(data) and ((whole and (zero or growing)) or missing_consumer(queue, [], zero)
                                 or (growing and missing_consumer(queue, [], down))):
            found.append(f"{data['queue']}: no consumer")
    for ref in called_and_failing(observations, scope):
        namespace, _, name = ref.partition("/")
        state = states.get((namespace, name)) or {}
        if "pods" in state and serving_failure(state) is not None and not intentional_pause(state):
            found.append(f"{ref}: its callers fail and it cannot serve")
    return found
