"""Reporters: a scan result in, text out. Secrets are always redacted here."""

from __future__ import annotations

from typing import Protocol, TextIO

from sentra_scan.model import ScanResult


class Reporter(Protocol):
    def write(self, result: ScanResult, out: TextIO) -> None: ...


FORMATS = ("text", "json", "sarif")


def get_reporter(name: str, *, color: bool = False, context: str = "scan", tool_version: str = "") -> Reporter:
    if name == "text":
        from sentra_scan.report.text import TextReporter

        return TextReporter(color=color, context=context)
    if name == "json":
        from sentra_scan.report.jsonfmt import JsonReporter

        return JsonReporter()
    if name == "sarif":
        from sentra_scan.report.sarif import SarifReporter

        return SarifReporter(tool_version=tool_version)
    raise ValueError(f"unknown format {name!r}")
