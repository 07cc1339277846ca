"""`sentra hook pre-receive` on a bare "server" repository: installed as `hooks/pre-receive`
and pushed to for real, and called directly as git calls it."""

from __future__ import annotations

import json
import re
import shlex
import sys
from pathlib import Path

import pytest

from sentra_scan.ranges import ZERO
from tests.helpers import Repo, assert_no_leak, canary_github_token, init_bare, init_repo, sentra

TOKEN = canary_github_token("prereceive")
OLD_TOKEN = canary_github_token("prereceive-old")
MASKED = TOKEN[:4] + "********"


@pytest.fixture(scope="module")
def rules_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rules-cache")


@pytest.fixture(autouse=True)
def _quick_cli(monkeypatch: pytest.MonkeyPatch, rules_cache: Path) -> None:
    """One parsed-rules cache for the module's CLI runs (hooks inherit it); no ledger."""
    monkeypatch.setenv("SENTRA_CACHE_DIR", str(rules_cache))
    monkeypatch.setenv("SENTRA_NO_RECORD", "1")


def install_pre_receive(server: Repo, *args: str) -> None:
    hook = server.path / "hooks" / "pre-receive"
    extra = "".join(f" {shlex.quote(a)}" for a in args)
    hook.write_text(
        f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m sentra_scan hook pre-receive{extra} "$@"\n',
        encoding="utf-8",
    )
    hook.chmod(0o755)


@pytest.fixture
def server(tmp_path: Path) -> Repo:
    return init_bare(tmp_path / "server.git")


@pytest.fixture
def client(tmp_path: Path, server: Repo) -> Repo:
    """main is on the server, with an old secret pushed before the hook was installed."""
    repo = init_repo(tmp_path / "client")
    repo.add_remote(server)
    repo.commit_files({"README.md": "# r\n"}, "initial")
    repo.commit_files({"legacy/old.py": f"OLD = '{OLD_TOKEN}'\n"}, "old secret")
    repo.git("push", "-q", "origin", "main")
    install_pre_receive(server)
    return repo


def push(repo: Repo, *args: str) -> tuple[int, str]:
    proc = repo.proc("push", "origin", *args)
    assert_no_leak(proc, TOKEN, OLD_TOKEN)
    return proc.returncode, proc.stderr


def ref(server: Repo, name: str = "main") -> str:
    return server.git("rev-parse", "--verify", "--quiet", f"refs/heads/{name}", check=False).strip()


def leak(repo: Repo, path: str = "app/leak.py") -> str:
    return repo.commit_files({path: f"x = 1\nTOKEN = '{TOKEN}'\n"}, f"add {path}")


def many_commits(repo: Repo, n: int) -> str:
    """n commits on top of HEAD in one `git fast-import`, each changing one file; HEAD moves."""
    parent = repo.head()
    stream = []
    for i in range(n):
        body = f"change {i}\n"
        stream += [
            "commit refs/heads/main",
            f"committer Test Committer <committer@example.test> {1_760_000_000 + i} +0000",
            f"data {len(f'c{i}')}",
            f"c{i}",
        ]
        if i == 0:
            stream.append(f"from {parent}")
        stream += [f"M 100644 inline many/{i % 7}.txt", f"data {len(body)}", body.rstrip("\n"), ""]
    proc = repo.proc("fast-import", "--quiet", input=("\n".join(stream) + "\n").encode())
    assert proc.returncode == 0, proc.stderr
    repo.git("reset", "-q", "--hard", "main")
    return repo.head()


def test_secret_is_rejected(client: Repo, server: Repo) -> None:
    before = ref(server)
    sha = leak(client)
    code, err = push(client, "main")
    assert code != 0
    assert "pre-receive hook declined" in err
    assert "app/leak.py:2:" in err
    assert "github-pat" in err
    assert MASKED in err
    assert f"commit {sha[:12]}" in err
    assert "push rejected" in err
    assert "legacy/old.py" not in err  # already on the server: not this push's
    assert ref(server) == before


def test_clean_push_is_accepted(client: Repo, server: Repo) -> None:
    sha = client.commit_files({"README.md": "# r\nmore\n"}, "docs")
    code, err = push(client, "main")
    assert code == 0, err
    assert ref(server) == sha


def test_new_branch_scans_only_commits_not_on_the_server(client: Repo, server: Repo) -> None:
    client.branch("feature")
    clean = client.commit_files({"f.txt": "f\n"}, "feature")
    code, err = push(client, "feature")
    assert code == 0, err  # legacy/old.py's secret is reachable from main already
    assert ref(server, "feature") == clean
    client.branch("feature-2")
    bad = leak(client, "f2/leak.py")
    code, err = push(client, "feature-2")
    assert code != 0
    assert f"commit {bad[:12]}" in err
    assert "1 secret in the pushed commits" in err
    assert ref(server, "feature-2") == ""


def test_deletion_is_accepted(client: Repo, server: Repo) -> None:
    client.branch("gone")
    client.commit_files({"g.txt": "g\n"}, "g")
    assert push(client, "gone")[0] == 0
    code, err = push(client, ":gone")
    assert code == 0, err
    assert ref(server, "gone") == ""


def test_budget_says_what_was_left_unscanned(client: Repo, server: Repo) -> None:
    install_pre_receive(server, "--budget", "1ms")
    tip = many_commits(client, 25)
    code, err = push(client, "main")
    assert code == 0, err  # not strict: accepted, but never silently
    assert ref(server) == tip
    assert unscanned(err, 25, "0.001s") >= 1
    assert "not fully scanned" in err
    assert "sentra scan --commits" in err


def test_budget_with_strict_rejects(client: Repo, server: Repo) -> None:
    install_pre_receive(server, "--budget=1ms", "--strict")
    before = ref(server)
    many_commits(client, 12)
    code, err = push(client, "main")
    assert code != 0
    assert unscanned(err, 12, "0.001s") >= 1
    assert ref(server) == before


def unscanned(stderr: str, total: int, budget: str) -> int:
    """How many commits the hook says it left unscanned (how many it got through within a
    1ms budget depends on how fast git starts)."""
    m = re.search(rf"(\d+) of {total} commits were not scanned within the {re.escape(budget)} budget", stderr)
    assert m, stderr
    return int(m.group(1))


def land_objects(client: Repo, server: Repo, rev: str) -> None:
    """Put the objects of `rev` in the server without a ref, as during a pre-receive hook."""
    client.git("branch", "-f", "incoming", rev)
    server.git("fetch", "-q", str(client.path), "incoming:refs/incoming/tmp")  # fetch: no hook runs
    server.git("update-ref", "-d", "refs/incoming/tmp")


def test_direct_call_exit_codes(client: Repo, server: Repo) -> None:
    old = ref(server)
    tip = many_commits(client, 10)
    land_objects(client, server, tip)
    stdin = f"{old} {tip} refs/heads/main\n".encode()
    strict = sentra(["hook", "pre-receive", "--budget", "1ms", "--strict"], server.path, input=stdin)
    assert strict.returncode == 4
    assert unscanned(strict.stderr, 10, "0.001s") >= 1
    lenient = sentra(["hook", "pre-receive", "--budget", "1ms"], server.path, input=stdin)
    assert lenient.returncode == 0
    assert "were not scanned" in lenient.stderr
    full = sentra(["hook", "pre-receive"], server.path, input=stdin)  # default budget: 4s
    assert (full.returncode, full.stderr) == (0, "")


def test_direct_call_json_and_new_branch(client: Repo, server: Repo) -> None:
    client.branch("topic")
    bad = leak(client)
    land_objects(client, server, bad)
    stdin = f"{ZERO} {bad} refs/heads/topic\n".encode()
    proc = sentra(["hook", "pre-receive", "--format", "json"], server.path, input=stdin)
    assert_no_leak(proc, TOKEN, OLD_TOKEN)
    assert proc.returncode == 1
    findings = json.loads(proc.stdout)["findings"]
    assert [(f["path"], f["commit"]["id"]) for f in findings] == [("app/leak.py", bad)]


@pytest.mark.parametrize(
    ("args", "message"), [(["--budget", "soon"], "expected a duration"), (["--budget", "0s"], "positive")]
)
def test_bad_budget_is_a_usage_error(server: Repo, args: list[str], message: str) -> None:
    proc = sentra(["hook", "pre-receive", *args], server.path, input=b"")
    assert proc.returncode == 2
    assert message in proc.stderr
