"""One error tree; each error says what happened and what to do, and maps to an exit code."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """Process exit codes. Documented in the README; never 1 for an error."""

    OK = 0
    FINDINGS = 1
    USAGE = 2
    CONFIG = 3  # invalid .sentra.yaml or rule files
    INCOMPLETE = 4  # something was not fully scanned (strict mode)
    GIT = 5  # not a repository, bad revision, range that cannot be resolved
    KEY = 6  # no usable key source, wrong key, tampered data
    REMOTE = 7  # server refused or unreachable, write conflict
    INTERNAL = 70


class SentraError(Exception):
    """Base of every error Sentra reports to the user."""

    exit_code = ExitCode.INTERNAL
    hint = ""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if hint is not None:
            self.hint = hint

    def diagnostics(self) -> str:
        text = f"error: {self.message}"
        if self.hint:
            text += f"\nhint: {self.hint}"
        return text


class UsageError(SentraError):
    exit_code = ExitCode.USAGE


class ConfigError(SentraError):
    """A rule file or the user's config is invalid. The message names file, rule and key."""

    exit_code = ExitCode.CONFIG

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        rule: str | None = None,
        key: str | None = None,
        hint: str | None = None,
    ) -> None:
        parts = []
        if source:
            parts.append(source)
        if rule:
            parts.append(f"rule '{rule}'")
        if key:
            parts.append(key)
        prefix = ": ".join(parts)
        super().__init__(f"{prefix}: {message}" if prefix else message, hint=hint)
        self.source = source
        self.rule = rule
        self.key = key


class GitError(SentraError):
    exit_code = ExitCode.GIT


class KeyStateError(SentraError):
    """No usable key source, a wrong key, or encrypted state that fails to open."""

    exit_code = ExitCode.KEY


class RemoteError(SentraError):
    """The server refused a request, was unreachable, or a write conflicted."""

    exit_code = ExitCode.REMOTE
