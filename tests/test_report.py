"""Reporters: golden files for a fixed scan in every format, SARIF against the official
schema, the JSON fields, `--output`, and colour only on a terminal.

Regenerate the goldens after an intended change of output with
`UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_report.py` and review the diff.
"""

from __future__ import annotations

import io
import json
import os
import pty
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sentra_scan import CommitInfo, Finding, Location, ScanResult, Secret, Severity, Skipped, SkipReason
from sentra_scan.model import ScanStats
from sentra_scan.report import Masker, get_reporter
from sentra_scan.ruleset.examples import expand
from tests.helpers import SHARED, Repo, sentra

GOLDEN = Path(__file__).parent / "fixtures" / "golden"
GOLDEN_RULES = GOLDEN / "rules"
SARIF_SCHEMA = SHARED / "schemas" / "sarif-schema-2.1.0.json"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
ANSI = "\x1b["


def canaries() -> dict[str, str]:
    """The scan's secrets: fixed seeds, so the (redacted) output is the same every run."""
    return {
        "key": expand("dmo_{{lowalnum:24}}", "golden-key"),
        "allowed": expand("dmo_{{lowalnum:24}}", "golden-allowed"),
        "password": expand("{{alnum:20}}", "golden-password"),
        "hook": expand("{{alnum:20}}", "golden-hook"),
        "big": expand("dmo_{{lowalnum:24}}", "golden-big"),
    }


@pytest.fixture(scope="module")
def rule_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rule-cache")


@pytest.fixture(autouse=True)
def shared_rule_cache(hermetic_env: Path, rule_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """This module's tests share the parsed-rules cache (keyed on content, so sharing is
    safe): a cold cache costs every CLI run about a second."""
    monkeypatch.setenv("SENTRA_CACHE_DIR", str(rule_cache))


@pytest.fixture
def fixed_scan(repo: Repo) -> Repo:
    c = canaries()
    repo.write(".sentra.yaml", "max-file-size: 1KB\n")
    repo.write(
        "app.py",
        "import os\n\n"
        f'API_KEY = "{c["key"]}"\n'
        f'db_password = "{c["password"]}"\n'
        f'LEGACY_KEY = "{c["allowed"]}"  # sentra:allow demo-api-key\n'
        'PLACEHOLDER = "dmo_xxxxxxxxxxxxxxxxxxxxxxxx"\n',
    )
    repo.write("config/settings.ini", f"[alerts]\nwebhook = https://hooks.demo.test/{c['hook']}\n")
    repo.write("logo.png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + bytes(range(256)))
    repo.write("big.log", "log line\n" * 200 + f"key={c['big']}\n")
    return repo


def run_scan(repo: Repo, *args: str) -> subprocess.CompletedProcess[str]:
    return sentra(["scan", "--rules-dir", str(GOLDEN_RULES), *args, "."], repo.path)


def normalize(fmt: str, text: str) -> str:
    """Only what changes between runs or releases: the duration and the tool's version."""
    if fmt == "text":
        return text
    doc = json.loads(text)
    if fmt == "json":
        doc["stats"]["duration_s"] = 0.0
    else:
        doc["runs"][0]["tool"]["driver"]["version"] = "<version>"
    return json.dumps(doc, indent=2) + "\n"


def check_golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    for secret in canaries().values():
        assert secret not in actual
    if UPDATE:
        path.write_text(actual, encoding="utf-8")
        return
    assert path.is_file(), f"{path} missing: run with UPDATE_GOLDEN=1 to create it"
    assert actual == path.read_text(encoding="utf-8"), f"{name} differs; UPDATE_GOLDEN=1 regenerates it"


GOLDEN_CASES = [
    ("text", (), "scan.txt"),
    ("json", (), "scan.json"),
    ("sarif", (), "scan.sarif"),
    ("text", ("--show-suppressed",), "scan-show-suppressed.txt"),
    ("json", ("--show-suppressed",), "scan-show-suppressed.json"),
]


@pytest.mark.parametrize(("fmt", "extra", "golden"), GOLDEN_CASES, ids=[g for _, _, g in GOLDEN_CASES])
def test_golden(fixed_scan: Repo, fmt: str, extra: tuple[str, ...], golden: str) -> None:
    proc = run_scan(fixed_scan, "--format", fmt, *extra)
    assert proc.returncode == 1, proc.stderr
    check_golden(golden, normalize(fmt, proc.stdout))


def test_golden_files_hold_no_secret() -> None:
    for path in GOLDEN.glob("scan*"):
        text = path.read_text()
        for secret in canaries().values():
            assert secret not in text
            assert secret[4:14] not in text


def test_sarif_validates_against_the_schema(fixed_scan: Repo) -> None:
    if not SARIF_SCHEMA.is_file():
        pytest.skip(f"{SARIF_SCHEMA} not available")
    import jsonschema  # type: ignore[import-untyped,unused-ignore]

    schema = json.loads(SARIF_SCHEMA.read_text())
    validator_cls = jsonschema.validators.validator_for(schema)
    validator_cls.check_schema(schema)
    validator = validator_cls(schema)
    doc = json.loads(run_scan(fixed_scan, "--format", "sarif").stdout)
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)
    run = doc["runs"][0]
    assert {r["ruleId"] for r in run["results"]} == {"demo-api-key", "demo-password", "demo-webhook"}
    assert {r["level"] for r in run["results"]} == {"error", "warning", "note"}
    assert all(r["partialFingerprints"]["sentraFingerprint/v1"] for r in run["results"])
    notes = run["invocations"][0]["toolExecutionNotifications"]
    assert [n["message"]["text"] for n in notes] == ["big.log: not fully scanned: too large 1833 bytes > 1024"]


def test_sarif_of_a_clean_scan_validates(tmp_path: Path) -> None:
    if not SARIF_SCHEMA.is_file():
        pytest.skip(f"{SARIF_SCHEMA} not available")
    import jsonschema  # type: ignore[import-untyped,unused-ignore]

    out = io.StringIO()
    get_reporter("sarif").write(ScanResult(()), out)
    jsonschema.validate(json.loads(out.getvalue()), json.loads(SARIF_SCHEMA.read_text()))


def test_json_fields(fixed_scan: Repo) -> None:
    doc = json.loads(run_scan(fixed_scan, "--format", "json").stdout)
    assert doc["version"] == 1
    [key] = [f for f in doc["findings"] if f["rule_id"] == "demo-api-key"]
    assert set(key) >= {
        "rule_id",
        "description",
        "severity",
        "path",
        "line",
        "column",
        "commit",
        "fingerprint",
        "secret",
    }
    assert key["description"] == "Demo API key"
    assert key["severity"] == "critical"
    assert (key["path"], key["line"], key["column"]) == ("app.py", 3, 12)
    assert key["commit"] is None
    assert key["secret"] == "dmo_********"
    assert len(key["fingerprint"]) == 32
    stats = doc["stats"]
    assert stats["findings"] == len(doc["findings"]) == 3
    assert stats["complete"] is False
    assert isinstance(stats["duration_s"], float)
    assert {(s["path"], s["reason"]) for s in doc["skipped"]} == {("logo.png", "binary"), ("big.log", "too large")}


def test_output_file(fixed_scan: Repo, tmp_path: Path) -> None:
    for fmt in ("text", "json", "sarif"):  # the formats with golden files
        target = tmp_path / f"report.{fmt}"
        proc = run_scan(fixed_scan, "--format", fmt, "--output", str(target))
        assert proc.returncode == 1
        assert proc.stdout == ""
        written = target.read_text()
        assert normalize(fmt, written) == (GOLDEN / f"scan.{'txt' if fmt == 'text' else fmt}").read_text()
        assert ANSI not in written


def test_no_ansi_when_not_a_tty(fixed_scan: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR")
    proc = run_scan(fixed_scan)
    assert proc.returncode == 1
    assert ANSI not in proc.stdout + proc.stderr


def scan_on_a_tty(repo: Repo, env: dict[str, str]) -> str:
    main, secondary = pty.openpty()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "sentra_scan", "scan", "--rules-dir", str(GOLDEN_RULES), "app.py"],
            cwd=repo.path,
            stdout=secondary,
            stderr=subprocess.PIPE,
            env=env,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 1
        os.close(secondary)
        secondary = -1
        chunks = []
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # EIO: the other side is closed
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks).decode()
    finally:
        os.close(main)
        if secondary >= 0:
            os.close(secondary)


def test_colour_only_on_a_tty_and_without_no_color(fixed_scan: Repo) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "TERM")}
    assert ANSI in scan_on_a_tty(fixed_scan, env)
    assert ANSI not in scan_on_a_tty(fixed_scan, {**env, "NO_COLOR": "1"})
    assert ANSI not in scan_on_a_tty(fixed_scan, {**env, "TERM": "dumb"})


# --- reporters in-process --------------------------------------------------------------


def finding(secret: str, line_text: str, *, commit: CommitInfo | None = None, **kw: Any) -> Finding:
    column = line_text.index(secret) + 1
    values: dict[str, Any] = {
        "rule_id": "demo-api-key",
        "description": "Demo API key",
        "severity": Severity.HIGH,
        "location": Location("src/a b.py", 7, column, column + len(secret), commit),
        "fingerprint": "f" * 32,
        "secret": Secret(secret),
        "line_text": line_text,
        "hint": "move it",
        "env_name": "DEMO_API_KEY",
    }
    values.update(kw)
    return Finding(**values)


COMMIT = CommitInfo("0123456789abcdef0123456789abcdef01234567", "Ada", "ada@example.test", "2026-01-02T03:04:05+00:00")


def render(fmt: str, result: ScanResult) -> str:
    out = io.StringIO()
    get_reporter(fmt, tool_version="9.9").write(result, out)
    return out.getvalue()


def test_commit_in_every_format() -> None:
    secret = expand("dmo_{{lowalnum:24}}", "commit")
    result = ScanResult((finding(secret, f"key = {secret}", commit=COMMIT),))
    text = render("text", result)
    assert "src/a b.py:7:7  demo-api-key  [high]  Demo API key" in text
    assert "commit 0123456789ab by Ada on 2026-01-02T03:04:05+00:00" in text
    doc = json.loads(render("json", result))
    assert doc["findings"][0]["commit"] == {
        "id": COMMIT.id,
        "author": "Ada",
        "email": "ada@example.test",
        "date": COMMIT.date,
    }
    sarif = json.loads(render("sarif", result))
    res = sarif["runs"][0]["results"][0]
    assert res["properties"]["commit"] == COMMIT.id
    assert res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "src/a%20b.py"
    assert sarif["runs"][0]["tool"]["driver"]["version"] == "9.9"


def test_text_summary_lines() -> None:
    secret = expand("dmo_{{lowalnum:24}}", "summary")
    one = ScanResult((finding(secret, secret),))
    assert render("text", one).endswith("sentra: 1 secret found\n")
    assert render("text", ScanResult(())) == ""
    incomplete = ScanResult((), skipped=(Skipped("x.bin", SkipReason.TOO_LARGE, "3 MB"),))
    assert render("text", incomplete) == (
        "warning: x.bin: not fully scanned: too large (3 MB)\n"
        "sentra: no secrets found, but the scan was incomplete (see warnings)\n"
    )
    binary = ScanResult((), skipped=(Skipped("x.png", SkipReason.BINARY),))
    assert render("text", binary) == ""


def test_pre_commit_context_text() -> None:
    secret = expand("dmo_{{lowalnum:24}}", "hook")
    out = io.StringIO()
    get_reporter("text", context="pre-commit").write(ScanResult((finding(secret, secret),)), out)
    assert "sentra: 1 secret in the staged changes — commit blocked" in out.getvalue()


def test_unknown_format() -> None:
    with pytest.raises(ValueError, match="unknown format"):
        get_reporter("xml")


def test_json_stats_round_duration() -> None:
    result = ScanResult((), stats=ScanStats(fragments=2, lines=3, bytes=40, rules_run=1, duration_s=0.123456789))
    doc = json.loads(render("json", result))
    assert doc["stats"] == {
        "findings": 0,
        "suppressed": 0,
        "fragments": 2,
        "lines": 3,
        "bytes": 40,
        "rules_run": 1,
        "duration_s": 0.1235,
        "complete": True,
    }


@pytest.mark.parametrize("padding", [0, 300])
def test_masker_hides_every_secret_on_the_line(padding: int) -> None:
    a = expand("dmo_{{lowalnum:24}}", "mask-a")
    b = expand("dmo_{{lowalnum:24}}", "mask-b")
    line = "x" * padding + f"k1 = {a}; k2 = {b}; again = {a}" + "y" * padding
    fa = finding(a, line)
    fb = finding(b, line)
    masker = Masker(ScanResult((fa, fb)))
    for f in (fa, fb):
        snippet = masker.snippet(f)
        assert "dmo_********" in snippet
        for secret in (a, b):
            assert secret[4:] not in snippet
            assert secret[-8:] not in snippet
        if padding:
            assert snippet.startswith("…")
            assert snippet.endswith("…")
            assert len(snippet) < 160
