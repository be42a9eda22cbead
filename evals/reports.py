"""Eval reports: junit.xml (a testcase per scenario × model), report.md, and a self-contained report.html."""

from __future__ import annotations

import html
import xml.etree.ElementTree as ET
from math import comb
from pathlib import Path

from evals.runner import RunResult, SuiteResult, model_summary, write_atomically

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


def write_junit(suite: SuiteResult, path: Path) -> None:
    root = ET.Element("testsuites", name="sre-agent evals")
    for model in suite.models:
        cases = [(s, _runs(suite, model, s)) for s in suite.scenarios]
        failures = sum(1 for _, runs in cases if not all(r.passed for r in runs))
        elapsed = sum(r.score.efficiency.elapsed_s for _, runs in cases for r in runs)
        element = ET.SubElement(root, "testsuite", name=model, tests=str(len(cases)), failures=str(failures),
                                errors="0", time=f"{elapsed:.3f}")
        for scenario, runs in cases:
            case = ET.SubElement(element, "testcase", classname=f"evals.{model}", name=scenario,
                                 time=f"{sum(r.score.efficiency.elapsed_s for r in runs):.3f}")
            failed = [r for r in runs if not r.passed]
            if failed:
                detail = "\n".join(f"trial {r.trial}: " + "; ".join(f"{c.name}: {c.detail}" for c in r.score.failures())
                                   for r in failed)
                failure = ET.SubElement(case, "failure", message=f"{len(failed)}/{len(runs)} trials failed")
                failure.text = detail
    ET.indent(root)
    write_atomically(path, ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n")


def markdown(suite: SuiteResult) -> str:
    lines = [f"# Eval report ({suite.started})", "",
             f"{len(suite.scenarios)} scenarios × {len(suite.models)} models × {suite.trials} trials.", "",
             "| model | pass rate | runs | median time (s) | median LLM calls | median tool calls | median tokens |",
             "|---|---|---|---|---|---|---|"]
    for row in model_summary(suite):
        lines.append(f"| {_label(row['model'])} | {row['pass_rate']:.0%} ({row['passed']}/{row['runs']}) | "
                     f"{row['runs']} | {row['median_elapsed_s']:.2f} | {row['median_llm_calls']:g} | "
                     f"{row['median_tool_calls']:g} | {row['median_tokens']:g} |")
    lines += ["", "| scenario | " + " | ".join(_label(m) for m in suite.models) + " |",
              "|---|" + "---|" * len(suite.models)]
    for scenario in suite.scenarios:
        cells = []
        for model in suite.models:
            runs = _runs(suite, model, scenario)
            mark = "✅" if all(r.passed for r in runs) else "❌" if not any(r.passed for r in runs) else "⚠️"
            cells.append(f"{mark} {sum(r.passed for r in runs)}/{len(runs)}")
        lines.append(f"| {scenario} | " + " | ".join(cells) + " |")
    failures = [r for r in suite.runs if not r.passed]
    if failures:
        lines += ["", "## Failed checks", ""]
        for run in failures:
            reasons = "; ".join(f"{c.name}: {c.detail}" for c in run.score.failures())
            lines.append(f"- {run.scenario} · {run.model} · trial {run.trial}: {reasons}")
    lines += ["", "## Reliability", ""]
    for model in suite.models:
        values = reliability(suite, model)
        lines.append(f"- {_label(model)}: " + ", ".join(f"{k} {v:.2f}" for k, v in values.items()))
    return "\n".join(lines) + "\n"


def _bar_chart(title: str, items: list[tuple[str, float]], maximum: float = 1.0, percent: bool = True) -> str:
    width, bar_h, gap, label_w = 560, 18, 6, 190
    height = 30 + len(items) * (bar_h + gap)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">',
             f'<text x="0" y="16" font-weight="bold">{html.escape(title)}</text>']
    for index, (label, value) in enumerate(items):
        y = 28 + index * (bar_h + gap)
        length = 0 if maximum <= 0 else (width - label_w - 70) * min(value, maximum) / maximum
        colour = "#2e7d32" if not percent or value >= 0.8 else "#f9a825" if value >= 0.5 else "#c62828"
        text = f"{value:.0%}" if percent else f"{value:g}"
        parts += [f'<text x="0" y="{y + 13}" font-size="12">{html.escape(label[:28])}</text>',
                  f'<rect x="{label_w}" y="{y}" width="{length:.1f}" height="{bar_h}" fill="{colour}"/>',
                  f'<text x="{label_w + length + 6:.1f}" y="{y + 13}" font-size="12">{text}</text>']
    parts.append("</svg>")
    return "".join(parts)


def _distribution(title: str, rows: list[tuple[str, list[float]]]) -> str:
    items = []
    for label, values in rows:
        ordered = sorted(values) or [0.0]
        items.append((f"{label} (min {ordered[0]:g}, max {ordered[-1]:g})", ordered[len(ordered) // 2]))
    return _bar_chart(f"{title} — median", items, max([v for _, v in items] + [1e-9]), percent=False)


def html_report(suite: SuiteResult) -> str:
    sections = [_bar_chart("Pass rate per model", [(_label(m), suite.pass_rate(m)) for m in suite.models])]
    for model in suite.models:
        sections.append(_bar_chart(f"Pass rate per scenario — {_label(model)}",
                                   [(s, suite.pass_rate(model, s)) for s in suite.scenarios]))
    for title, attribute in (("LLM calls", "llm_calls"), ("Tool calls", "tool_calls"), ("Tokens", "tokens"),
                             ("Latency (s)", "elapsed_s")):
        sections.append(_distribution(title, [
            (_label(m), [float(getattr(r.score.efficiency, attribute)) for r in suite.runs if r.model == m])
            for m in suite.models]))
    table = ["<table><tr><th>model</th>" + "".join(f"<th>{html.escape(k)}</th>" for k in
                                                      reliability(suite, suite.models[0]))
             + "</tr>"] if suite.models else []
    for model in suite.models:
        table.append(f"<tr><td>{html.escape(_label(model))}</td>" + "".join(
            f"<td>{v:.2f}</td>" for v in reliability(suite, model).values()) + "</tr>")
    table.append("</table>")
    failures = "".join(
        f"<li>{html.escape(r.scenario)} · {html.escape(r.model)} · trial {r.trial}: "
        + html.escape("; ".join(f"{c.name}: {c.detail}" for c in r.score.failures())) + "</li>"
        for r in suite.runs if not r.passed)
    body = "".join(f"<section>{s}</section>" for s in sections)
    return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>sre-agent evals</title>"
            "<style>body{font-family:sans-serif;margin:2em;max-width:960px}section{margin:1.5em 0}"
            "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px}</style></head><body>"
            f"<h1>sre-agent evals</h1><p>{len(suite.scenarios)} scenarios × {len(suite.models)} models × "
            f"{suite.trials} trials; started {html.escape(suite.started)}.</p>{body}"
            f"<h2>Reliability (pass@k, pass^k)</h2>{''.join(table)}"
            f"<h2>Failed runs</h2><ul>{failures or '<li>none</li>'}</ul></body></html>\n")


def write_reports(suite: SuiteResult, directory: Path) -> dict[str, Path]:
    paths = {name: directory / name for name in ("results.json", "junit.xml", "report.md", "report.html")}
    write_atomically(paths["results.json"], suite.model_dump_json(indent=1))
    write_junit(suite, paths["junit.xml"])
    write_atomically(paths["report.md"], markdown(suite))
    write_atomically(paths["report.html"], html_report(suite))
    return paths
