"""JUnit XML for CI test UIs: one failed test case per finding (redacted), one passing case
when the scan is clean, and a skipped case per file not fully scanned."""

from __future__ import annotations

from typing import TextIO
from xml.etree import ElementTree as ET

from sentra_scan.model import ScanResult
from sentra_scan.report import Masker, account


class JunitReporter:
    def write(self, result: ScanResult, out: TextIO) -> None:
        masker = Masker(result)
        incomplete = [s for s in result.skipped if s.incomplete]
        suite = ET.Element(
            "testsuite",
            name="sentra",
            tests=str(max(len(result.findings), 1) + len(incomplete)),
            failures=str(len(result.findings)),
            skipped=str(len(incomplete)),
            time=f"{result.stats.duration_s:.3f}",
        )
        for f in result.findings:
            loc = f.location
            where = f"{loc.path}:{loc.line}:{loc.column}"
            case = ET.SubElement(suite, "testcase", classname=f.rule_id, name=where, file=loc.path, line=str(loc.line))
            failure = ET.SubElement(case, "failure", type=f.severity.label, message=f"{f.description} at {where}")
            commit = f"\ncommit {loc.commit.id} by {loc.commit.author} on {loc.commit.date}" if loc.commit else ""
            context = f"\naccount: {account(f, masker)}" if f.context else ""
            failure.text = f"{masker.snippet(f)}{context}{commit}\nfingerprint {f.fingerprint}\n{f.hint}"
        if not result.findings:
            ET.SubElement(suite, "testcase", classname="sentra", name="no secrets found")
        for s in incomplete:
            case = ET.SubElement(suite, "testcase", classname="sentra.incomplete", name=s.path)
            ET.SubElement(case, "skipped", message=f"not fully scanned: {s.reason.value} {s.detail}".strip())
        ET.indent(suite)
        out.write('<?xml version="1.0" encoding="UTF-8"?>\n')
        out.write(ET.tostring(suite, encoding="unicode"))
        out.write("\n")
