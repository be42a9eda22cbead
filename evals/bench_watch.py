"""The watcher on every replayed world: how soon it notifies after an incident begins, and how many alerts it
raises where nothing is wrong. No model runs; the clock is simulated.

    python -m evals.bench_watch [--scenarios DIR ...] [--interval 60] [--json PATH]

For an incident scenario, the sweep runs from the world's start to its clock and the time to detect is the first
notice after `expect.onset` (the world's fault), in simulated seconds. For a healthy scenario a notice is a false
alarm unless the scenario's `expect.watch` names it (a real fault its world has elsewhere or earlier).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path

from agent.watch.watcher import Watcher, replay_steps
from evals.expectations import load_scenario
from tools.replay import replay_sources
from tools.replay.loading import builtin_scenarios_dir, list_scenarios


@dataclass
class WatchResult:
    scenario: str
    status: str
    onset: str | None
    first_notice: str | None
    detect_s: float | None
    raised: list[str]
    false_alarms: list[str]
    sweeps: int
    wall_s: float


def watch_scenario(path: Path, interval: timedelta) -> WatchResult:
    scenario = load_scenario(path)
    assert scenario.expect is not None, f"{path}: no expect block"
    began = time.perf_counter()
    start = scenario.world.start + interval
    sources = replay_sources(scenario, now=start, horizon=scenario.clock.now)
    watcher = Watcher(sources)
    raised = []
    for _ in replay_steps(sources, start, scenario.clock.now, interval):
        raised += [n for n in watcher.step() if n.event == "raised"]
    onset = scenario.expect.onset
    false_alarms = [] if scenario.expect.status == "incident" else [
        f"{n.at:%H:%M:%S} {n.anomaly.key}" for n in raised if n.anomaly.key not in scenario.expect.watch]
    after = [n for n in raised if onset is None or n.at >= onset]
    first = after[0] if after else None
    detect = (first.at - onset).total_seconds() if first and onset else None
    return WatchResult(scenario.id, scenario.expect.status, onset.isoformat() if onset else None,
                       first.at.isoformat() if first else None, detect,
                       [f"{n.at:%H:%M:%S} {n.anomaly.key}" for n in raised], false_alarms, watcher.sweeps,
                       round(time.perf_counter() - began, 3))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", nargs="+", type=Path, default=[builtin_scenarios_dir()])
    parser.add_argument("--interval", type=float, default=60.0, help="seconds between sweeps")
    parser.add_argument("--json", type=Path, help="write the results here too")
    args = parser.parse_args(argv)
    interval = timedelta(seconds=args.interval)
    results = [watch_scenario(path, interval) for root in args.scenarios for path in list_scenarios(root)]
    incidents = [r for r in results if r.status == "incident"]
    quiet = [r for r in results if r.status != "incident"]
    print(f"{'incident scenario':40} {'onset':>9} {'notified':>9} {'detect':>8}  raised")
    for r in incidents:
        detect = f"{r.detect_s / 60:.1f} min" if r.detect_s is not None else ("missed" if r.onset else "-")
        print(f"{r.scenario:40} {(r.onset or '?')[11:19]:>9} {(r.first_notice or '-')[11:19]:>9} {detect:>8}  "
              f"{'; '.join(r.raised) or '-'}")
    print(f"\n{'healthy / decoy scenario':40} {'false':>5} {'right':>5}  raised")
    for r in quiet:
        print(f"{r.scenario:40} {len(r.false_alarms):5} {len(r.raised) - len(r.false_alarms):5}  "
              f"{'; '.join(r.raised)}")
    timed = [r.detect_s for r in incidents if r.detect_s is not None]
    with_onset = [r for r in incidents if r.onset]
    print(f"\nincidents detected after their onset: {len(timed)}/{len(with_onset)} with an onset "
          f"({len(incidents)} incident scenarios); median time to detect "
          f"{sorted(timed)[len(timed) // 2] / 60 if timed else float('nan'):.1f} simulated min")
    print(f"false alarms on healthy and decoy scenarios: {sum(len(r.false_alarms) for r in quiet)} over "
          f"{len(quiet)} scenarios (alerts their worlds rightly raise, `expect.watch`: "
          f"{sum(len(r.raised) - len(r.false_alarms) for r in quiet)})")
    print(f"sweeps: {sum(r.sweeps for r in results)} in {sum(r.wall_s for r in results):.1f} s of wall time")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
