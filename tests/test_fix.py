"""`sentra fix`: the hook's remedy outside a hook. Scripted (`--yes --name-scheme`), on a
terminal (it asks), and refusing without either; never a value in its output."""

from __future__ import annotations

import ast
import base64
import json
import os
import sys
from pathlib import Path

import pytest
import yaml

from sentra_scan.ruleset.examples import expand
from tests.helpers import Repo, run, sentra
from tests.test_hook_prompt import assert_nowhere, on_pty

KEY = expand("sk_live_{{alnum:32}}", "fix-tests")
SCHEME = ["--name-scheme", "dev/{name}"]


@pytest.fixture(scope="module")
def rule_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rule-cache")


@pytest.fixture(autouse=True)
def env(hermetic_env: Path, rule_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTRA_CACHE_DIR", str(rule_cache))
    monkeypatch.setenv("SENTRA_KEY", base64.b64encode(os.urandom(32)).decode())


@pytest.fixture
def leaky(repo: Repo) -> Repo:
    repo.commit_files({"README.md": "# readme\n"})
    repo.stage("app.py", f'"""App."""\nstripe_key = "{KEY}"\n')
    repo.stage(".env", f"STRIPE_SECRET_KEY={KEY}\n")
    repo.stage("config.yaml", f"payments:\n  stripe_key: {KEY}\n")
    repo.stage("web/pay.js", f"export const stripeKey = '{KEY}';\n")
    return repo


def test_yes_moves_every_finding(leaky: Repo) -> None:
    proc = sentra(["fix", "--yes", *SCHEME], leaky.path)
    assert proc.returncode == 0, proc.stderr
    assert "no secrets left" in proc.stderr
    assert proc.stderr.count("moved:") == 4
    ast.parse(leaky.git("show", ":app.py"))
    assert yaml.safe_load(leaky.git("show", ":config.yaml")) == {"payments": {"stripe_key": "sentra://env/STRIPE_KEY"}}
    assert leaky.git("show", ":.env") == "STRIPE_SECRET_KEY=${STRIPE_SECRET_KEY}\n"
    run(["node", "--check", "web/pay.js"], leaky.path)
    assert sentra(["scan", "--staged"], leaky.path).returncode == 0
    listed = sentra(["secrets", "list"], leaky.path).stdout.split()
    assert listed == ["dev/STRIPE_KEY", "dev/STRIPE_SECRET_KEY"]
    records = [json.loads(line) for line in (leaky.path / ".sentra" / "audit.log").read_text().splitlines()]
    assert {r["action"] for r in records} == {"move"}
    assert len(records) == 4
    leaky.commit("moved")
    assert_nowhere(leaky, KEY, proc.stdout, proc.stderr)


def test_name_scheme_places_the_entries(leaky: Repo) -> None:
    proc = sentra(["fix", "--yes", "--name-scheme", "staging/shop/{name}"], leaky.path)
    assert proc.returncode == 0, proc.stderr
    assert sentra(["secrets", "list"], leaky.path).stdout.split() == [
        "staging/shop/STRIPE_KEY",
        "staging/shop/STRIPE_SECRET_KEY",
    ]
    shown = sentra(
        ["run", "--env", "staging", "--", sys.executable, "-c", "import os; print(os.environ['STRIPE_KEY'])"],
        leaky.path,
    )
    assert shown.stdout == KEY + "\n"


def test_yes_needs_an_explicit_scheme(leaky: Repo) -> None:
    before = leaky.git("ls-files", "-s")
    proc = sentra(["fix", "--yes"], leaky.path)
    assert proc.returncode == 2
    assert "--name-scheme" in proc.stderr
    assert leaky.git("ls-files", "-s") == before


@pytest.mark.parametrize("scheme", ["dev/STRIPE", "dev/{name}-x", "../{name}", "{name}"])
def test_a_bad_scheme_is_a_usage_error(leaky: Repo, scheme: str) -> None:
    before = leaky.git("ls-files", "-s")
    proc = sentra(["fix", "--yes", "--name-scheme", scheme], leaky.path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert leaky.git("ls-files", "-s") == before


def test_without_a_terminal_it_asks_for_yes(leaky: Repo) -> None:
    before = leaky.git("ls-files", "-s")
    proc = sentra(["fix"], leaky.path)
    assert proc.returncode == 2
    assert "--yes --name-scheme" in proc.stderr
    assert leaky.git("ls-files", "-s") == before


def test_nothing_staged(repo: Repo) -> None:
    repo.stage("app.py", "print('hello')\n")
    proc = sentra(["fix", "--yes", *SCHEME], repo.path)
    assert proc.returncode == 0
    assert "no secrets" in proc.stdout


def test_what_cannot_move_is_left_and_exit_1(repo: Repo) -> None:
    repo.stage("a.py", f'key = f"{{prefix}}{KEY}"\n')
    proc = sentra(["fix", "--yes", *SCHEME], repo.path)
    assert proc.returncode == 1
    assert "move it by hand" in proc.stderr
    assert "sentra fix" in proc.stderr
    assert KEY not in proc.stdout + proc.stderr


def test_interactive_on_a_terminal(leaky: Repo) -> None:
    sentra_bin = str(Path(sys.executable).parent / "sentra")
    t = on_pty([sentra_bin, "fix"], leaky.path, ["m\n", "a\n", "m\n", "b\n"])
    assert t.prompts == 4
    assert t.code == 1  # one left blocked
    assert KEY not in t.text
    staged = {p: leaky.git("show", f":{p}") for p in (".env", "app.py", "config.yaml", "web/pay.js")}
    assert staged[".env"] == "STRIPE_SECRET_KEY=${STRIPE_SECRET_KEY}\n"
    assert "# sentra:allow" in staged["app.py"]
    assert "sentra://env/STRIPE_KEY" in staged["config.yaml"]
    assert KEY in staged["web/pay.js"]


# --- the store refuses: nothing changes -----------------------------------------------------


def test_wrong_key_changes_nothing(leaky: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    assert sentra(["secrets", "set", "dev/OTHER", "--value-stdin"], leaky.path, input=b"v").returncode == 0
    store = leaky.path / ".sentra" / "secrets.enc"
    before = (store.read_bytes(), leaky.git("ls-files", "-s"), leaky.git("diff"))
    monkeypatch.setenv("SENTRA_KEY", base64.b64encode(os.urandom(32)).decode())
    proc = sentra(["fix", "--yes", *SCHEME], leaky.path)
    assert proc.returncode == 6
    assert "wrong key" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert (store.read_bytes(), leaky.git("ls-files", "-s"), leaky.git("diff")) == before
    assert KEY not in proc.stdout + proc.stderr


def test_an_edited_audit_log_refuses_the_move(leaky: Repo) -> None:
    assert sentra(["secrets", "set", "dev/OTHER", "--value-stdin"], leaky.path, input=b"v").returncode == 0
    log = leaky.path / ".sentra" / "audit.log"
    log.write_text(log.read_text().replace('"set"', '"rm"'))
    store = leaky.path / ".sentra" / "secrets.enc"
    before = (store.read_bytes(), leaky.git("ls-files", "-s"), (leaky.path / "app.py").read_bytes())
    proc = sentra(["fix", "--yes", *SCHEME], leaky.path)
    assert proc.returncode == 6
    assert "audit log" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert (store.read_bytes(), leaky.git("ls-files", "-s"), (leaky.path / "app.py").read_bytes()) == before
