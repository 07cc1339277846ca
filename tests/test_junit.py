"""`--format junit`: one failed case per finding, redacted; a passing case when clean."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree as ET

from tests.helpers import canary_github_token, sentra


def test_junit_report(tmp_path: Path) -> None:
    token = canary_github_token("junit")
    (tmp_path / "app.py").write_text(f'x = 1\nTOKEN = "{token}"\n', encoding="utf-8")
    (tmp_path / "clean.py").write_text("y = 2\n", encoding="utf-8")
    found = sentra(["scan", "--format", "junit", "app.py"], tmp_path)
    assert found.returncode == 1
    assert token not in found.stdout + found.stderr
    suite = ET.fromstring(found.stdout)
    assert suite.get("failures") == "1"
    [case] = suite.findall("testcase")
    assert case.get("classname") == "github-pat"
    assert case.get("name") == "app.py:2:10"
    failure = case.find("failure")
    assert failure is not None
    assert "ghp_****" in (failure.text or "")
    clean = sentra(["scan", "--format", "junit", "clean.py"], tmp_path)
    assert clean.returncode == 0
    suite = ET.fromstring(clean.stdout)
    assert suite.get("failures") == "0"
    assert [c.get("name") for c in suite.findall("testcase")] == ["no secrets found"]
