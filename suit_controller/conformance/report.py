"""A conformance run as a terminal table (rich), JUnit XML and a self-contained HTML page."""

from __future__ import annotations

import html
import xml.etree.ElementTree as ET
from pathlib import Path

from rich.console import Console
from rich.table import Table

from suit_controller.conformance.run import ConformanceRun

_MARK = {"passed": "[green]pass[/]", "failed": "[bold red]FAIL[/]", "skipped": "[yellow]skip[/]"}


def _title(run: ConformanceRun) -> str:
    label = f" ({run.label})" if run.label else ""
    return f"Suit protocol v2 conformance: {run.address}{label}"


def _summary(run: ConformanceRun) -> str:
    verdict = "CONFORMS" if run.passed else "DOES NOT CONFORM"
    return (
        f"{verdict}: {run.count('passed')} passed, {run.count('failed')} failed, "
        f"{run.count('skipped')} skipped of {len(run.results)} checks"
    )


def print_table(run: ConformanceRun, console: Console, *, transcripts: bool = True) -> None:
    """The results, one row a check; a failed check's bytes below the table."""
    table = Table(title=_title(run), title_justify="left")
    table.add_column("check", style="cyan", no_wrap=True)
    table.add_column("result")
    table.add_column("rule / what was seen")
    for r in run.results:
        text = _escape(r.rule)
        if r.message:
            text += f"\n[dim]{_escape(r.message)}[/]"
        table.add_row(r.name, _MARK[r.outcome], text)
    console.print(table)
    if transcripts:
        for r in run.results:
            if r.outcome == "failed" and any(("→" in t or "←" in t) for t in r.transcript):
                console.print(f"\n[bold red]{r.name}[/]: bytes sent (→) and seen (←)")
                for line in r.transcript:
                    console.print(line, highlight=False, markup=False, soft_wrap=True)
    style = "bold green" if run.passed else "bold red"
    console.print(f"[{style}]{_summary(run)}[/]")


def _escape(text: str) -> str:
    return text.replace("[", "\\[")


def junit_xml(run: ConformanceRun) -> str:
    """JUnit XML: one testsuite, one testcase a check (classname: the rule's group)."""
    suite = ET.Element(
        "testsuite",
        name=_title(run),
        tests=str(len(run.results)),
        failures=str(run.count("failed")),
        skipped=str(run.count("skipped")),
        errors="0",
        time=f"{sum(r.duration_s for r in run.results):.3f}",
        timestamp=run.started_at,
    )
    for r in run.results:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"conformance.{r.name.split('.')[0]}",
            name=r.name,
            time=f"{r.duration_s:.3f}",
        )
        if r.outcome == "failed":
            failure = ET.SubElement(case, "failure", message=r.message)
            failure.text = "\n".join([r.rule, "", *r.transcript])
        elif r.outcome == "skipped":
            ET.SubElement(case, "skipped", message=r.message)
        ET.SubElement(case, "system-out").text = r.rule
    ET.indent(suite)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suite, encoding="unicode")


_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;width:100%}
td,th{border-bottom:1px solid #ddd;padding:.4em .6em;text-align:left;vertical-align:top}
.passed{color:#1a7f37}.failed{color:#c62828;font-weight:bold}.skipped{color:#9a6700}
code{font-family:ui-monospace,monospace}
pre{background:#f6f8fa;padding:.6em;overflow-x:auto;font-size:.85em}
.verdict{font-size:1.2em;font-weight:bold}
"""


def html_report(run: ConformanceRun) -> str:
    """One HTML page, no external files: the table, and each failure's bytes."""
    e = html.escape
    rows = []
    for r in run.results:
        detail = f"<div>{e(r.message)}</div>" if r.message else ""
        if r.transcript:
            detail += (
                "<details><summary>bytes sent (→) and seen (←)</summary><pre>"
                + e("\n".join(r.transcript))
                + "</pre></details>"
            )
        rows.append(
            f'<tr><td><code>{e(r.name)}</code></td><td class="{r.outcome}">{r.outcome}</td>'
            f"<td>{e(r.rule)}{detail}</td><td>{r.duration_s:.2f} s</td></tr>"
        )
    verdict_class = "passed" if run.passed else "failed"
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{e(_title(run))}</title><style>{_CSS}</style></head><body>"
        f"<h1>{e(_title(run))}</h1>"
        f'<p class="verdict {verdict_class}">{e(_summary(run))}</p>'
        f"<p>Started {e(run.started_at)}. Rules: docs/protocol.md (suit protocol version 2).</p>"
        "<table><thead><tr><th>check</th><th>result</th><th>rule</th><th>time</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></body></html>\n"
    )


def write_reports(run: ConformanceRun, out_dir: Path) -> list[Path]:
    """conformance.xml (JUnit) and conformance.html in `out_dir` (made if missing)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    xml_path, html_path = out_dir / "conformance.xml", out_dir / "conformance.html"
    xml_path.write_text(junit_xml(run), encoding="utf-8")
    html_path.write_text(html_report(run), encoding="utf-8")
    return [xml_path, html_path]
