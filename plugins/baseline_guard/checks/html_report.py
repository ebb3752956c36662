"""A self-contained HTML page of a business-check run (inline CSS, no scripts, no external assets).

Top: the verdict, counts and the broken interfaces with the instances that answered wrongly. Then a
module map (the business chain, each module red or green with its interfaces). Then every failed
scenario drawn as a chain of step boxes (green passed, red failed, grey not run) with the failed
check, expected vs actual, the request and the response excerpt beside it. Passed scenarios follow,
folded. Everything that came from a response or a suite is escaped.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

from baseline_guard.checks.findings import broken_lines, suspect_lines
from baseline_guard.checks.results import CheckRun, Failure, InterfaceHealth, ScenarioResult, StepResult

CSS = """
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1f2328;background:#f6f8fa}
main{max-width:1280px;margin:0 auto;padding:20px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 10px}
code,pre,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px}
.summary{border-radius:10px;padding:16px 20px;color:#fff}
.summary.pass{background:#1a7f37}.summary.fail{background:#cf222e}
.summary .meta{opacity:.9;margin:2px 0 10px}
.counts{font-size:16px}.counts b{font-size:26px;margin-right:4px}
.broken{margin:10px 0 0;padding:0;list-style:none}
.broken li{background:rgba(255,255,255,.16);border-radius:6px;padding:5px 10px;margin-top:5px}
.chain{display:flex;flex-wrap:wrap;align-items:stretch;gap:0;margin:8px 0;padding:0;list-style:none}
.chain>li{display:flex;align-items:center}
.chain>li+li::before{content:"\\2192";font-size:20px;color:#8c959f;padding:0 8px}
.box{border:2px solid;border-radius:8px;padding:6px 10px;min-width:120px;background:#fff}
.box .mod{font-weight:700;display:block}.box .ifc{font-size:12.5px;display:block}
.box .st{font-size:11.5px;color:#57606a;display:block}
.passed,.ok{border-color:#1a7f37;background:#dafbe1}
.failed,.bad{border-color:#cf222e;background:#ffebe9}
.not_run{border-color:#d0d7de;background:#eaeef2;color:#6e7781}
.card{background:#fff;border:1px solid #d0d7de;border-radius:10px;padding:12px 16px;margin:12px 0}
.card.failedcard{border-left:6px solid #cf222e}
.card h3{margin:0;font-size:15px}.card .sub{color:#57606a;font-size:12.5px}
.tag{display:inline-block;background:#ddf4ff;color:#0969da;border-radius:10px;padding:0 7px;margin-right:3px;font-size:11.5px}
.why{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:12px;margin-top:8px}
.why table{border-collapse:collapse;width:100%}.why td,.why th{text-align:left;vertical-align:top;padding:3px 6px;border-bottom:1px solid #eaeef2}
.why th{width:110px;color:#57606a;font-weight:600}
pre{background:#f6f8fa;border:1px solid #d0d7de;border-radius:6px;padding:8px;white-space:pre-wrap;word-break:break-all;max-height:320px;overflow:auto;margin:4px 0}
.msg{font-weight:600;color:#a40e26}
.map .box{min-width:190px}.map ul{margin:4px 0 0;padding-left:16px;font-size:12.5px}
.map li.badi{color:#a40e26;font-weight:600}
details summary{cursor:pointer;font-weight:600}
@media (max-width:800px){.why{grid-template-columns:1fr}}
"""


def to_html(run: CheckRun) -> str:
    """The report page as one HTML string."""
    failed = run.failed_scenarios
    title = f"Business checks · {run.environment} · " + (
        "all passed" if run.passed else f"{len(failed)} failed"
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body><main>",
        _summary(run),
        _module_map(run),
    ]
    if failed:
        parts.append(f"<h2>Failed scenarios ({len(failed)})</h2>")
        parts.extend(_scenario(s) for s in failed)
    passed = [s for s in run.scenarios if s.passed]
    if passed:
        parts.append(f"<h2>Passed scenarios ({len(passed)})</h2><details><summary>show the chains</summary>")
        parts.extend(_scenario(s) for s in passed)
        parts.append("</details>")
    parts.append("</main></body></html>")
    return "\n".join(parts)


def _summary(run: CheckRun) -> str:
    state = "pass" if run.passed else "fail"
    routing = f" · routing key <code>{_e(run.routing_key)}</code>" if run.routing_key else ""
    tags = f" · tags {_e(', '.join(run.tags))}" if run.tags else ""
    broken = "".join(f"<li>broken: <b>{_e(line)}</b></li>" for line in broken_lines(run))
    broken += "".join(f"<li>suspect: {_e(line)}</li>" for line in suspect_lines(run))
    return (
        f'<header class="summary {state}"><h1>Business checks · {_e(run.environment)}</h1>'
        f'<div class="meta">{_e(run.base_url)}{routing}{tags} · started '
        f"{_e(run.started_at.isoformat(timespec='seconds'))} · {run.duration_ms / 1000:.2f} s</div>"
        f'<div class="counts"><b>{run.passed_count}</b>passed &nbsp; <b>{len(run.failed_scenarios)}</b>failed'
        f" &nbsp; of {len(run.scenarios)} scenarios</div>"
        f'<ul class="broken">{broken}</ul></header>'
    )


def _module_map(run: CheckRun) -> str:
    rows: dict[str, list[InterfaceHealth]] = {}
    for row in run.interface_health():
        rows.setdefault(row.module, []).append(row)
    boxes = []
    for module in run.module_order():
        interfaces = rows.get(module, [])
        bad = any(r.failed for r in interfaces)
        items = "".join(_interface_item(r) for r in interfaces)
        boxes.append(
            f'<li><div class="box {"bad" if bad else "ok"}"><span class="mod">{_e(module)}</span>'
            f"<ul>{items}</ul></div></li>"
        )
    return f'<h2>Modules</h2><section class="map"><ol class="chain">{"".join(boxes)}</ol></section>'


def _interface_item(row: InterfaceHealth) -> str:
    counts = f"{row.passed} ok"
    if row.failed:
        counts += f", {row.failed} failed"
        if row.failed_on:
            counts += " on " + ", ".join(f"{k} ({v})" for k, v in sorted(row.failed_on.items()))
    return f'<li class="{"badi" if row.failed else ""}">{_e(row.interface)}: {_e(counts)}</li>'


def _scenario(scenario: ScenarioResult) -> str:
    tags = "".join(f'<span class="tag">{_e(t)}</span>' for t in scenario.tags)
    description = f" — {_e(scenario.description)}" if scenario.description else ""
    chain = "".join(_step_box(step) for step in scenario.steps)
    why = _failure(scenario.failure) if scenario.failure else ""
    css = "card failedcard" if scenario.failure else "card"
    return (
        f'<article class="{css}" id="{_e(scenario.suite)}--{_e(scenario.name)}">'
        f"<h3>{_e(scenario.name)}</h3>"
        f'<div class="sub">suite {_e(scenario.suite)} · {scenario.duration_ms:.0f} ms · trace '
        f'<span class="mono">{_e(scenario.trace_id)}</span> {tags}{description}</div>'
        f'<ol class="chain">{chain}</ol>{why}</article>'
    )


def _step_box(step: StepResult) -> str:
    facts = []
    if step.http_status is not None:
        facts.append(str(step.http_status))
    if step.status.value != "not_run":
        facts.append(f"{step.duration_ms:.0f} ms")
    if step.attempts > 1:
        facts.append(f"{step.attempts} attempts")
    if step.instance:
        facts.append(step.instance + (f" v{step.version}" if step.version else ""))
    if step.status.value == "not_run":
        facts.append("not run")
    return (
        f'<li><div class="box {step.status.value}" title="{_e(step.name)}">'
        f'<span class="mod">{_e(step.module)}</span><span class="ifc mono">{_e(step.interface)}</span>'
        f'<span class="st">{_e(" · ".join(facts))}</span></div></li>'
    )


def _failure(failure: Failure) -> str:
    left = [
        f'<div class="msg">{_e(failure.where)} — {_e(failure.message)}</div><table>',
        _row("step", f"{failure.step_number}. {failure.step}"),
        _row("kind", failure.kind.value),
        _row("check", failure.check),
        _row("expected", _json(failure.expected)),
        _row("actual", _json(failure.actual)),
        _row("answered by", failure.instance_label or "(no instance headers)"),
        _row("trace id", failure.trace_id),
        "</table>",
    ]
    right = []
    if failure.request:
        request = failure.request
        headers = "\n".join(f"{k}: {v}" for k, v in request.headers.items())
        body = f"\n\n{_json(request.body)}" if request.body is not None else ""
        right.append(
            f"<b>Request</b><pre>{_e(request.method)} {_e(request.url)}\n{_e(headers)}{_e(body)}</pre>"
        )
    if failure.response:
        response = failure.response
        headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
        cut = " (first 2 KB)" if response.body_truncated else ""
        right.append(
            f"<b>Response</b> {response.status} in {response.elapsed_ms:.0f} ms{cut}"
            f"<pre>{_e(headers)}\n\n{_e(response.body_excerpt)}</pre>"
        )
    return f'<div class="why"><div>{"".join(left)}</div><div>{"".join(right)}</div></div>'


def _row(name: str, value: str) -> str:
    return f'<tr><th>{_e(name)}</th><td class="mono">{_e(value)}</td></tr>'


def _json(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def _e(value: Any) -> str:
    return escape(str(value), quote=True)
