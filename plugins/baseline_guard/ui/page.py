"""The "Baseline health" page: the health report as one self-contained HTML document."""

from __future__ import annotations

from datetime import datetime
from html import escape

from baseline_guard.health.protection import SLOTS, ProtectionItem
from baseline_guard.health.report import EnvironmentHealth, HealthReport, IncidentView
from baseline_guard.ui.charts import availability_bars, day_strip, percent

CSS = """
body{font:14px/1.45 system-ui,sans-serif;color:#263238;margin:16px;background:#fafafa}
h1{font-size:20px;margin:0 0 4px} .sub{color:#607d8b;margin-bottom:14px}
.env{background:#fff;border:1px solid #cfd8dc;border-left:8px solid #2e7d32;border-radius:6px;padding:12px 16px;margin:0 0 14px}
.env.failing{border-left-color:#c62828} .head{display:flex;gap:12px;align-items:baseline;flex-wrap:wrap}
.head h2{font-size:18px;margin:0} .badge{font-weight:700;color:#fff;border-radius:4px;padding:1px 8px}
.badge.passing{background:#2e7d32} .badge.failing{background:#c62828}
.grid{display:flex;gap:24px;flex-wrap:wrap;margin-top:8px} .grid>div{min-width:300px}
h3{font-size:13px;text-transform:uppercase;letter-spacing:.04em;color:#607d8b;margin:10px 0 4px}
.module{display:inline-block;border-radius:4px;padding:2px 8px;margin:0 6px 6px 0;border:1px solid}
.module.passing{border-color:#2e7d32;color:#1b5e20;background:#e8f5e9}
.module.failing{border-color:#c62828;color:#fff;background:#c62828}
.lbl{font-size:11px;fill:#607d8b} .val{font-size:12px;font-weight:700}
ul{margin:0;padding-left:18px} .muted{color:#90a4ae} a{color:#1565c0}
.slots{display:flex;gap:8px;flex-wrap:wrap} .slot{border:1px dashed #b0bec5;border-radius:4px;padding:4px 8px;min-width:150px}
.slot.ok{border:1px solid #2e7d32} .slot.attention{border:1px solid #c62828}
table.kpi td{padding:0 12px 0 0}
"""


def _t(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M} UTC" if value else "—"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    minutes = round(seconds / 60)
    if minutes < 1:
        return f"{seconds:.0f} s"
    if minutes < 120:
        return f"{minutes} min"
    return f"{minutes / 60:.1f} h"


def _link(url: str | None, text: str) -> str:
    return f'<a href="{escape(url)}" target="_top">{escape(text)}</a>' if url else ""


def _incident(i: IncidentView) -> str:
    where = escape(i.module or "environment")
    cause = (
        f" — after {escape(i.cause.source)} at {_t(i.cause.changed_at)}, detected in "
        f"{_duration(i.time_to_detect_s)}"
        if i.cause
        else ""
    )
    state = "since" if i.ended_at is None else "from"
    until = "" if i.ended_at is None else f" to {_t(i.ended_at)}"
    links = " ".join(
        filter(
            None,
            [_link(i.first_failed_run.url, "failing run"), _link(i.first_failed_run.report_url, "report")],
        )
    )
    return (
        f'<li class="incident" data-module="{where}"><b>{where}</b> {state} {_t(i.started_at)}{until} '
        f"({_duration(i.duration_s)}, {i.failed_checks} failed check{'s' if i.failed_checks != 1 else ''})"
        f"{cause} {links}</li>"
    )


def _slot(name: str, item: ProtectionItem) -> str:
    title = name.replace("_", " ")
    body = escape(item.summary) if item.summary else '<span class="muted">not available yet</span>'
    when = f"<br><small>{_t(item.at or item.since)}</small>" if (item.at or item.since) else ""
    link = f" {_link(item.link, 'open')}" if item.link else ""
    return f'<div class="slot {item.status}" data-slot="{name}"><b>{title}</b><br>{body}{when}{link}</div>'


def _environment(env: EnvironmentHealth, report: HealthReport) -> str:
    modules = "".join(
        f'<span class="module {m.state}" data-module="{escape(m.name)}" '
        f'title="{escape(" ".join(filter(None, [m.interface, m.instance, m.version and "v" + m.version])))}">'
        f"{escape(m.name)}{' · ' + escape(m.interface) if m.state == 'failing' and m.interface else ''}"
        f"{' on ' + escape(m.instance) if m.state == 'failing' and m.instance else ''}</span>"
        for m in env.modules
    )
    week = env.availability["7d"]
    incidents = "".join(_incident(i) for i in env.open_incidents) or '<li class="muted">none</li>'
    recent = "".join(_incident(i) for i in env.recent_incidents[:5]) or '<li class="muted">none</li>'
    flaky = (
        "".join(
            f"<li>{escape(f.scenario)} ({escape(f.module or '')}): {f.flaky_failures} of {f.failures} "
            "failures passed on re-check</li>"
            for f in env.flaky[:5]
        )
        or '<li class="muted">none</li>'
    )
    badge = "FAILING: " + ", ".join(env.failing_modules) if env.state == "failing" else "PASSING"
    last = " ".join(filter(None, [_link(env.last_run.url, "run"), _link(env.last_run.report_url, "report")]))
    return f"""
<section class="env {env.state}" data-environment="{escape(env.name)}" data-state="{env.state}">
 <div class="head"><h2>{escape(env.name)}</h2><span class="badge {env.state}">{escape(badge)}</span>
  <span class="muted">last checked {_t(env.last_checked_at)} {last}</span></div>
 <div class="grid">
  <div><h3>Availability (target {report.target:.0%})</h3>{availability_bars(env.availability, report.target)}
   <h3>Last 24 hours</h3>{day_strip(env.down_24h, report.generated_at)}</div>
  <div><h3>Modules now</h3><div class="modules">{modules}</div>
   <h3>Open incidents</h3><ul class="open">{incidents}</ul>
   <h3>Ended in the last 24 h</h3><ul>{recent}</ul></div>
  <div><h3>7 days</h3><table class="kpi"><tr><td>availability</td><td>{percent(week.availability)}</td></tr>
   <tr><td>incidents</td><td>{week.incidents}</td></tr>
   <tr><td>time to detect (median)</td><td>{_duration(week.time_to_detect_s)}</td></tr>
   <tr><td>time to recover (median)</td><td>{_duration(week.time_to_recover_s)}</td></tr></table>
   <h3>Flaky scenarios</h3><ul>{flaky}</ul></div>
 </div>
 <h3>Protection</h3><div class="slots">{"".join(_slot(s, getattr(env.protection, s)) for s in SLOTS)}</div>
</section>"""


def render(report: HealthReport) -> str:
    failing = [e.name for e in report.environments if e.state == "failing"]
    summary = (
        f"{len(failing)} of {len(report.environments)} environments failing: {', '.join(failing)}"
        if failing
        else f"all {len(report.environments)} environments passing"
    )
    body = "".join(_environment(e, report) for e in report.environments) or (
        '<p class="muted">No business check has been recorded yet.</p>'
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Baseline health</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head>
<body><h1>Baseline health</h1>
<div class="sub" id="summary">{escape(summary)} · generated {_t(report.generated_at)} ·
 <a href="api/health">JSON</a></div>
{body}
</body></html>"""
