"""The seed write-up's four playbook queries, issued through the tools, on Incident-5 and its healthy twin."""

from tools.toolkit import Sources, Toolbox

NS = "sock-shop"


def call(toolbox: Toolbox, sources: Sources, tool: str, **args: object) -> dict:
    outcome = toolbox.call(sources, tool, args)
    assert outcome.ok, outcome.text()
    return outcome.data()


def test_step1_consumer_logs_absent_with_previous_window(toolbox: Toolbox, incident5: Sources) -> None:
    result = call(toolbox, incident5, "search_logs", query=f"kube_namespace:{NS} service:queue-master",
                  start="2025-11-09T14:43:00Z", end="now")
    assert result["total"] == 0
    assert result["previous_window"]["total"] > 0
    assert result["last_line_at"] < "2025-11-09T14:43:00Z"
    assert "SILENT" in result["summary"]
    assert result["samples"] == []


def test_step2_replicas_available_zero(toolbox: Toolbox, incident5: Sources) -> None:
    metric = call(toolbox, incident5, "get_metric", start="now-15m", query=(
        f"avg:kubernetes_state.deployment.replicas_available{{kube_namespace:{NS},kube_deployment:queue-master}}"))
    trend = metric["series"][0]["trend"]
    assert (trend["first"], trend["last"], trend["direction"]) == (1.0, 0.0, "falling")
    deployment = call(toolbox, incident5, "get_deployment", namespace=NS, name="queue-master")
    assert (deployment["desired"], deployment["available"], deployment["pods"]) == (0, 0, [])
    assert deployment["last_scaled"]["at"] == "2025-11-09T14:43:00Z"
    assert deployment["last_scaled"]["message"].startswith("Scaled down replica set queue-master-")


def test_step3_queue_has_no_consumer_and_grows(toolbox: Toolbox, incident5: Sources) -> None:
    stats = call(toolbox, incident5, "get_queue_stats", queue="shipping-task")
    assert stats["consumers"] == 0 and stats["consumed_by"] == []
    assert stats["messages"] == 5
    assert stats["depth_trend"]["direction"] == "rising"
    consumers = call(toolbox, incident5, "get_metric", start="now-15m",
                     query="avg:rabbitmq.queue.consumers{rabbitmq_queue:shipping-task}")
    assert consumers["series"][0]["trend"]["last"] == 0.0
    depth = call(toolbox, incident5, "get_metric", start="2025-11-09T14:43:00Z",
                 query="avg:rabbitmq.queue.messages{rabbitmq_queue:shipping-task}")
    values = [v for v in depth["series"][0]["values"] if v is not None]
    assert values == sorted(values) and values[-1] == 5.0 and values[0] == 0.0


def test_producer_keeps_publishing_and_checkout_succeeds(toolbox: Toolbox, incident5: Sources) -> None:
    query = f'kube_namespace:{NS} service:shipping "Adding shipment"'
    shipping = call(toolbox, incident5, "search_logs", query=query, start="2025-11-09T14:43:00Z")
    assert shipping["total"] >= 5
    errors = call(toolbox, incident5, "search_logs", query=f"kube_namespace:{NS} status:error", start="now-1h")
    assert errors["total"] == 0


def test_healthy_twin_shows_the_opposite(toolbox: Toolbox, healthy5: Sources) -> None:
    logs = call(toolbox, healthy5, "search_logs", query=f"kube_namespace:{NS} service:queue-master",
                start="2025-11-09T14:43:00Z")
    assert logs["total"] > 0 and "SILENT" not in logs["summary"]
    metric = call(toolbox, healthy5, "get_metric", start="now-15m", query=(
        "avg:kubernetes_state.deployment.replicas_available{kube_deployment:queue-master}"))
    assert metric["series"][0]["trend"]["min"] == 1.0
    stats = call(toolbox, healthy5, "get_queue_stats", queue="shipping-task")
    assert stats["consumers"] == 1 and stats["messages"] == 0
    refs = [(c["namespace"], c["name"], c["consumers"]) for c in stats["consumed_by"]]
    assert refs == [("sock-shop", "queue-master", 1)]
    assert stats["depth_trend"]["max"] <= 1


def test_recorded_recovery_drains_the_backlog() -> None:
    from datetime import UTC, datetime

    from tools.registry import default_toolbox
    from tools.replay import replay_sources
    from tools.replay.loading import load_scenario
    from tools.replay.scenario import Clock

    scenario = load_scenario("incident-5")
    later = scenario.model_copy(update={"clock": Clock(now=datetime(2025, 11, 9, 14, 52, tzinfo=UTC))})
    sources = replay_sources(later)
    toolbox = default_toolbox()
    stats = call(toolbox, sources, "get_queue_stats", queue="shipping-task")
    assert (stats["consumers"], stats["messages"]) == (1, 0)
    drained = call(toolbox, sources, "search_logs", query="service:queue-master \"Received shipment task\"",
                   start="2025-11-09T14:48:38Z", end="2025-11-09T14:49:00Z")
    assert drained["total"] >= 5
