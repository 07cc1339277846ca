"""GitLab secret detection report (security report schema 15.1.4): the JSON GitLab CI
ingests through `artifacts: reports: secret_detection:`.

Redacted like every reporter: the schema's `raw_source_code_extract` ("an unsanitized
excerpt") is never written, and the masked line goes into `details`. A vulnerability's
`id` is a UUID derived from the finding's salted, line-free fingerprint and its path, so
it stays the same across pipelines while the code moves. The schema requires a commit on
every finding: history findings carry theirs; files scanned outside history get
`CI_COMMIT_SHA` when the job gives one (the factory passes it in), else "0000000", the
placeholder GitLab's own secrets analyzer writes for the same case."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from sentra_scan.model import CommitInfo, Finding, ScanResult, Severity
from sentra_scan.report import Masker, account

SCHEMA_VERSION = "15.1.4"
SCHEMA_URL = (
    "https://gitlab.com/gitlab-org/security-products/security-report-schemas/-/raw/"
    f"v{SCHEMA_VERSION}/dist/secret-detection-report-format.json"
)
NO_COMMIT = "0000000"
IDENTIFIER_TYPE = "sentra_rule_id"
_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:sentra-scan:gitlab-secret-detection:v1")
_SEVERITY = {Severity.CRITICAL: "Critical", Severity.HIGH: "High", Severity.MEDIUM: "Medium", Severity.LOW: "Low"}
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"  # the schema's pattern: UTC, no zone, no fraction
_NAME_MAX = 255


def _utc_now() -> datetime:
    return datetime.now(UTC)


def vulnerability_ids(findings: tuple[Finding, ...]) -> list[str]:
    """One UUID per finding: from the fingerprint and the path, never the line; the same
    secret again in the same file gets a counter, in the order the scan reported them."""
    seen: dict[tuple[str, str], int] = {}
    ids = []
    for f in findings:
        key = (f.fingerprint, f.location.path)
        n = seen.get(key, 0)
        seen[key] = n + 1
        name = f"{f.fingerprint}\0{f.location.path}" + (f"\0{n}" if n else "")
        ids.append(str(uuid.uuid5(_ID_NAMESPACE, name)))
    return ids


def _commit(c: CommitInfo | None, fallback: str) -> dict[str, str]:
    if c is None:
        return {"sha": fallback}
    author = f"{c.author} <{c.email}>" if c.email else c.author
    return {"sha": c.id, "author": author, "date": c.date}


def _vulnerability(f: Finding, vid: str, masker: Masker, worktree_sha: str) -> dict[str, Any]:
    loc = f.location
    details: dict[str, Any] = {
        "masked_line": {"name": "Line (secret masked)", "type": "code", "value": masker.snippet(f)},
        "fingerprint": {"name": "Sentra fingerprint", "type": "text", "value": f.fingerprint},
    }
    if f.context:
        details["account"] = {"name": "Account context", "type": "text", "value": account(f, masker)}
    if f.encoding:
        details["encoding"] = {"name": "Found encoded", "type": "text", "value": f.encoding}
    return {
        "id": vid,
        "name": f.description[:_NAME_MAX],
        "description": f"{f.description} ({f.secret.redacted()}) at {loc.path}:{loc.line}.",
        "severity": _SEVERITY[f.severity],
        "solution": f.hint,
        "identifiers": [{"type": IDENTIFIER_TYPE, "name": f"Sentra rule {f.rule_id}", "value": f.rule_id}],
        "location": {
            "file": loc.path,
            "start_line": loc.line,
            "end_line": loc.line,
            "commit": _commit(loc.commit, worktree_sha),
        },
        "details": details,
    }


class GitlabReporter:
    def __init__(
        self,
        *,
        tool_version: str = "",
        worktree_sha: str | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.tool_version = tool_version or "0"
        self.worktree_sha = worktree_sha or NO_COMMIT
        self.clock = clock

    def write(self, result: ScanResult, out: TextIO) -> None:
        masker = Masker(result)
        ids = vulnerability_ids(result.findings)
        end = self.clock().astimezone(UTC)
        start = end - timedelta(seconds=result.stats.duration_s)
        tool = {"id": "sentra", "name": "Sentra Scan", "version": self.tool_version, "vendor": {"name": "Sentra Scan"}}
        messages = [
            {"level": "warn", "value": f"{s.path}: not fully scanned: {s.reason.value} {s.detail}".strip()}
            for s in result.skipped
            if s.incomplete
        ]
        doc = {
            "version": SCHEMA_VERSION,
            "schema": SCHEMA_URL,
            "scan": {
                "analyzer": tool,
                "scanner": tool,
                "type": "secret_detection",
                "start_time": start.strftime(_TIME_FORMAT),
                "end_time": end.strftime(_TIME_FORMAT),
                "status": "success",
                "messages": messages,
            },
            "vulnerabilities": [
                _vulnerability(f, vid, masker, self.worktree_sha) for f, vid in zip(result.findings, ids, strict=True)
            ],
        }
        json.dump(doc, out, indent=2)
        out.write("\n")
