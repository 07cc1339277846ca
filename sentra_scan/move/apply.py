"""Applying a move or an allow: the staged blob (GIT_INDEX_FILE honoured) and, separately,
the working-tree file, so unstaged edits elsewhere in it survive."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sentra_scan.errors import GitError
from sentra_scan.model import Finding
from sentra_scan.move.naming import choose_entry, entry_path, suggest_name
from sentra_scan.move.rewrite import (
    COMMENT,
    Literal,
    MoveError,
    ensure_import,
    find_literal,
    language,
    reference,
    split_lines,
    still_parses,
    strings,
)
from sentra_scan.sources.gitcmd import FIXED_CONFIG
from sentra_scan.store import Store


def _git(args: list[str], top: Path, data: bytes | None = None, env: dict[str, str] | None = None) -> bytes:
    full = {**os.environ, "GIT_LITERAL_PATHSPECS": "1", **(env or {})}
    cmd = ["git", *FIXED_CONFIG, *args]
    proc = subprocess.run(cmd, cwd=top, input=data, capture_output=True, env=full, check=False)
    if proc.returncode != 0:
        detail = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GitError(f"git {args[0]}: {detail[-1] if detail else 'failed'}")
    return proc.stdout


def read_staged(top: Path, path: str) -> tuple[str, str]:
    """(mode, text) of `path` in the index (GIT_INDEX_FILE honoured)."""
    out = _git(["ls-files", "-s", "-z", "--", path], top).split(b"\0")[0].decode()
    if not out:
        raise MoveError(f"{path} is not staged")
    mode, sha = out.split()[:2]
    if mode not in ("100644", "100755"):
        raise MoveError(f"{path} is not a regular file in the index")
    try:
        return mode, _git(["cat-file", "blob", sha], top).decode("utf-8")
    except UnicodeDecodeError:
        raise MoveError(f"{path} is not UTF-8 text; move the secret by hand") from None


def write_staged(top: Path, path: str, mode: str, text: str) -> None:
    """Put `text` in the index as `path`. During `git commit <paths>` the hook sees a
    temporary index (next-index-*.lock) and git keeps the real one in index.lock, to be
    committed after the commit: update both, or the secret would stay staged."""
    sha = _git(["hash-object", "-w", "--no-filters", "--stdin"], top, text.encode("utf-8")).decode().strip()
    _git(["update-index", "--cacheinfo", f"{mode},{sha},{path}"], top)
    index = os.environ.get("GIT_INDEX_FILE", "")
    if re.fullmatch(r"next-index-\d+\.lock", os.path.basename(index)):
        real = top / os.path.dirname(index) / "index.lock"
        if real.is_file():
            _git(["update-index", "--cacheinfo", f"{mode},{sha},{path}"], top, env={"GIT_INDEX_FILE": str(real)})


def write_file(target: Path, text: str) -> None:
    """Replace a working-tree file atomically, keeping its mode."""
    mode = target.stat().st_mode & 0o7777
    tmp = target.with_name(f".{target.name}.sentra-tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, target)


@dataclass(frozen=True)
class Edit:
    """Replace `old` (the literal as written) at `column` of the line that read `line_text`."""

    line: int  # 1-based, in the staged file
    line_text: str
    column: int
    old: str
    new: str


def apply_edit(text: str, edit: Edit) -> str | None:
    """`text` with the edit made on the best-matching line, or None when the literal is not
    there (the nearest identical line first, then the nearest line holding the literal)."""
    lines = split_lines(text)
    bodies = [ln.rstrip("\r\n") for ln in lines]
    near = sorted(range(len(lines)), key=lambda i: abs(i + 1 - edit.line))
    pick = next((i for i in near if bodies[i] == edit.line_text), None)
    if pick is None:
        pick = next((i for i in near if edit.old in bodies[i]), None)
    if pick is None:
        return None
    body = bodies[pick]
    at = edit.column if body.startswith(edit.old, edit.column) else body.find(edit.old)
    lines[pick] = body[:at] + edit.new + body[at + len(edit.old) :] + lines[pick][len(body) :]
    return "".join(lines)


# --- moving and allowing ---------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    finding: Finding
    action: str  # "moved", "allowed" (inline comment), "baseline"
    entry: str = ""  # the store entry (moved)
    reference: str = ""  # what the literal became (moved) or the comment added (allowed)
    worktree: bool = True  # the working-tree file was updated too


@dataclass(frozen=True)
class Plan:
    lang: str
    line: int
    line_text: str  # the line as staged now
    literal: Literal
    name: str  # the suggested variable name


@dataclass
class Fixer:
    """Moves or allows staged findings in one repository; `store` opens the store on first use."""

    top: Path
    scheme: str
    open_store: Callable[[], Store]
    baseline_path: Path
    _store: Store | None = None
    imports: dict[str, tuple[str, bool]] = field(default_factory=dict)  # path → (language, working tree too)

    def store(self) -> Store:
        if self._store is None:
            self._store = self.open_store()
        return self._store

    def _staged_line(self, finding: Finding) -> tuple[str, int, int]:
        """The finding's line as staged now and the secret's span in it: the scanned columns,
        or where the secret is now if an earlier fix on the same line moved it."""
        loc = finding.location
        _mode, text = read_staged(self.top, loc.path)
        lines = [ln.rstrip("\r\n") for ln in split_lines(text)]
        line = lines[loc.line - 1] if 0 < loc.line <= len(lines) else ""
        if line == finding.line_text.rstrip("\r"):
            return line, loc.column - 1, loc.end_column - 1
        at = line.find(finding.secret.reveal())
        if at < 0:
            raise MoveError(f"{loc.path}:{loc.line} changed since the scan; run 'sentra fix' again")
        return line, at, at + len(finding.secret)

    def pending(self, finding: Finding) -> bool:
        """Is the finding still in the staged file (not gone with an earlier fix)?"""
        try:
            self._staged_line(finding)
        except MoveError:
            return False
        return True

    def plan(self, finding: Finding) -> Plan:
        path = finding.location.path
        if finding.rule_id == "sentra-secret-store":
            raise MoveError("this is the store file itself: unstage it (git restore --staged FILE)")
        if "\n" in finding.secret.reveal():
            raise MoveError(
                "a secret over several lines (a private key?): store it with 'sentra secrets set ENTRY"
                " --value-stdin < FILE' and take it out of the file by hand"
            )
        line, start, end = self._staged_line(finding)
        _mode, text = read_staged(self.top, path)
        lang = language(path, text.split("\n", 1)[0])
        lit = find_literal(line, start, end, lang)
        if not lit.value:
            raise MoveError("the literal is empty")
        return Plan(lang, finding.location.line, line, lit, suggest_name(finding, line[: lit.start]))

    def preview(self, plan: Plan) -> tuple[str, str]:
        """(entry path, reference) a move would use, before any suffix for a taken name."""
        entry = entry_path(self.scheme, plan.name)
        return entry, reference(plan.lang, entry.rsplit("/", 1)[-1], plan.literal)

    def move(self, finding: Finding) -> Outcome:
        plan = self.plan(finding)
        lit = plan.literal
        path = finding.location.path
        store = self.store()
        entry = choose_entry(store, self.scheme, plan.name, lit.value)
        new = reference(plan.lang, entry.rsplit("/", 1)[-1], lit)
        edit = Edit(plan.line, plan.line_text, lit.start, plan.line_text[lit.start : lit.end], new)
        staged = self._edited(path, edit, plan.lang)
        store.set(entry, lit.value, action="move")  # before any file changes: a refused store changes none
        worktree = self._write(path, edit, staged)
        if plan.lang in ("python", "go"):
            before = self.imports.get(path, (plan.lang, False))[1]
            self.imports[path] = (plan.lang, before or worktree)
        return Outcome(finding, "moved", entry, new, worktree)

    def allow(self, finding: Finding) -> Outcome:
        """An inline `sentra:allow <rule>` comment where the file type has one (and the line
        can take it), else an entry in the baseline."""
        path = finding.location.path
        line, _start, _end = self._staged_line(finding)
        _mode, text = read_staged(self.top, path)
        lang = language(path, text.split("\n", 1)[0])
        mark = COMMENT.get(lang)
        open_string = any(e < 0 for _s, e, _q in strings(line, lang))
        if mark is None or open_string or line.rstrip().endswith("\\"):
            return self._baseline(finding)
        comment = f"{mark} sentra:allow {finding.rule_id}"
        body = line.rstrip()
        edit = Edit(finding.location.line, line, 0, body, f"{body}  {comment}" if body else comment)
        worktree = self._write(path, edit, self._edited(path, edit, lang))
        return Outcome(finding, "allowed", reference=comment, worktree=worktree)

    def _baseline(self, finding: Finding) -> Outcome:
        from sentra_scan import baseline

        path = self.baseline_path
        base = baseline.load(path) if path.is_file() else baseline.Baseline({})
        entries = dict(base.entries)
        entries[finding.fingerprint] = baseline.Entry(finding.fingerprint, finding.rule_id, reason="allowed by sentra")
        baseline.Baseline(entries).save(path)
        top = self.top.resolve()
        if path.resolve().is_relative_to(top):
            _git(["add", "--", str(path.resolve().relative_to(top))], self.top)
        return Outcome(finding, "baseline", reference=path.name)

    def _edited(self, path: str, edit: Edit, lang: str) -> tuple[str, str]:
        """(mode, text) of the staged blob with the edit made; refused if it stops parsing."""
        mode, text = read_staged(self.top, path)
        new_text = apply_edit(text, edit)
        if new_text is None:
            raise MoveError(f"{path}: the literal is no longer staged; run 'sentra fix' again")
        if not still_parses(lang, text, new_text):
            raise MoveError(f"{path}: the file would no longer parse with {edit.new} there; move it by hand")
        return mode, new_text

    def _write(self, path: str, edit: Edit, staged: tuple[str, str]) -> bool:
        """Write the staged blob, then edit the working-tree file on its own; False if the
        working tree no longer holds the literal (it is then left as it is)."""
        write_staged(self.top, path, *staged)
        target = self.top / path
        if target.is_symlink() or not target.is_file():
            return False
        new_work = apply_edit(target.read_bytes().decode("utf-8", "replace"), edit)
        if new_work is None:
            return False
        write_file(target, new_work)
        return True

    def finish(self) -> None:
        """Add the imports the new references need (staged blob; working tree where it was
        rewritten)."""
        for path, (lang, worktree) in sorted(self.imports.items()):
            mode, text = read_staged(self.top, path)
            if (new_text := ensure_import(text, lang)) != text:
                write_staged(self.top, path, mode, new_text)
            target = self.top / path
            if worktree and target.is_file() and not target.is_symlink():
                work = target.read_bytes().decode("utf-8", "replace")
                if (new_work := ensure_import(work, lang)) != work:
                    write_file(target, new_work)
        self.imports.clear()
