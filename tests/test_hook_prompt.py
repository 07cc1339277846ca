"""The pre-commit hook's prompt, end to end: `sentra install`, a real `git commit` on a
pseudo-terminal that is its controlling terminal (so the hook can open /dev/tty), and the
answers typed there. Without a terminal the hook never asks: it names `sentra fix`."""

from __future__ import annotations

import base64
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from sentra_scan.ruleset.examples import expand
from tests.helpers import Repo, run, sentra

PROMPT = "[m/a/B] "
# A child that makes its stdin (the pty) its controlling terminal, then runs the command.
_CTTY = "import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); os.execvp(sys.argv[1], sys.argv[1:])"


def stripe_key(seed: str) -> str:
    """A Stripe-format live key (rule stripe-secret-key), generated here, never on disk."""
    return expand("sk_live_{{alnum:32}}", seed)


@dataclass
class Transcript:
    code: int
    text: str  # everything the terminal showed (\r\n line ends)
    prompts: int


def on_pty(cmd: Sequence[str], cwd: Path, answers: Sequence[str], *, timeout: float = 120) -> Transcript:
    """Run `cmd` in a new session whose controlling terminal is a fresh pty; type the next
    answer each time PROMPT appears. Fails (after killing it) if it hangs."""
    master, slave = os.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-c", _CTTY, *cmd], cwd=cwd, stdin=slave, stdout=slave, stderr=slave, start_new_session=True
    )
    os.close(slave)
    out = b""
    seen = 0
    pending = list(answers)
    deadline = time.monotonic() + timeout
    try:
        while True:
            if time.monotonic() > deadline:
                os.killpg(proc.pid, signal.SIGKILL)
                raise AssertionError(f"{cmd} hung; the terminal showed:\n{out.decode('utf-8', 'replace')}")
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: every slave descriptor is closed, the command is done
                    break
                if not chunk:
                    break
                out += chunk
            if out.count(PROMPT.encode()) > seen and pending:
                seen += 1
                os.write(master, pending.pop(0).encode())
    finally:
        os.close(master)
    code = proc.wait(timeout=30)
    text = out.decode("utf-8", "replace")
    return Transcript(code, text, text.count(PROMPT))


@pytest.fixture(scope="module")
def rule_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rule-cache")


@pytest.fixture(autouse=True)
def env(hermetic_env: Path, rule_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTRA_CACHE_DIR", str(rule_cache))
    monkeypatch.setenv("SENTRA_KEY", base64.b64encode(os.urandom(32)).decode())
    for var in ("SENTRA_NO_PROMPT", "PRE_COMMIT"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def hooked(repo: Repo) -> Repo:
    repo.commit_files({"README.md": "# readme\n"})
    proc = sentra(["install"], repo.path)
    assert proc.returncode == 0, proc.stderr
    return repo


def commit(repo: Repo, answers: Sequence[str], *args: str) -> Transcript:
    return on_pty(["git", "commit", "-m", "add code", *args], repo.path, answers)


def sentra_ok(args: list[str], repo: Repo) -> str:
    proc = sentra(args, repo.path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def assert_nowhere(repo: Repo, secret: str, *outputs: str) -> None:
    """The canary: not in any output, not in any file of the work tree or the git directory
    (the object store aside: `git add` put the blob there), not in the committed history."""
    for text in outputs:
        assert secret not in text
    needle = secret.encode()
    for path in repo.path.rglob("*"):
        if path.is_file() and "objects" not in path.relative_to(repo.path).parts:
            assert needle not in path.read_bytes(), f"the secret is in {path}"
    assert secret not in repo.git("log", "-p", "--all")
    assert repo.git("grep", "-c", secret, "HEAD", check=False) == ""


def audit_actions(repo: Repo) -> list[tuple[str, str]]:
    log = (repo.path / ".sentra" / "audit.log").read_text(encoding="utf-8")
    return [(r["action"], r["path"]) for r in map(json.loads, log.splitlines())]


# --- [m]ove, end to end ---------------------------------------------------------------------


def test_move_python(hooked: Repo) -> None:
    key = stripe_key("prompt-python")
    hooked.stage("app.py", f'"""The app."""\n\nstripe_key = "{key}"\nprint(stripe_key, end="")\n')
    hooked.write("app.py", f'"""The app."""\n\nstripe_key = "{key}"\nprint(stripe_key, end="")\nprint()  # unstaged\n')
    t = commit(hooked, ["m\n"])
    assert t.code == 0, t.text
    assert t.prompts == 1
    assert "app.py:3" in t.text
    assert "stripe-secret-key" in t.text
    assert "dev/STRIPE_KEY" in t.text
    committed = hooked.git("show", "HEAD:app.py")
    assert (
        committed == '"""The app."""\nimport os\n\nstripe_key = os.environ["STRIPE_KEY"]\nprint(stripe_key, end="")\n'
    )
    work = (hooked.path / "app.py").read_text(encoding="utf-8")
    assert work == committed + "print()  # unstaged\n"  # the unstaged edit survived
    assert hooked.git("status", "--porcelain") == " M app.py\n"  # index == HEAD, edit still unstaged
    assert sentra_ok(["secrets", "list"], hooked) == "dev/STRIPE_KEY\n"
    assert sentra_ok(["run", "--", sys.executable, "app.py"], hooked) == key + "\n"  # print() is the unstaged line
    assert audit_actions(hooked) == [("move", "dev/STRIPE_KEY")]
    assert_nowhere(hooked, key, t.text)


def test_move_dotenv(hooked: Repo) -> None:
    key = stripe_key("prompt-dotenv")
    hooked.stage(".env", f"APP_ENV=dev\nSTRIPE_SECRET_KEY={key}\n")
    t = commit(hooked, ["m\n"])
    assert t.code == 0, t.text
    committed = hooked.git("show", "HEAD:.env")
    assert committed == "APP_ENV=dev\nSTRIPE_SECRET_KEY=${STRIPE_SECRET_KEY}\n"
    shown = sentra_ok(["run", "--", "sh", "-c", '. ./.env && printf %s "$STRIPE_SECRET_KEY"'], hooked)
    assert shown == key
    assert_nowhere(hooked, key, t.text)


def test_move_yaml(hooked: Repo) -> None:
    key = stripe_key("prompt-yaml")
    hooked.stage("config/app.yaml", f"stripe:\n  stripe_key: '{key}'\n  currency: eur\n")
    t = commit(hooked, ["m\n"])
    assert t.code == 0, t.text
    committed = hooked.git("show", "HEAD:config/app.yaml")
    assert yaml.safe_load(committed) == {"stripe": {"stripe_key": "sentra://env/STRIPE_KEY", "currency": "eur"}}
    out = hooked.path / "rendered.yaml"
    sentra_ok(["inject", "-i", "config/app.yaml", "-o", str(out)], hooked)
    assert yaml.safe_load(out.read_text(encoding="utf-8"))["stripe"]["stripe_key"] == key
    assert out.stat().st_mode & 0o777 == 0o600
    out.unlink()
    assert_nowhere(hooked, key, t.text)


def test_move_javascript(hooked: Repo) -> None:
    key = stripe_key("prompt-js")
    hooked.stage("src/pay.js", f'const stripeKey = "{key}";\nprocess.stdout.write(stripeKey);\n')
    t = commit(hooked, ["m\n"])
    assert t.code == 0, t.text
    committed = hooked.git("show", "HEAD:src/pay.js")
    assert committed == "const stripeKey = process.env.STRIPE_KEY;\nprocess.stdout.write(stripeKey);\n"
    run(["node", "--check", "src/pay.js"], hooked.path)
    assert sentra_ok(["run", "--", "node", "src/pay.js"], hooked) == key
    assert_nowhere(hooked, key, t.text)


def test_several_findings_one_prompt_each(hooked: Repo) -> None:
    key, other = stripe_key("prompt-a"), stripe_key("prompt-b")
    hooked.stage("a.py", f'stripe_key = "{key}"\n')
    hooked.stage("b.py", f'stripe_key = "{other}"\n')  # the same name, another value: a suffix
    t = commit(hooked, ["m\n", "m\n"])
    assert t.code == 0, t.text
    assert t.prompts == 2
    assert 'os.environ["STRIPE_KEY_2"]' in hooked.git("show", "HEAD:b.py")
    assert sentra_ok(["secrets", "list"], hooked) == "dev/STRIPE_KEY\ndev/STRIPE_KEY_2\n"
    assert_nowhere(hooked, key, t.text)
    assert_nowhere(hooked, other, t.text)


def test_partial_commit_leaves_no_secret_staged(hooked: Repo) -> None:
    """`git commit PATH` commits a temporary index; the real one must be fixed too."""
    key = stripe_key("prompt-partial")
    hooked.write("app.py", f'stripe_key = "{key}"\n')
    hooked.git("add", "-N", "app.py")
    t = commit(hooked, ["m\n"], "app.py")
    assert t.code == 0, t.text
    assert hooked.git("status", "--porcelain") == ""
    assert_nowhere(hooked, key, t.text)


# --- [a]llow and [b]locked -------------------------------------------------------------------


def test_allow_adds_an_inline_comment(hooked: Repo) -> None:
    key = stripe_key("prompt-allow")
    hooked.stage("fixture.js", f'const sample = "{key}";\n')
    t = commit(hooked, ["a\n"])
    assert t.code == 0, t.text
    assert hooked.git("show", "HEAD:fixture.js") == f'const sample = "{key}";  // sentra:allow stripe-secret-key\n'
    assert key not in t.text
    assert not (hooked.path / ".sentra").exists()  # nothing was stored


def test_allow_in_json_goes_to_the_baseline(hooked: Repo) -> None:
    key = stripe_key("prompt-baseline")
    hooked.stage("fixture.json", f'{{"stripe": "{key}"}}\n')
    t = commit(hooked, ["a\n"])
    assert t.code == 0, t.text
    assert "stripe-secret-key" in hooked.git("show", "HEAD:.sentra-baseline")
    assert key not in hooked.git("show", "HEAD:.sentra-baseline")
    assert key not in t.text


@pytest.mark.parametrize("answer", ["b\n", "\n", "\x04"], ids=["b", "enter", "eof"])
def test_blocked_changes_nothing(hooked: Repo, answer: str) -> None:
    key = stripe_key("prompt-block")
    content = f'stripe_key = "{key}"\n'
    hooked.stage("app.py", content)
    head = hooked.head()
    t = commit(hooked, [answer])
    assert t.code != 0
    assert hooked.head() == head
    assert hooked.git("show", ":app.py") == content
    assert (hooked.path / "app.py").read_text(encoding="utf-8") == content
    assert not (hooked.path / ".sentra").exists()
    assert "sentra fix" in t.text
    assert key not in t.text


def test_a_wrong_answer_asks_again(hooked: Repo) -> None:
    hooked.stage("app.py", f'stripe_key = "{stripe_key("prompt-again")}"\n')
    t = commit(hooked, ["x\n", "b\n"])
    assert t.code != 0
    assert t.prompts == 2
    assert "please answer" in t.text


# --- no terminal: never ask ------------------------------------------------------------------


def test_without_a_terminal_it_names_sentra_fix_and_never_waits(hooked: Repo) -> None:
    key = stripe_key("prompt-ci")
    hooked.stage("app.py", f'stripe_key = "{key}"\n')
    proc = subprocess.run(
        ["git", "commit", "-m", "x"],
        cwd=hooked.path,
        capture_output=True,
        text=True,
        start_new_session=True,  # no controlling terminal: /dev/tty cannot be opened
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1
    assert "app.py:1" in proc.stderr
    assert "sentra fix" in proc.stderr
    assert PROMPT not in proc.stderr + proc.stdout
    assert key not in proc.stderr + proc.stdout


@pytest.mark.parametrize("var", ["SENTRA_NO_PROMPT", "PRE_COMMIT"])
def test_prompt_can_be_turned_off_on_a_terminal(hooked: Repo, monkeypatch: pytest.MonkeyPatch, var: str) -> None:
    monkeypatch.setenv(var, "1")
    hooked.stage("app.py", f'stripe_key = "{stripe_key("prompt-off")}"\n')
    t = commit(hooked, [])
    assert t.code == 1
    assert t.prompts == 0
    assert "sentra fix" in t.text


def test_output_captured_by_a_client_never_prompts(hooked: Repo, tmp_path: Path) -> None:
    """A GUI client started from a terminal has /dev/tty but reads the hook's output itself:
    a question there would hang it unseen."""
    hooked.stage("app.py", f'stripe_key = "{stripe_key("prompt-gui")}"\n')
    log = tmp_path / "client.log"
    t = on_pty(["sh", "-c", f"git commit -m x 2>'{log}'"], hooked.path, [])
    assert t.code == 1
    assert t.prompts == 0
    assert "sentra fix" in log.read_text(encoding="utf-8")


def test_machine_formats_never_prompt(hooked: Repo) -> None:
    hooked.stage("app.py", f'stripe_key = "{stripe_key("prompt-json")}"\n')
    t = on_pty([str(Path(sys.executable).parent / "sentra"), "hook", "pre-commit", "--format", "json"], hooked.path, [])
    assert t.code == 1
    assert t.prompts == 0


def test_clean_commit_path_loads_nothing_for_the_prompt(repo: Repo) -> None:
    repo.stage("app.py", 'stripe_key = os.environ["STRIPE_KEY"]\n')
    probe = (
        "import sys\n"
        "from sentra_scan.cli import main\n"
        "code = main(['hook', 'pre-commit'])\n"
        "print(code, sorted(m for m in sys.modules if m.startswith(('sentra_scan.move', 'sentra_scan.store'))))\n"
    )
    proc = run([sys.executable, "-c", probe], repo.path, check=False)
    assert proc.stdout.strip() == "0 []", proc.stdout + proc.stderr
