"""The workout report: one self-contained HTML file with its plots embedded.

Built from a session document (`session.json` of `sim run` or `sim plan`),
so `suitctl sim report DIR` can rebuild it at any time. The strip pictures
(each client's levels per area, the group's sensation) are SVG written by
`sim/strip_picture.py`, force and fatigue per area are small panels by
`sim/area_panels.py`: SVG written by hand, fast (matplotlib took 25 s of CPU
for 20 clients, nearly all of it creating ticks) and with every peak kept.
They are embedded as base64 data, so the file opens offline.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

import numpy as np

from sim.area_panels import Panel, render_panels
from sim.strip_picture import FloatArray, Line, Strip, StripPicture
from suit_controller.commands import printable

SVG = "image/svg+xml"


def _svg(picture: StripPicture) -> str:
    return base64.b64encode(picture.svg().encode("utf-8")).decode("ascii")


def _all_levels(doc: dict[str, Any]) -> FloatArray:
    """Every client's levels, (time, client, channel): read from the document once per report."""
    return np.asarray(doc["body"]["timeline"]["levels_mA"], dtype=np.float64)


def _levels_plot(doc: dict[str, Any], client: int, everyone: FloatArray | None = None) -> str:
    """One client's level per body area over the class, as SVG (base64)."""
    tl = doc["body"]["timeline"]
    levels = (_all_levels(doc) if everyone is None else everyone)[:, client, :]
    channels = doc["channels"]
    peak = float(levels.max()) if levels.size else 0.0
    return _svg(
        StripPicture(
            title=f"Levels per area, {printable(doc['body']['clients'][client]['client'])} "
            f"(peak {peak:.0f} mA; phases shaded: warm-up, suit, stretch)",
            t_s=np.asarray(tl["t"], dtype=np.float64),
            strips=[
                Strip(_label(ch), levels[:, j], f"{levels[:, j].max():.0f} mA")
                for j, ch in enumerate(channels)
            ],
            top_value=max(1.0, peak),
            segments=doc["segments"],
        )
    )


def _label(channel: str) -> str:
    from suit_controller.studio.words import area_label

    return area_label(channel)


def _strips_plot(doc: dict[str, Any]) -> str:
    """Sensation over time as small multiples: one strip per client, the CR10 7 line labelled."""
    tl = doc["body"]["timeline"]
    cr = np.asarray(tl["cr10"], dtype=np.float64)
    clients = doc["body"]["clients"]
    return _svg(
        StripPicture(
            title="How it feels over time (Borg CR10, 0-10), one strip per client",
            t_s=np.asarray(tl["t"], dtype=np.float64),
            strips=[
                Strip(printable(c["client"]), cr[:, i], f"max {c['max_cr10']:.1f}")
                for i, c in enumerate(clients)
            ],
            top_value=10.5,
            segments=doc["segments"],
            colour="#1d3557",
            lines=[Line(7, "CR10 7: very strong")],
        )
    )


def _areas_plot(doc: dict[str, Any]) -> str:
    """Force and fatigue per body area as small multiples (mean of the group), as SVG (base64)."""
    tl = doc["body"]["timeline"]
    force = np.asarray(tl["force_N"], dtype=np.float64).mean(axis=1)
    fatigue = np.asarray(tl["fatigue"], dtype=np.float64).mean(axis=1)
    used = [j for j in range(len(doc["channels"])) if force[:, j].max() > 0]
    svg = render_panels(
        "Force (solid) and force left (dashed, 1 = fresh) per body area, mean of the group",
        np.asarray(tl["t"], dtype=np.float64),
        [
            Panel(
                f"{_label(doc['channels'][j])}: up to {force[:, j].max():.0f} N",
                force[:, j],
                fatigue[:, j],
            )
            for j in used
        ],
        doc["segments"],
    )
    return base64.b64encode(svg.encode("utf-8")).decode("ascii")


def _trainer_html(doc: dict[str, Any]) -> str:
    """The words first: suggestions for the group, then each client by body area."""
    words = doc["trainer"]
    items = "".join(f"<li>{html.escape(s['text'])}</li>" for s in words["suggestions"])
    suggestions = (
        f"<ul class='sugg'>{items}</ul>"
        if items
        else (
            "<p>No suggestions: every area works the muscle and no one will find it too strong.</p>"
        )
    )
    clients = []
    for c in words["clients"]:
        areas = "".join(
            f"<li class='{'ok' if a['recruits'] and not a['too_strong'] else 'no'}'>"
            f"{html.escape(a['says'])}</li>"
            for a in c["areas"]
        )
        clients.append(
            f"<details><summary>{html.escape(c['client'])}: feels {html.escape(c['feels'])} "
            f"at most (CR10 {c['max_cr10']})</summary><ul>{areas}</ul></details>"
        )
    compare = ""
    if "compare" in doc:
        other = doc["compare"]

        def column(title: str, w: dict[str, Any], cr: list[float]) -> str:
            sug = "".join(f"<li>{html.escape(s['text'])}</li>" for s in w["suggestions"])
            return (f"<div><h3>{html.escape(title)}</h3><ul>{sug or '<li>No suggestions</li>'}"
                    f"</ul><p>Highest CR10 per client: {', '.join(f'{x:.1f}' for x in cr)}</p>"
                    "</div>")  # fmt: skip

        mine = [c["max_cr10"] for c in doc["body"]["clients"]]
        compare = (
            "<h2>Side by side on the same simulated group</h2><div class='compare'>"
            + column(doc["workout"], words, mine)
            + column(other["workout"], other["trainer"], other["max_cr10"])
            + "</div>"
        )
    return (
        "<h2>What the simulated clients will need</h2>" + suggestions
        + "<h2>Per client and body area</h2>" + "".join(clients) + compare
    )  # fmt: skip


def _table(doc: dict[str, Any]) -> str:
    rows = []
    for c in doc["body"]["clients"]:
        for ch, v in c["channels"].items():
            if v["stim_s"] <= 0:
                continue
            rows.append(
                f"<tr><td>{html.escape(c['client'])}</td><td>{html.escape(ch)}</td>"
                f"<td>{v['stim_s'] / 60:.1f}</td><td>{v['peak_force_N']:.0f}</td>"
                f"<td>{v['force_time_Ns']:.0f}</td><td>{v['fatigue_end']:.2f}</td>"
                f"<td>{100 * v['recruited_fraction']:.0f} %</td>"
                f"<td>{v['max_density_mA_cm2']:.2f}</td></tr>"
            )
    head = (
        "<tr><th>client</th><th>channel</th><th>stimulated, min</th><th>peak force, N</th>"
        "<th>force-time, N·s</th><th>capacity at end</th><th>time recruiting</th>"
        "<th>max density, mA/cm²</th></tr>"
    )
    return f"<table>{head}{''.join(rows)}</table>"


def render_report(doc: dict[str, Any]) -> str:
    """The report as one HTML string."""
    body = doc["body"]
    warnings = body["warnings"]
    requests = body["requests"]
    warn_html = (
        "".join(f"<li>{html.escape(w['message'])}</li>" for w in warnings)
        or "<li>No warnings.</li>"
    )
    req_html = (
        "".join(
            f"<li>{int(r['t'] // 60):02d}:{int(r['t'] % 60):02d} — {html.escape(r['message'])}</li>"
            for r in requests[:50]
        )
        or "<li>Nobody asked for less.</li>"
    )
    if "trainer" in doc:
        words = _trainer_html(doc)
        plots = [
            ("How it feels over time", _strips_plot(doc)),
            ("Force and fatigue per body area", _areas_plot(doc)),
        ]
    else:
        words = ""
        plots = [
            ("Levels", _levels_plot(doc, 0)),
            ("Force and fatigue", _areas_plot(doc)),
            ("Sensation", _strips_plot(doc)),
        ]
    imgs = "".join(
        f'<h2>{title}</h2><img class="plot" alt="{title}" src="data:{SVG};base64,{data}">'
        for title, data in plots
    )
    if "trainer" in doc:  # the levels of any client, one picture each, opened on demand
        everyone = _all_levels(doc)
        imgs += "<h2>Levels of one client</h2>" + "".join(
            f"<details{' open' if i == 0 else ''}><summary>{html.escape(c['client'])}</summary>"
            f'<img class="plot" alt="Levels of {html.escape(c["client"])}" '
            f'src="data:{SVG};base64,{_levels_plot(doc, i, everyone)}"></details>'
            for i, c in enumerate(body["clients"][:24])
        )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Workout report — {html.escape(doc["workout"])}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #111; }}
h1 {{ margin-bottom: 0.2em; }} .meta {{ color: #555; }}
.warn li {{ color: #991b1b; }} img.plot {{ width: 100%; }}
.sugg li {{ font-size: 1.1em; margin: .3em 0; }} li.no {{ color: #8b0000; }}
.compare {{ display: grid; grid-template-columns: 1fr 1fr; gap: 1em; }}
table {{ border-collapse: collapse; font-size: 0.85em; }}
td, th {{ border-bottom: 1px solid #ddd; padding: 2px 8px; text-align: right; }}
td:first-child, td:nth-child(2), th:first-child, th:nth-child(2) {{ text-align: left; }}
</style></head><body>
<h1>{html.escape(doc["workout"])}</h1>
<p class="meta">{html.escape(doc.get("mode", "run"))} · {len(body["clients"])} client(s) ·
{doc.get("plan_s", 0) / 60:.1f} min · ended: {html.escape(str(doc.get("ended", "")))}</p>
{words}
<h2>Warnings</h2><ul class="warn">{warn_html}</ul>
<h2>Clients asking for less</h2><ul>{req_html}</ul>
{imgs}
<h2>Per client and channel</h2>{_table(doc)}
</body></html>
"""


def write_report(doc: dict[str, Any], out_dir: Path) -> Path:
    """Write `out_dir/report.html` and return its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "report.html"
    path.write_text(render_report(doc), encoding="utf-8")
    return path
