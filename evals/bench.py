"""Benchmarks that print numbers: replay tool latency and output size, and the agent's own overhead per step.

    python -m evals.bench [--scenario incident-5] [--repeat 30] [--worlds 10]
"""

from __future__ import annotations

import argparse
import statistics
import time

from agent.baseline.policy import PlaybookPolicy
from agent.run import run_investigation
from tools.registry import default_toolbox
from tools.replay import replay_sources
from tools.toolkit import Sources, Toolbox

CALLS = [
    ("list_namespaces", {}),
    ("get_deployment", {"namespace": "{ns}"}),
    ("get_deployment", {"namespace": "{ns}", "name": "{deployment}"}),
    ("list_events", {"namespace": "{ns}"}),
    ("search_logs", {"query": "kube_namespace:{ns} service:{deployment}", "start": "now-15m"}),
    ("search_logs", {"query": "kube_namespace:{ns} status:error", "start": "now-1h"}),
    ("get_metric", {"query": "avg:kubernetes_state.deployment.replicas_available{{kube_namespace:{ns}}} "
                             "by {{kube_deployment}}", "start": "now-1h"}),
    ("get_metric", {"query": "avg:rabbitmq.queue.messages{{rabbitmq_queue:{queue}}}", "start": "now-1h"}),
    ("get_queue_stats", {}),
    ("get_queue_stats", {"queue": "{queue}"}),
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def bench_tools(scenario: str, repeat: int, worlds: int) -> None:
    """World load over `worlds` fresh loads; each tool's first call on each fresh world (cold: nothing of the
    query is cached yet) and its repeats on one world (warm)."""
    loads, fresh = [], []
    for _ in range(worlds):
        began = time.perf_counter()
        fresh.append(replay_sources(scenario))
        loads.append((time.perf_counter() - began) * 1000)
    print(f"replay world load ({scenario}, {worlds} loads): p50 {percentile(loads, .5):.0f} ms, "
          f"p95 {percentile(loads, .95):.0f} ms")
    loaded = fresh[0].extras["scenario"]
    consumer = next(c.deployment for q in loaded.world.queues for c in q.consumers)
    names = {"ns": loaded.world.namespace, "deployment": consumer, "queue": loaded.world.queues[0].name}
    toolbox = default_toolbox()
    print(f"{'tool':16} {'args':54} {'cold p50':>8} {'cold p95':>8} {'warm p50':>8} {'chars':>6}")
    for name, template in CALLS:
        args = {k: v.format(**names) for k, v in template.items()}
        cold = [_timed(toolbox, sources, name, args) for sources in fresh]
        warm = [_timed(toolbox, fresh[0], name, args) for _ in range(repeat)]
        size = len(toolbox.call(fresh[0], name, args).text())
        shown = ",".join(f"{k}={v}" for k, v in args.items())[:54]
        print(f"{name:16} {shown:54} {percentile(cold, .5):8.1f} {percentile(cold, .95):8.1f} "
              f"{percentile(warm, .5):8.1f} {size:6}")


def _timed(toolbox: Toolbox, sources: Sources, name: str, args: dict[str, str]) -> float:
    outcome = toolbox.call(sources, name, args)
    assert outcome.ok, outcome.text()
    return outcome.ms


def bench_agent(scenario: str, repeat: int) -> None:
    runs = []
    for _ in range(repeat):
        sources = replay_sources(scenario)
        loaded = sources.extras["scenario"]
        runs.append(run_investigation(loaded.question, PlaybookPolicy(), sources).verdict.trace)
    elapsed = [t.elapsed_s for t in runs if t]
    overhead = [t.agent_overhead_s for t in runs if t]
    trace = runs[0]
    assert trace is not None
    steps = trace.llm_calls + len({c.id for c in trace.tool_calls})
    print(f"\nplaybook on {scenario} ({repeat} runs): {trace.llm_calls} model calls, {len(trace.tool_calls)} tool "
          f"calls; wall median {statistics.median(elapsed) * 1000:.0f} ms; agent overhead median "
          f"{statistics.median(overhead) * 1000:.0f} ms = {statistics.median(overhead) / steps * 1000:.1f} ms per step "
          f"({steps} steps: model turns + tool calls)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scenario", default="incident-5")
    parser.add_argument("--repeat", type=int, default=30, help="warm repeats per tool")
    parser.add_argument("--worlds", type=int, default=10, help="fresh world loads (cold calls per tool)")
    args = parser.parse_args()
    bench_tools(args.scenario, args.repeat, args.worlds)
    bench_agent(args.scenario, max(3, args.repeat // 5))


if __name__ == "__main__":
    main()
