"""`sentra doctor` as a user runs it: all ok in a configured repository (exit 0); otherwise
each problem is named with what to fix (exit 3), and never a traceback."""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import (
    Repo,
    free_port,
    sentra,
    start_serve,
    stop_process,
    wait_for_http,
    write_serve_config,
)

LINE = re.compile(r"^\[(ok  |warn|FAIL)\] ([^:]+): (.*)$")


def doctor(cwd: Path, env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], dict[str, tuple[str, str]]]:
    """Run it; return the result and {check: (mark, detail)}, with each fix after its detail."""
    proc = sentra(["doctor"], cwd, env=env)
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "internal error" not in proc.stdout + proc.stderr
    checks: dict[str, tuple[str, str]] = {}
    last = ""
    for line in proc.stdout.splitlines():
        match = LINE.match(line)
        if match:
            last = match.group(2)
            checks[last] = (match.group(1).strip(), match.group(3))
        elif line.strip().startswith("fix: ") and last:
            mark, detail = checks[last]
            checks[last] = (mark, detail + " | " + line.strip())
        else:
            raise AssertionError(f"unexpected doctor output line: {line!r}")
    return proc, checks


def new_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def configure(repo: Repo, env: dict[str, str]) -> None:
    """Hooks installed, state and store created, one scan recorded."""
    repo.commit_files({"README.md": "hello\n"})
    for args in (["install"], ["install", "--hook", "pre-push"], ["audit"]):
        proc = sentra(args, repo.path, env=env)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    done = sentra(["secrets", "set", "dev/API_KEY", "--value-stdin"], repo.path, env=env, input=b"v-" + b"x" * 20)
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def keyring_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    from tests.oidc.harness import secret_service

    with secret_service(tmp_path_factory.mktemp("keyring")) as env:
        yield env


def test_a_configured_repository_is_all_ok(repo: Repo, keyring_env: dict[str, str], tmp_path: Path) -> None:
    env = {
        **os.environ,
        "SENTRA_KEY": new_key(),
        "DBUS_SESSION_BUS_ADDRESS": keyring_env["DBUS_SESSION_BUS_ADDRESS"],
        "PYTHON_KEYRING_BACKEND": keyring_env["PYTHON_KEYRING_BACKEND"],
    }
    configure(repo, env)
    config = write_serve_config(tmp_path / "server.yaml", "https://idp.example.org", tmp_path / "server-data")
    log = tmp_path / "serve.log"
    server, port = start_serve(config, log)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/api/v1/health", server, log=log)
        proc, checks = doctor(repo.path, {**env, "SENTRA_SERVER": f"http://127.0.0.1:{port}"})
    finally:
        stop_process(server)
    assert proc.returncode == 0, proc.stdout
    assert {mark for mark, _ in checks.values()} == {"ok"}, proc.stdout
    assert set(checks) == {
        "python",
        "git",
        "rules and config",
        "credential store",
        "key source",
        "encrypted state",
        "pre-commit hook",
        "pre-push hook",
        "secret store",
        "server",
    }
    assert checks["credential store"][1] == "keyring.backends.SecretService.Keyring"
    assert checks["key source"][1] == "SENTRA_KEY (environment)"
    assert checks["encrypted state"][1] == "keys and ledger open (format 1), 1 scans recorded"
    assert checks["pre-commit hook"][1].endswith(str(Path(".git") / "hooks" / "pre-commit"))
    assert checks["secret store"][1].endswith("secrets.enc (format v1)")
    assert checks["server"][1] == f"http://127.0.0.1:{port} healthy"


def test_nothing_configured_says_what_to_fix(repo: Repo) -> None:
    repo.commit_files({"README.md": "hello\n"})
    proc, checks = doctor(repo.path, dict(os.environ))  # no key source, no credential store, no hooks
    assert proc.returncode == 3, proc.stdout
    mark, detail = checks["key source"]
    assert mark == "FAIL"
    assert "no key source" in detail
    assert "fix: provide a key source" in detail
    assert "SENTRA_KEY" in detail
    assert checks["pre-commit hook"] == ("FAIL", "not installed | fix: sentra install --hook pre-commit")
    assert checks["pre-push hook"] == ("warn", "not installed | fix: sentra install --hook pre-push")
    assert checks["credential store"][0] == "warn"
    assert checks["encrypted state"][0] == "ok"  # nothing yet is not a problem
    assert "created by the first recorded scan" in checks["encrypted state"][1]


def test_each_problem_is_named_with_its_fix(repo: Repo, tmp_path: Path) -> None:
    key = new_key()
    env = {**os.environ, "SENTRA_KEY": key}
    configure(repo, env)
    proc, _ = doctor(repo.path, env)
    assert proc.returncode == 0, proc.stdout
    sentra_dir = repo.path / ".git" / "sentra"
    keys_file, ledger = sentra_dir / "keys.json", sentra_dir / "ledger.db"
    store = repo.path / ".sentra" / "secrets.enc"
    backup = tmp_path / "backup"
    backup.mkdir()
    for f in (keys_file, ledger, store):
        shutil.copy2(f, backup / f.name)

    def restore() -> None:
        for f in (keys_file, ledger, store):
            shutil.copy2(backup / f.name, f)
        (repo.path / ".sentra.yaml").unlink(missing_ok=True)

    def newer_keys() -> None:
        doc = json.loads(keys_file.read_text())
        keys_file.write_text(json.dumps({**doc, "version": 99}))

    loose = tmp_path / "loose.key"
    loose.write_text(new_key())
    loose.chmod(0o644)
    cases: list[tuple[str, dict[str, str], object, str, str]] = [
        # (what, env changes, file change, check that fails, words of its message or fix)
        ("another key", {"SENTRA_KEY": new_key()}, None, "encrypted state", "wrong key or password"),
        ("not base64", {"SENTRA_KEY": "not base64!"}, None, "key source", "not valid base64"),
        ("loose key file", {"SENTRA_KEY": "", "SENTRA_KEY_FILE": str(loose)}, None, "key source", "fix: chmod 600"),
        ("corrupt keys.json", {}, lambda: keys_file.write_text("{"), "encrypted state", "fix: restore it"),
        ("newer keys.json", {}, newer_keys, "encrypted state", "unsupported format version 99"),
        ("corrupt ledger", {}, lambda: ledger.write_bytes(b"garbage"), "encrypted state", "fix: move it aside"),
        ("unknown store", {}, lambda: store.write_text("what is this\n"), "secret store", "unknown format"),
        (
            "invalid config",
            {},
            lambda: (repo.path / ".sentra.yaml").write_text("rules: [\n"),
            "rules and config",
            "invalid YAML",
        ),
        ("server down", {"SENTRA_SERVER": f"http://127.0.0.1:{free_port()}"}, None, "server", "fix: start the server"),
    ]
    for what, env_changes, change, check, words in cases:
        if callable(change):
            change()
        try:
            proc, checks = doctor(repo.path, {**env, **env_changes})
        finally:
            restore()
        assert proc.returncode == 3, f"{what}:\n{proc.stdout}"
        assert checks[check][0] == "FAIL", f"{what}:\n{proc.stdout}"
        assert words in checks[check][1], f"{what}:\n{proc.stdout}"
        assert key not in proc.stdout + proc.stderr


def test_outside_a_repository(tmp_path: Path) -> None:
    proc, checks = doctor(tmp_path, {**os.environ, "SENTRA_KEY": new_key()})
    assert proc.returncode == 0, proc.stdout
    assert "not inside a git repository" in checks["repository"][1]
    assert "pre-commit hook" not in checks
