"""Sentra Scan: a Git secret scanner and guard.

The library API is what this module exports; the CLI (`sentra_scan.cli`) is a thin layer
over it.
"""

from __future__ import annotations

from sentra_scan.api import find_config, load_ruleset, make_scanner, scan_items, scan_paths, scan_staged, scan_text
from sentra_scan.config import Config, load_config
from sentra_scan.errors import ConfigError, ExitCode, GitError, SentraError, UsageError
from sentra_scan.model import (
    CommitInfo,
    Finding,
    Fragment,
    Location,
    ScanResult,
    Secret,
    Severity,
    Skipped,
    SkipReason,
)
from sentra_scan.ruleset import Rule, RuleSet
from sentra_scan.scan import Scanner

__version__ = "0.1.0"

__all__ = [
    "CommitInfo",
    "Config",
    "ConfigError",
    "ExitCode",
    "Finding",
    "Fragment",
    "GitError",
    "Location",
    "Rule",
    "RuleSet",
    "ScanResult",
    "Scanner",
    "Secret",
    "SentraError",
    "Severity",
    "SkipReason",
    "Skipped",
    "UsageError",
    "__version__",
    "find_config",
    "load_config",
    "load_ruleset",
    "make_scanner",
    "scan_items",
    "scan_paths",
    "scan_staged",
    "scan_text",
]
