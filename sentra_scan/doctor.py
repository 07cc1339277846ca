"""`sentra doctor`: checks a machine and a repository and says what to fix."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sentra_scan.errors import SentraError


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    optional: bool = False


def _run(name: str, fn: Callable[[], str], *, optional: bool = False) -> Check:
    try:
        detail = fn()
        return Check(name, True, str(detail), optional=optional)
    except SentraError as exc:
        return Check(name, False, exc.message, exc.hint, optional)
    except Exception as exc:
        return Check(name, False, f"{type(exc).__name__}: {exc}", optional=optional)


def run_checks(repo: Path | None = None) -> list[Check]:
    from sentra_scan import api, install, keys
    from sentra_scan.config import load_config
    from sentra_scan.state import state_dir

    checks: list[Check] = []
    checks.append(Check("python", sys.version_info >= (3, 11), sys.version.split()[0], "Python 3.11 or newer"))
    git = shutil.which("git")
    checks.append(Check("git", git is not None, git or "not found", "install git"))
    root = api.find_root(repo)
    if root is None:
        checks.append(Check("repository", True, "not inside a git repository: hooks, state and store not checked"))
    checks.append(
        _run(
            "rules and config",
            lambda: f"{len(api.make_scanner(load_config(api.find_config(root))).ruleset)} rules load",
        )
    )

    def keyring_check() -> str:
        import keyring

        backend = keyring.get_keyring()
        if not keys.usable_keyring(backend):
            raise SentraError(f"not usable ({type(backend).__name__})", hint=keys.NO_SOURCE_HINT)
        return type(backend).__module__ + "." + type(backend).__name__

    checks.append(_run("credential store", keyring_check, optional=True))
    checks.append(_run("key source", lambda: keys.select_source(interactive=False).describe()))
    if root is not None:
        directory = state_dir(root)

        def state_check() -> str:
            from sentra_scan.state import open_state

            if directory is None or not (directory / keys.KEYS_FILE).exists():
                return "no encrypted state yet (created by the first recorded scan)"
            state = open_state(root, create=False)
            try:
                n = state.ledger.conn.execute("SELECT COUNT(*) FROM scans").fetchone()[0]
            finally:
                state.close()
            return f"keys and ledger open (format 1), {n} scans recorded"

        checks.append(_run("encrypted state", state_check))
        for hook in install.HOOKS:

            def hook_check(hook: str = hook) -> str:
                path = install.hooks_dir(root, global_=False) / hook
                if not install.is_ours(path):
                    raise SentraError("not installed", hint=f"sentra install --hook {hook}")
                return str(path)

            checks.append(_run(f"{hook} hook", hook_check, optional=hook == "pre-push"))

        def store_check() -> str:
            from sentra_scan.store import HEADER
            from sentra_scan.storeops import store_path

            path = store_path(load_config(api.find_config(root)), root)
            if not path.exists():
                return "no secret store yet"
            first = path.read_text(encoding="ascii", errors="replace").split("\n", 1)[0]
            if not first.startswith(HEADER):
                raise SentraError(f"{path}: unknown format", hint="restore it from a backup")
            return f"{path} (format v1)"

        checks.append(_run("secret store", store_check))
    server = os.environ.get("SENTRA_SERVER")
    if server and not server.startswith("vault://"):

        def server_check() -> str:
            import httpx

            try:
                resp = httpx.get(server.rstrip("/") + "/api/v1/health", timeout=5.0)
            except httpx.HTTPError as exc:
                raise SentraError(
                    f"cannot reach {server}: {type(exc).__name__}: {exc}",
                    hint="start the server, or fix or unset SENTRA_SERVER",
                ) from None
            if resp.status_code != 200:
                raise SentraError(f"health answered HTTP {resp.status_code}", hint="check the server's log")
            return f"{server} healthy"

        checks.append(_run("server", server_check))
    return checks
