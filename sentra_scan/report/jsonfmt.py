"""JSON report: {"version", "findings": [...], "skipped": [...], "stats": {...}}; redacted."""

from __future__ import annotations

import json
from typing import Any, TextIO

from sentra_scan.model import Finding, ScanResult
from sentra_scan.report import Masker

JSON_VERSION = 1


def finding_dict(f: Finding, masker: Masker) -> dict[str, Any]:
    loc = f.location
    commit = None
    if loc.commit is not None:
        c = loc.commit
        commit = {"id": c.id, "author": c.author, "email": c.email, "date": c.date}
    out: dict[str, Any] = {
        "rule_id": f.rule_id,
        "description": f.description,
        "severity": f.severity.label,
        "path": loc.path,
        "line": loc.line,
        "column": loc.column,
        "end_column": loc.end_column,
        "commit": commit,
        "fingerprint": f.fingerprint,
        "secret": f.secret.redacted(),
        "line_masked": masker.snippet(f),
    }
    if f.occurrences:  # audits: the same secret's other places, oldest commit reported first
        out["occurrences"] = [
            {"path": o.path, "line": o.line, "commit": o.commit.id if o.commit is not None else None}
            for o in f.occurrences
        ]
    if f.context:  # whose credential and where: the user, host and database of its record
        out["context"] = [
            {"line": c.line, "name": c.name, "value": masker.text(c.value), "role": c.role} for c in f.context
        ]
    if f.note:  # why the severity is not the rule's ("value looks like a placeholder")
        out["note"] = f.note
    if f.suppressed_by:
        out["suppressed_by"] = f.suppressed_by
    return out


class JsonReporter:
    def write(self, result: ScanResult, out: TextIO) -> None:
        masker = Masker(result)
        doc = {
            "version": JSON_VERSION,
            "findings": [finding_dict(f, masker) for f in result.findings],
            "suppressed": [finding_dict(f, masker) for f in result.suppressed],
            "skipped": [
                {"path": s.path, "reason": s.reason.value, "detail": s.detail, "commit": s.commit}
                for s in result.skipped
            ],
            "stats": {
                "findings": len(result.findings),
                "suppressed": len(result.suppressed),
                "fragments": result.stats.fragments,
                "lines": result.stats.lines,
                "bytes": result.stats.bytes,
                "rules_run": result.stats.rules_run,
                "duration_s": round(result.stats.duration_s, 4),
                "complete": not result.incomplete,
            },
        }
        json.dump(doc, out, indent=2)
        out.write("\n")
