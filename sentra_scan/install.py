"""Install and remove Sentra's git hooks. An existing hook is kept and chained (it runs
first), never clobbered; uninstall puts it back."""

from __future__ import annotations

import os
import shlex
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

from sentra_scan.errors import GitError, UsageError
from sentra_scan.sources.gitcmd import git

MARKER = "# sentra-scan hook"
CHAINED_SUFFIX = ".sentra-chained"
HOOKS = ("pre-commit", "pre-push")


def sentra_command() -> str:
    """How the hook calls Sentra: the console script beside this interpreter if there is
    one (fastest), else `python -m sentra_scan`."""
    script = Path(sys.executable).parent / "sentra"
    if script.is_file() and os.access(script, os.X_OK):
        return shlex.quote(str(script))
    return f"{shlex.quote(sys.executable)} -m sentra_scan"


def hook_script(hook: str, command: str, *, run_repo_hook: bool) -> str:
    lines = [
        "#!/bin/sh",
        f"{MARKER} ({hook}); installed by 'sentra install', removed by 'sentra uninstall'",
        'hookdir=$(cd "$(dirname "$0")" && pwd)',
        f'if [ -x "$hookdir/{hook}{CHAINED_SUFFIX}" ]; then',
        f'  "$hookdir/{hook}{CHAINED_SUFFIX}" "$@" || exit $?',
        "fi",
    ]
    if run_repo_hook:
        # A global core.hooksPath hides each repository's own hooks: run them too.
        lines += [
            'repohooks="$(git rev-parse --git-common-dir 2>/dev/null)/hooks"',
            f'if [ "$repohooks" != "$hookdir" ] && [ -x "$repohooks/{hook}" ]; then',
            f'  "$repohooks/{hook}" "$@" || exit $?',
            "fi",
        ]
    lines += [
        'case ",${SKIP:-}," in *,sentra,*) exit 0 ;; esac',
        f'exec {command} hook {hook} "$@"',
        "",
    ]
    return "\n".join(lines)


@dataclass(frozen=True)
class InstallResult:
    path: Path
    chained: Path | None
    already: bool = False


def _default_global_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "sentra" / "hooks"


def _global_hooks_path() -> Path | None:
    configured = git(["config", "--global", "--get", "core.hooksPath"], check=False).strip()
    return Path(os.path.expanduser(configured)) if configured else None


def hooks_dir(repo: Path | None, *, global_: bool) -> Path:
    if global_:
        return _global_hooks_path() or _default_global_dir()
    common = git(["rev-parse", "--path-format=absolute", "--git-common-dir"], repo, check=False).strip()
    if not common:
        raise GitError("not inside a git repository", hint="run 'sentra install' inside a repository, or use --global")
    configured = git(["config", "--get", "core.hooksPath"], repo, check=False).strip()
    if configured:
        path = Path(os.path.expanduser(configured))
        if path.is_absolute():
            return path
        # Relative to where hooks run: the top of the work tree (the git dir when bare),
        # also when this runs from inside the git dir, where --show-toplevel fails.
        top = git(["rev-parse", "--show-toplevel"], repo, check=False).strip()
        if not top:
            bare = git(["rev-parse", "--is-bare-repository"], repo, check=False).strip() == "true"
            top = common if bare else str(Path(common).parent)
        return Path(top) / path
    return Path(common) / "hooks"


def _serves_every_repository(directory: Path) -> bool:
    """Is `directory` the global core.hooksPath? A hook there must run each repository's own."""
    configured = _global_hooks_path()
    return configured is not None and configured.resolve() == directory.resolve()


def is_ours(path: Path) -> bool:
    try:
        return MARKER in path.read_text(encoding="utf-8", errors="replace")[:400]
    except OSError:
        return False


def install(hook: str, repo: Path | None = None, *, global_: bool = False) -> InstallResult:
    if hook not in HOOKS:
        raise UsageError(f"unknown hook {hook!r} (known: {', '.join(HOOKS)})")
    directory = hooks_dir(repo, global_=global_)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / hook
    script = hook_script(hook, sentra_command(), run_repo_hook=global_ or _serves_every_repository(directory))
    chained: Path | None = None
    if target.exists() or target.is_symlink():
        if is_ours(target):
            target.write_text(script, encoding="utf-8")
            return InstallResult(target, None, already=True)
        chained = directory / f"{hook}{CHAINED_SUFFIX}"
        if chained.exists():
            raise UsageError(f"{chained} already exists", hint="remove it or merge it into the current hook first")
        target.rename(chained)
    target.write_text(script, encoding="utf-8")
    target.chmod(target.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH | stat.S_IRUSR)
    if global_:
        git(["config", "--global", "core.hooksPath", str(directory)])
    return InstallResult(target, chained)


def uninstall(hook: str, repo: Path | None = None, *, global_: bool = False) -> bool:
    """Remove our hook and restore a chained one. False when ours was not installed."""
    directory = hooks_dir(repo, global_=global_)
    target = directory / hook
    if not is_ours(target):
        return False
    if not global_ and _serves_every_repository(directory):
        raise UsageError(
            f"the {hook} hook here is the global one ({target}): removing it would affect every repository",
            hint="use 'sentra uninstall --global', or SKIP=sentra for a single commit",
        )
    target.unlink()
    chained = directory / f"{hook}{CHAINED_SUFFIX}"
    if chained.exists():
        chained.rename(target)
    if global_ and directory == _default_global_dir() and not any(directory.iterdir()):
        # Our own global hooks dir is empty now: stop hiding every repository's hooks.
        git(["config", "--global", "--unset", "core.hooksPath"], check=False)
    return True
