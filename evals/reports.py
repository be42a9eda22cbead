"""Eval reports: junit.xml (a testcase per scenario × model), report.md, a self-contained report.html with the
model × scenario grid and every failed run's details, and comparison.json when an earlier run is given."""

from __future__ import annotations

import html
import json
import xml.etree.ElementTree as ET
from math import comb
from pathlib import Path

from pydantic import BaseModel

from evals.runner import RESULTS_FILE, RunResult, SuiteResult, model_summary, write_atomically

BASELINES = {"playbook"}


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased estimate that at least one of k trials passes, from n trials with c passes."""
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


def pass_hat_k(n: int, c: int, k: int) -> float:
    """Estimate that all k trials pass (pass^k), from n trials with c passes."""
    return comb(c, k) / comb(n, k) if k <= n else 0.0


def _runs(suite: SuiteResult, model: str, scenario: str) -> list[RunResult]:
    return [r for r in suite.runs if r.model == model and r.scenario == scenario]


def _label(model: str) -> str:
    return f"{model} (baseline)" if model in BASELINES else model


def _reasons(run: RunResult) -> str:
    return "; ".join(f"{c.name}: {c.detail}" for c in run.score.failures())


def reliability(suite: SuiteResult, model: str) -> dict[str, float]:
    values: dict[str, float] = {}
    for k in range(1, suite.trials + 1):
        at, hat = [], []
        for scenario in suite.scenarios:
            runs = _runs(suite, model, scenario)
            n, c = len(runs), sum(r.passed for r in runs)
            if n >= k:
                at.append(pass_at_k(n, c, k))
                hat.append(pass_hat_k(n, c, k))
        if at:
            values[f"pass@{k}"] = sum(at) / len(at)
            values[f"pass^{k}"] = sum(hat) / len(hat)
    return values


class RateChange(BaseModel):
    """One model's pass rate over its scenarios (scenario None), or one scenario × model's: now and before.
    A rate is None where that side has no runs; delta is today − previous."""

    model: str
    scenario: str | None = None
    today_passed: int
    today_runs: int
    previous_passed: int
    previous_runs: int
    today: float | None
    previous: float | None
    delta: float | None


class Comparison(BaseModel):
    today_started: str
    previous_started: str
    models: list[RateChange]
    scenarios: list[RateChange]


def _change(model: str, scenario: str | None, today: list[RunResult], previous: list[RunResult]) -> RateChange:
    now = sum(r.passed for r in today) / len(today) if today else None
    before = sum(r.passed for r in previous) / len(previous) if previous else None
    delta = now - before if now is not None and before is not None else None
    return RateChange(model=model, scenario=scenario, today_passed=sum(r.passed for r in today),
                      today_runs=len(today), previous_passed=sum(r.passed for r in previous),
                      previous_runs=len(previous), today=None if now is None else round(now, 4),
                      previous=None if before is None else round(before, 4),
                      delta=None if delta is None else round(delta, 4))


def compare(today: SuiteResult, previous: SuiteResult) -> Comparison:
    """Pass rates per model and per scenario × model, today beside an earlier run (models and scenarios of both)."""
    models = today.models + [m for m in previous.models if m not in today.models]
    scenarios = today.scenarios + [s for s in previous.scenarios if s not in today.scenarios]
    per_model = [_change(m, None, [r for r in today.runs if r.model == m], [r for r in previous.runs if r.model == m])
                 for m in models]
    per_scenario = [_change(m, s, _runs(today, m, s), _runs(previous, m, s)) for s in scenarios for m in models]
    return Comparison(today_started=today.started, previous_started=previous.started, models=per_model,
                      scenarios=[c for c in per_scenario if c.today_runs or c.previous_runs])


def _rate(passed: int, runs: int) -> str:
    return f"{passed / runs:.0%} ({passed}/{runs})" if runs else "—"


def _delta(change: RateChange) -> str:
    if change.delta is None:
        return "new" if change.previous is None else "not run"
    points = round(change.delta * 100)
    return "±0 pts" if points == 0 else f"{points:+d} pts"


def write_junit(suite: SuiteResult, path: Path) -> None:
    root = ET.Element("testsuites", name="sre-agent evals")
    for model in suite.models:
        cases = [(s, runs) for s in suite.scenarios if (runs := _runs(suite, model, s))]
        failures = sum(1 for _, runs in cases if not all(r.passed for r in runs))
        elapsed = sum(r.score.efficiency.elapsed_s for _, runs in cases for r in runs)
        element = ET.SubElement(root, "testsuite", name=model, tests=str(len(cases)), failures=str(failures),
                                errors="0", time=f"{elapsed:.3f}")
        for scenario, runs in cases:
            case = ET.SubElement(element, "testcase", classname=f"evals.{model}", name=scenario,
                                 time=f"{sum(r.score.efficiency.elapsed_s for r in runs):.3f}")
            failed = [r for r in runs if not r.passed]
            if failed:
                detail = "\n".join(f"trial {r.trial}: {_reasons(r)}" for r in failed)
                failure = ET.SubElement(case, "failure", message=f"{len(failed)}/{len(runs)} trials failed")
                failure.text = detail
    ET.indent(root)
    write_atomically(path, ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n")


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _mark(runs: list[RunResult]) -> str:
    if not runs:
        return "—"
    passed = sum(r.passed for r in runs)
    mark = "✅" if passed == len(runs) else "❌" if passed == 0 else "⚠️"
    return f"{mark} {passed}/{len(runs)}"


def _markdown_comparison(comparison: Comparison) -> list[str]:
    lines = ["", "## Compared with the previous run", "",
             f"Today's runs started {comparison.today_started}; the previous ones {comparison.previous_started}.", "",
             "| model | today | previous | Δ |", "|---|---|---|---|"]
    lines += [f"| {_md(_label(c.model))} | {_rate(c.today_passed, c.today_runs)} | "
              f"{_rate(c.previous_passed, c.previous_runs)} | {_delta(c)} |" for c in comparison.models]
    lines += ["", "| scenario | model | today | previous | Δ |", "|---|---|---|---|---|"]
    lines += [f"| {_md(c.scenario or '')} | {_md(_label(c.model))} | {_rate(c.today_passed, c.today_runs)} | "
              f"{_rate(c.previous_passed, c.previous_runs)} | {_delta(c)} |" for c in comparison.scenarios]
    return lines


def markdown(suite: SuiteResult, comparison: Comparison | None = None, *, details: bool = True) -> str:
    """The report; without details (what the command prints) it stops before the failed checks and reliability."""
    lines = [f"# Eval report ({suite.started})", "",
             f"{len(suite.scenarios)} scenarios × {len(suite.models)} models × {suite.trials} trials.", ""]
    if suite.merged_from:
        lines += [f"Merged from {', '.join(suite.merged_from)}.", ""]
    lines += ["| model | pass rate | runs | median time (s) | median LLM calls | median tool calls | median tokens |",
              "|---|---|---|---|---|---|---|"]
    for row in model_summary(suite):
        lines.append(f"| {_md(_label(row['model']))} | {row['pass_rate']:.0%} ({row['passed']}/{row['runs']}) | "
                     f"{row['runs']} | {row['median_elapsed_s']:.2f} | {row['median_llm_calls']:g} | "
                     f"{row['median_tool_calls']:g} | {row['median_tokens']:g} |")
    lines += ["", "| scenario | " + " | ".join(_md(_label(m)) for m in suite.models) + " |",
              "|---|" + "---|" * len(suite.models)]
    for scenario in suite.scenarios:
        cells = [_mark(_runs(suite, model, scenario)) for model in suite.models]
        lines.append(f"| {_md(scenario)} | " + " | ".join(cells) + " |")
    if comparison:
        lines += _markdown_comparison(comparison)
    if details:
        failures = [r for r in suite.runs if not r.passed]
        if failures:
            lines += ["", "## Failed checks", ""]
            lines += [f"- {r.scenario} · {r.model} · trial {r.trial}: {_reasons(r)}" for r in failures]
        lines += ["", "## Reliability", ""]
        for model in suite.models:
            values = reliability(suite, model)
            lines.append(f"- {_label(model)}: " + ", ".join(f"{k} {v:.2f}" for k, v in values.items()))
    return "\n".join(lines) + "\n"


def _text_width(text: str, size: int = 12) -> float:
    """A generous estimate of rendered width, so that labels are never clipped by the SVG's edge."""
    return sum(size * (0.7 if ord(ch) < 128 else 1.1) for ch in text)


def _bar_chart(title: str, items: list[tuple[str, float]], maximum: float = 1.0, percent: bool = True) -> str:
    bar_w, bar_h, gap = 300, 18, 6
    label_w = max([190.0] + [_text_width(label) + 12 for label, _ in items])
    width = max(label_w + bar_w + 70, _text_width(title, 16) + 10)
    height = 30 + len(items) * (bar_h + gap)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height}" role="img">',
             f'<text x="0" y="16" font-weight="bold">{html.escape(title)}</text>']
    for index, (label, value) in enumerate(items):
        y = 28 + index * (bar_h + gap)
        length = 0 if maximum <= 0 else bar_w * min(value, maximum) / maximum
        colour = "#2e7d32" if not percent or value >= 0.8 else "#f9a825" if value >= 0.5 else "#c62828"
        text = f"{value:.0%}" if percent else f"{value:g}"
        parts += [f'<text x="0" y="{y + 13}" font-size="12">{html.escape(label)}</text>',
                  f'<rect x="{label_w:.0f}" y="{y}" width="{length:.1f}" height="{bar_h}" fill="{colour}"/>',
                  f'<text x="{label_w + length + 6:.1f}" y="{y + 13}" font-size="12">{text}</text>']
    parts.append("</svg>")
    return '<div class="scroll">' + "".join(parts) + "</div>"


def _distribution(title: str, rows: list[tuple[str, list[float]]]) -> str:
    items = []
    for label, values in rows:
        ordered = sorted(values) or [0.0]
        items.append((f"{label} (min {ordered[0]:g}, max {ordered[-1]:g})", ordered[len(ordered) // 2]))
    return _bar_chart(f"{title} — median", items, max([v for _, v in items] + [1e-9]), percent=False)


def _esc(text: object, quote: bool = False) -> str:
    """Escape for element content; attribute values need quote=True."""
    return html.escape(str(text), quote=quote)


def _anchor(index: int) -> str:
    return f"run-{index}"


def _grid(suite: SuiteResult) -> str:
    """One row per scenario, one column per model; a cell is passes/trials, coloured, linking each failed run."""
    indexed = list(enumerate(suite.runs))
    rows = ["<thead><tr><th scope=\"col\">scenario</th>"
            + "".join(f"<th scope=\"col\">{_esc(_label(m))}</th>" for m in suite.models) + "</tr></thead><tbody>"]
    for scenario in suite.scenarios:
        cells = [f"<th scope=\"row\">{_esc(scenario)}</th>"]
        for model in suite.models:
            runs = [(i, r) for i, r in indexed if r.model == model and r.scenario == scenario]
            passed = sum(r.passed for _, r in runs)
            state = "none" if not runs else "pass" if passed == len(runs) else "fail" if passed == 0 else "partial"
            count = f"{passed}/{len(runs)}" if runs else "—"
            links = "".join(f' <a href="#{_anchor(i)}" title="{_esc(_reasons(r), quote=True)}">trial {r.trial}</a>'
                            for i, r in runs if not r.passed)
            cells.append(f'<td class="cell {state}"><span class="count">{count}</span>{links}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return '<div class="scroll"><table class="grid">' + "".join(rows) + "</tbody></table></div>"


def _run_detail(index: int, run: RunResult) -> str:
    checks = "".join(f"<tr><td>{_esc(c.name)}</td><td>{_esc(c.detail)}</td></tr>" for c in run.score.failures())
    parts = [f'<section class="run" id="{_anchor(index)}">',
             f"<h3>{_esc(run.scenario)} · {_esc(_label(run.model))} · trial {run.trial}</h3>",
             f"<h4>Failed checks</h4><table><tr><th>check</th><th>detail</th></tr>{checks}</table>"]
    if run.error:
        parts.append(f'<p class="error">The run ended with an error: {_esc(run.error)}</p>')
    calls = run.verdict.trace.tool_calls if run.verdict and run.verdict.trace else []
    trace = "".join(
        f"<tr><td>{_esc(c.id)}</td><td>{_esc(c.name)}</td>"
        f"<td><code>{_esc(json.dumps(c.args, ensure_ascii=False, sort_keys=True, default=str))}</code></td>"
        f"<td class=\"{'ok' if c.ok else 'bad'}\">{'yes' if c.ok else 'no'}</td><td>{_esc(c.summary)}</td></tr>"
        for c in calls)
    parts.append("<h4>Tool trace</h4>" + (
        f"<table><tr><th>id</th><th>name</th><th>args</th><th>ok</th><th>summary</th></tr>{trace}</table>"
        if calls else "<p>no tool calls</p>"))
    verdict = run.verdict.model_dump_json(indent=2) if run.verdict else None
    parts.append("<h4>Verdict</h4>" + (f"<pre>{_esc(verdict)}</pre>" if verdict else "<p>no verdict</p>"))
    parts.append('<p><a href="#grid">back to the grid</a></p></section>')
    return "".join(parts)


def _html_comparison(comparison: Comparison) -> str:
    def row(change: RateChange, *labels: str) -> str:
        delta = change.delta or 0
        trend = " up" if delta > 0 else " down" if delta < 0 else ""
        return ("<tr>" + "".join(f"<th scope=\"row\">{_esc(label)}</th>" for label in labels)
                + f"<td>{_rate(change.today_passed, change.today_runs)}</td>"
                f"<td>{_rate(change.previous_passed, change.previous_runs)}</td>"
                f"<td class=\"delta{trend}\">{_esc(_delta(change))}</td></tr>")

    models = "".join(row(c, _label(c.model)) for c in comparison.models)
    scenarios = "".join(row(c, c.scenario or "", _label(c.model)) for c in comparison.scenarios)
    return (f"<h2 id=\"comparison\">Compared with the previous run</h2><p>Today's runs started "
            f"{_esc(comparison.today_started)}; the previous ones {_esc(comparison.previous_started)}.</p>"
            '<div class="scroll"><table class="comparison"><tr><th>model</th><th>today</th><th>previous</th>'
            f"<th>Δ</th></tr>{models}</table></div>"
            '<div class="scroll"><table class="comparison"><tr><th>scenario</th><th>model</th><th>today</th>'
            f"<th>previous</th><th>Δ</th></tr>{scenarios}</table></div>")


STYLE = ("body{font-family:sans-serif;margin:2em}section{margin:1.5em 0}.scroll{overflow-x:auto;max-width:100%}"
         "table{border-collapse:collapse;margin:0.5em 0}"
         "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top;overflow-wrap:break-word}"
         ".grid td{text-align:center}.count{font-weight:bold}.cell a{font-size:smaller;white-space:nowrap}"
         ".pass{background:#c8e6c9}.partial{background:#ffe082}.fail{background:#ef9a9a}.none{background:#eee}"
         ".up{color:#2e7d32;font-weight:bold}.down{color:#c62828;font-weight:bold}.bad{color:#c62828}"
         "pre{white-space:pre-wrap;overflow-wrap:anywhere;background:#f6f6f6;padding:8px}"
         "code{overflow-wrap:anywhere}.run{border-top:1px solid #ccc;padding-top:0.5em}")


def html_report(suite: SuiteResult, comparison: Comparison | None = None) -> str:
    sections = [_bar_chart("Pass rate per model", [(_label(m), suite.pass_rate(m)) for m in suite.models])]
    for model in suite.models:
        sections.append(_bar_chart(f"Pass rate per scenario — {_label(model)}",
                                   [(s, suite.pass_rate(model, s)) for s in suite.scenarios]))
    for title, attribute in (("LLM calls", "llm_calls"), ("Tool calls", "tool_calls"), ("Tokens", "tokens"),
                             ("Latency (s)", "elapsed_s")):
        sections.append(_distribution(title, [
            (_label(m), [float(getattr(r.score.efficiency, attribute)) for r in suite.runs if r.model == m])
            for m in suite.models]))
    table = ["<table><tr><th>model</th>" + "".join(f"<th>{_esc(k)}</th>" for k in
                                                      reliability(suite, suite.models[0]))
             + "</tr>"] if suite.models else []
    for model in suite.models:
        table.append(f"<tr><td>{_esc(_label(model))}</td>" + "".join(
            f"<td>{v:.2f}</td>" for v in reliability(suite, model).values()) + "</tr>")
    table.append("</table>")
    failed = "".join(_run_detail(i, r) for i, r in enumerate(suite.runs) if not r.passed)
    merged = f"<p>Merged from {_esc(', '.join(suite.merged_from))}.</p>" if suite.merged_from else ""
    body = "".join(f"<section>{s}</section>" for s in sections)
    return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>sre-agent evals</title>"
            f"<style>{STYLE}</style></head><body>"
            f"<h1>sre-agent evals</h1><p>{len(suite.scenarios)} scenarios × {len(suite.models)} models × "
            f"{suite.trials} trials; started {_esc(suite.started)}.</p>{merged}"
            f"<h2 id=\"grid\">Passed trials per scenario and model</h2>{_grid(suite)}"
            f"{_html_comparison(comparison) if comparison else ''}{body}"
            f"<h2>Reliability (pass@k, pass^k)</h2>{''.join(table)}"
            f"<h2 id=\"failed\">Failed runs</h2>{failed or '<p>none</p>'}</body></html>\n")


def write_reports(suite: SuiteResult, directory: Path, comparison: Comparison | None = None) -> dict[str, Path]:
    names = [RESULTS_FILE, "junit.xml", "report.md", "report.html"] + (["comparison.json"] if comparison else [])
    paths = {name: directory / name for name in names}
    write_atomically(paths[RESULTS_FILE], suite.model_dump_json(indent=1))
    write_junit(suite, paths["junit.xml"])
    write_atomically(paths["report.md"], markdown(suite, comparison))
    write_atomically(paths["report.html"], html_report(suite, comparison))
    if comparison:
        write_atomically(paths["comparison.json"], comparison.model_dump_json(indent=1))
    else:  # an earlier run's comparison would describe other results
        (directory / "comparison.json").unlink(missing_ok=True)
    return paths
