"""Reports people read: the model × scenario grid with every failed run linked to its details, merging nightly
folders with the previous night's numbers beside today's, unwrapped piped tables, and `--scenarios a b c`."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.baseline.policy import PlaybookPolicy
from agent.cli import app
from agent.llm.base import AssistantTurn, ChatModel, ModelError
from agent.llm.scripted import ScriptedModel, tool_turn, verdict_turn
from evals.reports import html_report, markdown, write_reports
from evals.runner import SuiteResult, collect_scenarios, load_results, run_suite
from tools.replay.loading import builtin_scenarios_dir
from tools.replay.scenario import Scenario

runner = CliRunner()
SCENARIOS = ["incident-5", "decoy-noise"]
# a model name longer than any fixed label width, with markup in it: it must come out whole and escaped
LONG = "openai:<b>a-model-name-much-longer-than-the-old-twenty-eight-character-cut</b>"
HOSTILE = "<script>alert('verdict')</script> & \"quoted\""


def _wrong_model() -> ScriptedModel:
    return ScriptedModel([
        tool_turn(("search_logs", {"query": "service:shipping", "start": "now-5m"}, "s1"),
                  ("get_deployment", {"namespace": "sock-shop", "name": "shipping"}, "s2")),
        AssistantTurn(content="shipping looks wrong"),
        verdict_turn({"status": "inconclusive", "summary": HOSTILE, "confidence": 0.2}),
    ])


def _factory(spec: str, scenario: Scenario, trial: int) -> ChatModel:
    if spec == "broken":
        raise ModelError("the endpoint answered 503 <Service Unavailable>")
    if spec == LONG and trial == 1:
        return _wrong_model()
    return PlaybookPolicy()


@pytest.fixture(scope="module")
def suite() -> SuiteResult:
    """The runner's own results: playbook passes everything, LONG fails its second trial, broken never answers."""
    scenarios = collect_scenarios([builtin_scenarios_dir() / s for s in SCENARIOS])
    return run_suite(scenarios, ["playbook", LONG, "broken"], 2, _factory)


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Node | str] = field(default_factory=list)

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def find_all(self, tag: str) -> list[Node]:
        found = [self] if self.tag == tag else []
        for child in self.children:
            if isinstance(child, Node):
                found += child.find_all(tag)
        return found

    def by_id(self, wanted: str) -> list[Node]:
        found = [self] if self.attrs.get("id") == wanted else []
        for child in self.children:
            if isinstance(child, Node):
                found += child.by_id(wanted)
        return found


VOID_TAGS = frozenset({"meta", "br", "hr", "img", "input", "link"})


class _Tree(HTMLParser):

    def __init__(self, page: str) -> None:
        super().__init__()
        self.root = Node("document", {})
        self.stack = [self.root]
        self.feed(page)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in VOID_TAGS:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        assert self.stack[-1].tag == tag, f"</{tag}> closes <{self.stack[-1].tag}>"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def _grid(page: Node) -> tuple[list[str], dict[str, list[tuple[str, str, list[str]]]]]:
    """Header labels, and per scenario each cell's (class, passed/trials, failed-run link texts)."""
    (table,) = [t for t in page.find_all("table") if t.attrs.get("class") == "grid"]
    header = [th.text() for th in table.find_all("thead")[0].find_all("th")]
    rows = {}
    for tr in table.find_all("tbody")[0].find_all("tr"):
        cells = [(td.attrs["class"], td.find_all("span")[0].text(), [a.text() for a in td.find_all("a")])
                 for td in tr.find_all("td")]
        rows[tr.find_all("th")[0].text()] = cells
    return header, rows


def test_the_grid_shows_passes_per_trials_per_scenario_and_model(suite: SuiteResult) -> None:
    raw = html_report(suite)
    header, rows = _grid(_Tree(raw).root)
    assert header == ["scenario", "playbook (baseline)", LONG, "broken"]
    assert rows == {
        "incident-5": [("cell pass", "2/2", []), ("cell partial", "1/2", ["trial 1"]),
                       ("cell fail", "0/2", ["trial 0", "trial 1"])],
        "decoy-noise": [("cell pass", "2/2", []), ("cell partial", "1/2", ["trial 1"]),
                        ("cell fail", "0/2", ["trial 0", "trial 1"])],
    }
    # escaped everywhere, never cut: the raw markup never appears, the parsed label is whole (in the SVG charts too)
    assert "<b>" not in raw and "<script>" not in raw
    svg_labels = [t.text() for t in _Tree(raw).root.find_all("text")]
    assert LONG in svg_labels and "decoy-noise" in svg_labels
    assert markdown(suite).split("\n\n")[3].splitlines()[2:] == [
        "| incident-5 | ✅ 2/2 | ⚠️ 1/2 | ❌ 0/2 |",
        "| decoy-noise | ✅ 2/2 | ⚠️ 1/2 | ❌ 0/2 |",
    ]


def _section_tables(section: Node) -> list[list[list[str]]]:
    return [[[cell.text() for cell in tr.children if isinstance(cell, Node)] for tr in table.find_all("tr")]
            for table in section.find_all("table")]


def test_every_failed_run_links_to_its_verdict_trace_and_failed_checks(suite: SuiteResult) -> None:
    page = _Tree(html_report(suite)).root
    (table,) = [t for t in page.find_all("table") if t.attrs.get("class") == "grid"]
    links = [a.attrs["href"] for a in table.find_all("a")]
    failed = [r for r in suite.runs if not r.passed]
    assert len(links) == len(set(links)) == len(failed) == 6
    assert all(href.startswith("#") for a in page.find_all("a") for href in [a.attrs["href"]])  # self-contained
    for href in links:
        (section,) = page.by_id(href[1:])
        title = section.find_all("h3")[0].text()
        run = next(r for r in failed if title == f"{r.scenario} · {r.model} · trial {r.trial}")
        tables = _section_tables(section)
        assert tables[0] == [["check", "detail"]] + [[c.name, c.detail] for c in run.score.failures()]
        if run.model == "broken":
            assert run.verdict is None and len(tables) == 1
            assert section.find_all("p")[0].text() == (
                "The run ended with an error: the endpoint answered 503 <Service Unavailable>")
            assert [p.text() for p in section.find_all("p")[1:3]] == ["no tool calls", "no verdict"]
            continue
        assert run.verdict is not None and run.verdict.trace is not None
        assert tables[1] == [["id", "name", "args", "ok", "summary"]] + [
            [c.id, c.name, json.dumps(c.args, sort_keys=True), "yes" if c.ok else "no", c.summary]
            for c in run.verdict.trace.tool_calls]
        assert [row[:2] for row in tables[1][1:]] == [["s1", "search_logs"], ["s2", "get_deployment"]]
        verdict = json.loads(section.find_all("pre")[0].text())
        assert verdict == json.loads(run.verdict.model_dump_json()) and verdict["summary"] == HOSTILE
        assert tables[0][1:] == [["status", "inconclusive, expected incident"]]


def _nightly(root: Path, suite: SuiteResult, models: list[str], flip: dict[tuple[str, str, int], bool]) -> None:
    """Write one report folder per model, as `.ci/nightly MODEL` does; `flip` sets some runs' outcome."""
    for index, model in enumerate(models):
        runs = [r.model_copy(update={"passed": flip.get((r.model, r.scenario, r.trial), r.passed)})
                for r in suite.runs if r.model == model]
        write_reports(suite.model_copy(update={"models": [model], "runs": runs}), root / f"model-{index}")


def test_merge_combines_nightly_folders_with_the_previous_night_beside(suite: SuiteResult, tmp_path: Path) -> None:
    _nightly(tmp_path / "today", suite, ["playbook", LONG, "broken"], {})
    everything_passed = {(LONG, s, 1): True for s in SCENARIOS}
    _nightly(tmp_path / "yesterday", suite, ["playbook", LONG], {("playbook", "incident-5", 0): False,
                                                                  **everything_passed})
    today = tmp_path / "today"
    result = runner.invoke(app, ["eval", "--merge", str(today / "model-0"), str(today / "model-1"),
                                 "--merge", str(today / "model-2"), "--previous", str(tmp_path / "yesterday"),
                                 "--report", str(tmp_path / "merged")])
    assert result.exit_code == 0, result.output + result.stderr
    merged = load_results(tmp_path / "merged" / "results.json")
    models = ["broken", LONG, "playbook"]  # a merged report lists models and scenarios alphabetically
    assert merged.models == models and merged.scenarios == ["decoy-noise", "incident-5"]
    assert merged.merged_from == [str(today / f"model-{i}" / "results.json") for i in range(3)]
    assert [(r.model, r.scenario, r.trial, r.passed) for r in merged.runs] == [
        (r.model, r.scenario, r.trial, r.passed) for m in models for s in merged.scenarios for r in suite.runs
        if (r.model, r.scenario) == (m, s)]

    def change(model: str, scenario: str | None, today: tuple[int, int], before: tuple[int, int] | None,
               delta: float | None) -> dict[str, object]:
        return {"model": model, "scenario": scenario, "today_passed": today[0], "today_runs": today[1],
                "previous_passed": before[0] if before else 0, "previous_runs": before[1] if before else 0,
                "today": round(today[0] / today[1], 4), "previous": round(before[0] / before[1], 4) if before else None,
                "delta": delta}

    comparison = json.loads((tmp_path / "merged" / "comparison.json").read_text())
    assert comparison == {
        "today_started": suite.started, "previous_started": suite.started,
        "models": [change("broken", None, (0, 4), None, None), change(LONG, None, (2, 4), (4, 4), -0.5),
                   change("playbook", None, (4, 4), (3, 4), 0.25)],
        "scenarios": [change("broken", "decoy-noise", (0, 2), None, None),
                      change(LONG, "decoy-noise", (1, 2), (2, 2), -0.5),
                      change("playbook", "decoy-noise", (2, 2), (2, 2), 0.0),
                      change("broken", "incident-5", (0, 2), None, None),
                      change(LONG, "incident-5", (1, 2), (2, 2), -0.5),
                      change("playbook", "incident-5", (2, 2), (1, 2), 0.5)],
    }
    printed = result.stdout.split("## Compared with the previous run\n")[1].split("\n\n")[1:]
    assert printed == [
        "| model | today | previous | Δ |\n|---|---|---|---|\n"
        "| broken | 0% (0/4) | — | new |\n"
        f"| {LONG} | 50% (2/4) | 100% (4/4) | -50 pts |\n"
        "| playbook (baseline) | 100% (4/4) | 75% (3/4) | +25 pts |",
        "| scenario | model | today | previous | Δ |\n|---|---|---|---|---|\n"
        "| decoy-noise | broken | 0% (0/2) | — | new |\n"
        f"| decoy-noise | {LONG} | 50% (1/2) | 100% (2/2) | -50 pts |\n"
        "| decoy-noise | playbook (baseline) | 100% (2/2) | 100% (2/2) | ±0 pts |\n"
        "| incident-5 | broken | 0% (0/2) | — | new |\n"
        f"| incident-5 | {LONG} | 50% (1/2) | 100% (2/2) | -50 pts |\n"
        "| incident-5 | playbook (baseline) | 100% (2/2) | 50% (1/2) | +50 pts |\n",
    ]
    assert (tmp_path / "merged" / "report.md").read_text().count("## Compared with the previous run") == 1
    page = _Tree((tmp_path / "merged" / "report.html").read_text()).root
    row = [("cell fail", "0/2", ["trial 0", "trial 1"]), ("cell partial", "1/2", ["trial 1"]), ("cell pass", "2/2", [])]
    assert _grid(page) == (["scenario", "broken", LONG, "playbook (baseline)"], {"decoy-noise": row, "incident-5": row})
    deltas = [td.text() for td in page.find_all("td") if td.attrs.get("class", "").startswith("delta")]
    assert deltas == ["new", "-50 pts", "+25 pts", "new", "-50 pts", "±0 pts", "new", "-50 pts", "+50 pts"]

    # the merged folder is tonight's --previous, even when it is also the --report folder; gone models show so
    again = runner.invoke(app, ["eval", "--merge", str(today / "model-2"), "--previous", str(tmp_path / "merged"),
                                "--report", str(tmp_path / "merged")])
    assert again.exit_code == 0, again.output + again.stderr
    assert again.stdout.split("## Compared with the previous run\n")[1].split("\n\n")[1] == (
        "| model | today | previous | Δ |\n|---|---|---|---|\n"
        "| broken | 0% (0/4) | 0% (0/4) | ±0 pts |\n"
        f"| {LONG} | — | 50% (2/4) | not run |\n"
        "| playbook (baseline) | — | 100% (4/4) | not run |")
    assert load_results(tmp_path / "merged" / "results.json").models == ["broken"]


def test_bad_merge_input_is_one_clear_line_and_overwrites_nothing(suite: SuiteResult, tmp_path: Path) -> None:
    _nightly(tmp_path / "today", suite, ["playbook"], {})
    good = tmp_path / "today" / "model-0"
    out = tmp_path / "out"
    write_reports(suite, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    empty = tmp_path / "empty"
    empty.mkdir()
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "results.json").write_text('{"started": "2026-12-01T02:17:00+00:00", "models": [')
    alien = tmp_path / "alien"
    alien.mkdir()
    (alien / "results.json").write_text('{"started": "x", "models": [], "scenarios": [], "trials": "three"}')
    cases = {
        (str(good), str(empty)): f"error: {empty}: no results.json in it or in its subfolders; pass a folder an eval "
                                 "run wrote (sre-agent eval --report DIR)",
        (str(good), str(broken)): f"error: {broken / 'results.json'}: not valid JSON (line 1, column 53: Expecting "
                                  "value); re-run the eval or fetch the artifact again",
        (str(alien),): f"error: {alien / 'results.json'}: not eval results (trials: Input should be a valid integer, "
                       "unable to parse string as an integer); pass a results file written by sre-agent eval",
        (str(good), str(tmp_path / "missing")): f"error: {tmp_path / 'missing'}: no such folder; pass a folder an "
                                                "eval run wrote (sre-agent eval --report DIR)",
        (str(good), str(good)): f"error: {good / 'results.json'}: playbook · incident-5 · trial 0 is given twice; "
                                "merge the results of different models (or different scenarios) only",
    }
    for dirs, message in cases.items():
        result = runner.invoke(app, ["eval", "--merge", *dirs, "--report", str(out)])
        assert (result.exit_code, result.stdout, result.stderr) == (2, "", message + "\n"), dirs
        assert result.exception is None or isinstance(result.exception, SystemExit)
    bad_previous = runner.invoke(app, ["eval", "--scenarios", str(builtin_scenarios_dir() / "incident-5"),
                                       "--previous", str(broken), "--report", str(out)])
    assert (bad_previous.exit_code, bad_previous.stderr) == (2, cases[(str(good), str(broken))] + "\n")
    into_input = runner.invoke(app, ["eval", "--merge", str(good), "--report", str(good)])
    assert (into_input.exit_code, into_input.stderr) == (2, f"error: --report {good} is one of the --merge folders "
                                                            "and its results.json would be overwritten; pick another "
                                                            "--report folder\n")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def _long_scenario(root: Path) -> tuple[Path, str]:
    long_id = "renamed-topology-" + "x" * 190
    shutil.copytree(builtin_scenarios_dir() / "renamed-topology", root / long_id)
    spec = root / long_id / "scenario.yaml"
    spec.write_text(spec.read_text().replace("id: renamed-topology\n", f"id: {long_id}\n"))
    return root / long_id, long_id


def test_the_printed_table_is_not_wrapped_when_piped(tmp_path: Path) -> None:
    folder, long_id = _long_scenario(tmp_path / "scenarios")
    result = runner.invoke(app, ["eval", "--scenarios", str(folder), "--model", "playbook", "--report",
                                 str(tmp_path / "r")], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output + result.stderr
    lines = result.stdout.splitlines()
    assert lines[-3:] == ["| scenario | playbook (baseline) |", "|---|---|", f"| {long_id} | ✅ 1/1 |"]
    assert len(lines[-1]) > 200
    assert all(line.startswith("|") and line.endswith("|") for line in lines if line.startswith("|"))


def test_scenarios_take_several_paths_after_one_flag_or_a_repeated_flag(tmp_path: Path) -> None:
    first, second = (str(builtin_scenarios_dir() / s) for s in SCENARIOS)
    forms = {
        "one flag": ["--scenarios", first, second, "--model", "playbook", "--trials", "1"],
        "repeated": ["--model", "playbook", "--scenarios", first, "--scenarios", second, "--trials", "1"],
    }
    for name, args in forms.items():
        result = runner.invoke(app, ["eval", *args, "--report", str(tmp_path / name)])
        assert result.exit_code == 0, result.output + result.stderr
        loaded = load_results(tmp_path / name / "results.json")
        assert (loaded.scenarios, loaded.models, loaded.trials, len(loaded.runs)) == (SCENARIOS, ["playbook"], 1, 2)
    stray = runner.invoke(app, ["eval", "--model", "playbook", "local"])
    assert (stray.exit_code, stray.stderr) == (2, "error: unexpected argument 'local': scenario folders go after "
                                                  "--scenarios, report folders after --merge, and --model takes one "
                                                  "model per flag\n")
    mixed = runner.invoke(app, ["eval", "--merge", str(tmp_path / "one flag"), "--scenarios", first])
    assert (mixed.exit_code, mixed.stderr) == (2, "error: --merge combines finished runs and runs nothing: drop "
                                                  "--scenarios\n")
