"""Reports of real runs: JSON, JUnit XML (parsed), the HTML page (broken module marked, XSS-safe), the table."""

from __future__ import annotations

import json
import re
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from baseline_guard.checks import CheckRun, load_suites, run_checks
from baseline_guard.checks.html_report import to_html
from baseline_guard.checks.reports import summary_table, to_json, to_junit_xml, write_reports
from business_sandbox import BusinessSandbox, Fault

SUITES = {
    "pricing.yaml": """
        scenarios:
          - name: quote-paris
            tags: [pricing]
            steps:
              - {name: search, module: search, interface: GET /hotels, path: /hotel-search/hotels,
                 query: {city: Paris}, capture: {hotel_id: "$.hotels[0].id"}, assert: {status: 200}}
              - name: quote
                module: pricing
                interface: POST /quotes
                method: POST
                path: /quote/quotes
                headers: {Authorization: Bearer top-secret-token}
                json: {hotel_id: "{{ hotel_id }}", room_type: double, nights: 3, guests: 2}
                capture: {ppn: $.price_per_night}
                assert: {status: 201, json: [{path: $.total, equals_expr: ppn * 3}]}
              - {name: read, module: pricing, interface: "GET /quotes/{id}", path: /quote/quotes/x}
          - name: quote-rome
            steps:
              - {name: quote, module: pricing, interface: POST /quotes, method: POST, path: /quote/quotes,
                 json: {hotel_id: h-3001, room_type: single, nights: 2, guests: 1},
                 capture: {ppn: $.price_per_night}, assert: {status: 201, json: [{path: $.total, equals_expr: ppn * 2}]}}
    """,
    "search.yaml": """
        scenarios:
          - name: cities
            steps:
              - {name: cities, module: search, interface: GET /cities, path: /hotel-search/cities, assert: {status: 200}}
          - name: hostile-body
            steps:
              - name: raw
                module: search
                interface: GET /raw
                path: /test/raw
                query: {body: "<script>alert('x')</script><img src=x onerror=alert(1)>", status: 500}
                assert: {status: 200}
    """,
}


@pytest.fixture
def failed_run(tmp_path: Path, sandbox: BusinessSandbox) -> CheckRun:
    for name, text in SUITES.items():
        (tmp_path / name).write_text(textwrap.dedent(text))
    sandbox.state.faults["quote"] = Fault("wrong_answer", version="1.9.2-wrong")
    return run_checks(load_suites(tmp_path), sandbox.url, environment="baseline", routing_key="rk-1")


def test_json_report(failed_run: CheckRun) -> None:
    document = json.loads(to_json(failed_run))
    assert document["summary"]["passed"] is False
    assert (document["summary"]["scenarios"], document["summary"]["failed_scenarios"]) == (4, 3)
    assert document["summary"]["broken"][0] == {
        "module": "pricing",
        "interface": "POST /quotes",
        "scenarios": 2,
        "instances": ["baseline/quote/1 v1.9.2-wrong", "baseline/quote/2 v1.9.2-wrong"],
    }
    assert CheckRun.model_validate(document).broken_modules() == failed_run.broken_modules()
    assert "top-secret-token" not in to_json(failed_run)


def test_junit_xml_parses_and_counts_match(failed_run: CheckRun) -> None:
    root = ET.fromstring(to_junit_xml(failed_run))
    assert (root.tag, root.get("tests"), root.get("failures")) == ("testsuites", "4", "3")
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert set(suites) == {"pricing", "search"}
    assert (suites["pricing"].get("tests"), suites["pricing"].get("failures")) == ("2", "2")
    assert (suites["search"].get("tests"), suites["search"].get("failures")) == ("2", "1")
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert cases["cities"].find("failure") is None
    failure = cases["quote-paris"].find("failure")
    assert failure is not None and failure.get("type") == "assertion"
    assert failure.get("message") == "pricing · POST /quotes: $.total is 130.0, expected 390.0"
    assert "answered by: baseline/quote/" in (failure.text or "")
    hostile = cases["hostile-body"].find("failure")
    assert hostile is not None and "<script>alert('x')</script>" in (
        hostile.text or ""
    )  # escaped in XML, intact
    assert "top-secret-token" not in to_junit_xml(failed_run)


def test_html_marks_the_broken_module_and_escapes_responses(failed_run: CheckRun) -> None:
    page = to_html(failed_run)
    assert "<script" not in page and "onerror=alert" not in page.replace("onerror=alert(1)&gt;", "")
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert not re.search(r"""(src|href)=["']?https?:""", page) and "<link" not in page
    assert "broken: <b>pricing · POST /quotes (2 scenarios) on baseline/quote/1 v1.9.2-wrong" in page
    quote_paris = page[page.index('id="pricing--quote-paris"') :].split("</article>")[0]
    boxes = re.findall(
        r'<div class="box (\w+)"[^>]*><span class="mod">(\w+)</span><span class="ifc mono">([^<]+)',
        quote_paris,
    )
    assert boxes == [
        ("passed", "search", "GET /hotels"),
        ("failed", "pricing", "POST /quotes"),
        ("not_run", "pricing", "GET /quotes/{id}"),
    ]
    assert "$.total is 130.0, expected 390.0" in quote_paris and "&quot;total&quot;:130.0" in quote_paris
    module_map = page[page.index('<section class="map">') :].split("</section>")[0]
    assert re.search(r'class="box bad"><span class="mod">pricing', module_map)
    assert re.search(r'class="box ok"><span class="mod">search', module_map) is None  # search broke too (raw)
    assert "top-secret-token" not in page and "Authorization: &lt;redacted&gt;" in page


def test_summary_table(failed_run: CheckRun) -> None:
    table = summary_table(failed_run)
    lines = table.splitlines()
    assert lines[0].startswith(
        "Business checks on baseline (routing key rk-1): 4 scenarios, 1 passed, 3 FAILED"
    )
    assert (
        lines[1]
        == "  BROKEN  pricing · POST /quotes (2 scenarios) on baseline/quote/1 v1.9.2-wrong, baseline/quote/2 v1.9.2-wrong"
    )
    rows = [line for line in lines if line.startswith(("pricing ", "search "))]
    assert [r.split()[1:3] for r in rows] == [
        ["quote-paris", "FAIL"],
        ["quote-rome", "FAIL"],
        ["hostile-body", "FAIL"],
        ["cities", "PASS"],
    ]
    assert "1/3" in rows[0] and "pricing · POST /quotes: $.total is 130.0, expected 390.0" in rows[0]
    assert all(len(line) <= 140 for line in lines)


def test_write_reports_creates_the_files(failed_run: CheckRun, tmp_path: Path) -> None:
    written = write_reports(
        failed_run,
        json_path=tmp_path / "r/a.json",
        junit_path=tmp_path / "r/a.xml",
        html_path=tmp_path / "r/a.html",
    )
    assert [p.name for p in written] == ["a.json", "a.xml", "a.html"]
    assert json.loads((tmp_path / "r/a.json").read_text())["summary"]["failed_scenarios"] == 3
    assert (tmp_path / "r/a.html").read_text().startswith("<!DOCTYPE html>")


def test_passing_run_page_and_table(tmp_path: Path, sandbox: BusinessSandbox) -> None:
    (tmp_path / "s.yaml").write_text(
        textwrap.dedent(SUITES["search.yaml"]).split("  - name: hostile-body")[0]
    )
    run = run_checks(load_suites(tmp_path), sandbox.url, environment="baseline")
    assert run.passed
    assert '<header class="summary pass">' in to_html(run)
    assert "1 scenarios, 1 passed, all passed" in summary_table(run)
