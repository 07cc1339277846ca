"""SARIF 2.1.0 for code-scanning UIs. `partialFingerprints` carry our line-free fingerprint
so results deduplicate across runs; snippets are masked."""

from __future__ import annotations

import json
from typing import Any, TextIO
from urllib.parse import quote

from sentra_scan.model import Finding, ScanResult, Severity
from sentra_scan.report import Masker, account

SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
_LEVEL = {Severity.CRITICAL: "error", Severity.HIGH: "error", Severity.MEDIUM: "warning", Severity.LOW: "note"}
_SECURITY_SEVERITY = {Severity.CRITICAL: "9.5", Severity.HIGH: "8.0", Severity.MEDIUM: "5.5", Severity.LOW: "3.0"}


def _rule(f: Finding) -> dict[str, Any]:
    return {
        "id": f.rule_id,
        "name": f.rule_id,
        "shortDescription": {"text": f.description},
        "fullDescription": {"text": f"{f.description}. {f.hint}"},
        "defaultConfiguration": {"level": _LEVEL[f.severity]},
        "help": {"text": f.hint},
        "properties": {"tags": ["security", "secret"], "security-severity": _SECURITY_SEVERITY[f.severity]},
    }


def _result(f: Finding, rule_index: int, masker: Masker) -> dict[str, Any]:
    loc = f.location
    result: dict[str, Any] = {
        "ruleId": f.rule_id,
        "ruleIndex": rule_index,
        "level": _LEVEL[f.severity],
        "message": {"text": f"{f.description} ({f.secret.redacted()}). {f.hint}"},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": quote(loc.path), "uriBaseId": "%SRCROOT%"},
                    "region": {
                        "startLine": loc.line,
                        "startColumn": loc.column,
                        "endColumn": max(loc.end_column, loc.column + 1),
                        "snippet": {"text": masker.snippet(f)},
                    },
                }
            }
        ],
        "partialFingerprints": {"sentraFingerprint/v1": f.fingerprint},
    }
    if f.context:  # the account and host of the credential's record
        result["message"]["text"] += f" Account: {account(f, masker)}."
        result["relatedLocations"] = [
            {
                "id": n,
                "physicalLocation": {
                    "artifactLocation": {"uri": quote(loc.path), "uriBaseId": "%SRCROOT%"},
                    "region": {"startLine": c.line},
                },
                "message": {"text": f"{c.role} ({c.name}): {masker.text(c.value)}"},
            }
            for n, c in enumerate(f.context)
        ]
    if loc.commit is not None:
        c = loc.commit
        result["properties"] = {"commit": c.id, "author": c.author, "email": c.email, "date": c.date}
    return result


class SarifReporter:
    def __init__(self, *, tool_version: str = "") -> None:
        self.tool_version = tool_version or "0"

    def write(self, result: ScanResult, out: TextIO) -> None:
        masker = Masker(result)
        index: dict[str, int] = {}
        rules: list[dict[str, Any]] = []
        results = []
        for f in result.findings:
            if f.rule_id not in index:
                index[f.rule_id] = len(rules)
                rules.append(_rule(f))
            results.append(_result(f, index[f.rule_id], masker))
        notifications = [
            {
                "level": "warning",
                "message": {"text": f"{s.path}: not fully scanned: {s.reason.value} {s.detail}".strip()},
            }
            for s in result.skipped
            if s.incomplete
        ]
        doc = {
            "$schema": SCHEMA,
            "version": "2.1.0",
            "runs": [
                {
                    "tool": {
                        "driver": {
                            "name": "Sentra Scan",
                            "version": self.tool_version,
                            "informationUri": "https://github.com/sentra-scan/sentra-scan",
                            "rules": rules,
                        }
                    },
                    "invocations": [{"executionSuccessful": True, "toolExecutionNotifications": notifications}],
                    "results": results,
                    "columnKind": "unicodeCodePoints",
                }
            ],
        }
        json.dump(doc, out, indent=2)
        out.write("\n")
