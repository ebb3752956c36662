"""The CLI as a real subprocess: exit codes 0/1/2, the summary table, report files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from baseline_guard.checks.__main__ import main
from business_sandbox import BusinessSandbox, Fault

REPO = Path(__file__).resolve().parents[4]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_RUNTIME_DIR": os.environ.get("XDG_RUNTIME_DIR", "/tmp/runtime-0")}
    return subprocess.run(
        [sys.executable, "-m", "baseline_guard.checks", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
    )


def test_all_passed_exits_0_and_prints_the_table(sandbox: BusinessSandbox) -> None:
    result = cli("--base-url", sandbox.url, "--environment", "baseline", "--tags", "smoke")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Business checks on baseline: 5 scenarios, 5 passed, all passed" in result.stdout
    assert "book-paris-double-3-nights" in result.stdout


def test_failures_exit_1_and_write_reports(sandbox: BusinessSandbox, tmp_path: Path) -> None:
    sandbox.state.faults["order"] = Fault("fails_health")
    result = cli(
        "--base-url",
        sandbox.url,
        "--environment",
        "proj-a",
        "--routing-key",
        "rk-a",
        "--tags",
        "booking",
        "--json",
        str(tmp_path / "r.json"),
        "--junit",
        str(tmp_path / "r.xml"),
        "--html",
        str(tmp_path / "r.html"),
    )
    assert result.returncode == 1, result.stdout + result.stderr
    # 10 bookings and 2 bad-order scenarios (a 500 where a 404/400 was expected); 1 read of an unknown order
    assert "BROKEN  booking · POST /orders (12 scenarios)" in result.stdout
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["summary"]["broken"][0]["module"] == "booking" and report["routing_key"] == "rk-a"
    assert (tmp_path / "r.xml").exists() and (tmp_path / "r.html").exists()
    assert {r["headers"].get("x-route-key") for r in sandbox.state.requests} == {"rk-a"}


def test_bad_suite_exits_2_naming_the_spot(tmp_path: Path, sandbox: BusinessSandbox) -> None:
    bad = tmp_path / "booking.yaml"
    bad.write_text(
        "scenarios:\n  - name: s\n    steps:\n      - {name: q, module: m, interface: i, path: /x, assert: {status: abc}}\n"
    )
    result = cli("--base-url", sandbox.url, "--environment", "baseline", "--suites", str(bad))
    assert result.returncode == 2
    assert f"{bad}: scenario 's' step 1 'q': assert.status: Input should be a valid integer" in result.stderr
    assert sandbox.state.requests == []  # no run happened


def test_bad_arguments_exit_2(sandbox: BusinessSandbox, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as missing:
        main(["--environment", "baseline"])  # --base-url missing: argparse refuses
    assert missing.value.code == 2
    assert main(["--base-url", "not-a-url", "--environment", "baseline"]) == 2
    assert "base URL must look like http://host:port" in capsys.readouterr().err
    assert main(["--base-url", sandbox.url, "--environment", "baseline", "--tags", "nope"]) == 2
    assert "no scenario has any of the tags ['nope']" in capsys.readouterr().err
    assert main(["--base-url", sandbox.url, "--environment", "baseline", "--var", "novalue"]) == 2
    assert "--var expects NAME=VALUE, got 'novalue'" in capsys.readouterr().err
    assert sandbox.state.requests == []
