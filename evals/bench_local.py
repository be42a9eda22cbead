"""How long the embedded model makes an on-call engineer wait, measured, never guessed.

    python -m evals.bench_local [--runs 3] [--scenarios incident-5 consumer-crashloop ...]

For each scenario, `--runs` fresh processes each answer the scenario's question cold (a new process: imports,
model load, prompt-prefix cache restore, world load), then once more warm in the same process (the model
already loaded, as `sre-agent serve` keeps it). Printed per scenario, as medians: process start to the first
tool call, each model call's prompt tokens / cached tokens / prompt-processing and generation time, and the
total. SRE_AGENT_PREFIX_CACHE=0 measures without the persistent prefix cache.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

DEFAULT_SCENARIOS = ("incident-5", "consumer-crashloop", "claims-ocr-worker-hung", "incident-5-healthy")
T0_ENV = "SRE_AGENT_BENCH_T0"


def child(scenario_id: str) -> None:
    """One fresh process: a cold investigation, then a warm one, reported as JSON on stdout."""
    began = float(os.environ.get(T0_ENV) or time.time())
    from agent.llm.resolve import resolve_model
    from agent.run import run_investigation
    from evals.expectations import load_scenario
    from evals.scoring import score_run
    from tools.replay import replay_sources

    model = resolve_model("local")
    loaded_at = time.time()
    report: dict[str, Any] = {"model_ready_s": loaded_at - began}
    for phase in ("cold", "warm"):
        scenario = load_scenario(scenario_id)
        started = began if phase == "cold" else time.time()
        first_tool: list[float] = []
        calls: list[dict[str, Any]] = []

        def on_event(kind: str, payload: dict[str, Any], first: list[float] = first_tool,
                     model_calls: list[dict[str, Any]] = calls) -> None:
            if kind == "tool" and not first:
                first.append(time.time())
            if kind == "model" and payload.get("seconds"):
                model_calls.append({key: payload.get(key) for key in (
                    "tokens", "cached_tokens", "prompt_ms", "generation_ms", "seconds")})

        result = run_investigation(scenario.question, model, replay_sources(scenario), on_event=on_event)
        ended = time.time()
        report[phase] = {"to_first_tool_s": (first_tool[0] if first_tool else ended) - started,
                         "total_s": ended - started, "calls": calls,
                         "passed": score_run(result.verdict, result.observations, scenario).passed}
    print(json.dumps(report))


def measure(scenario: str, runs: int) -> list[dict[str, Any]]:
    reports = []
    for _ in range(runs):
        env = {**os.environ, T0_ENV: repr(time.time())}
        done = subprocess.run([sys.executable, "-m", "evals.bench_local", "--child", scenario], env=env,
                              capture_output=True, text=True, timeout=900, check=False)
        if done.returncode != 0:
            raise SystemExit(f"{scenario}: the benchmark process failed:\n{done.stderr[-2000:]}")
        reports.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return reports


def _median(values: list[float | None]) -> float:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else float("nan")


def show(scenario: str, reports: list[dict[str, Any]]) -> None:
    print(f"\n{scenario} ({len(reports)} fresh processes; medians)")
    print(f"  process start → model ready: {_median([r['model_ready_s'] for r in reports]):6.1f} s")
    for phase in ("cold", "warm"):
        rows = [r[phase] for r in reports]
        passed = sum(1 for r in rows if r["passed"])
        print(f"  {phase}: start → first tool call {_median([r['to_first_tool_s'] for r in rows]):6.1f} s; "
              f"total {_median([r['total_s'] for r in rows]):6.1f} s; passed {passed}/{len(rows)}")
        for index in range(max(len(r["calls"]) for r in rows)):
            call = [r["calls"][index] for r in rows if index < len(r["calls"])]
            print(f"    model call {index + 1}: prompt {_median([c['tokens'] for c in call]):5.0f} tokens, cached "
                  f"{_median([c['cached_tokens'] for c in call]):5.0f}; prompt processing "
                  f"{_median([c['prompt_ms'] for c in call]) / 1000:5.1f} s, generation "
                  f"{_median([c['generation_ms'] for c in call]) / 1000:5.1f} s "
                  f"(wall {_median([c['seconds'] for c in call]):5.1f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="fresh processes per scenario")
    parser.add_argument("--scenarios", nargs="+", default=list(DEFAULT_SCENARIOS))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    for scenario in args.scenarios:
        show(scenario, measure(scenario, args.runs))


if __name__ == "__main__":
    main()
