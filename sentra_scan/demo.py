"""`sentra demo`: the guard at work in a throwaway repository, with the embedded rules.

It creates a temporary git repository, installs the pre-commit hook, stages a file that
holds a freshly generated (fake, never valid) GitHub-format token and runs `git commit`:
the commit is refused. Then it commits clean code, which goes through.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from sentra_scan.install import install
from sentra_scan.ruleset.examples import expand

_ENV = {
    "GIT_AUTHOR_NAME": "Sentra Demo",
    "GIT_AUTHOR_EMAIL": "demo@sentra.invalid",
    "GIT_COMMITTER_NAME": "Sentra Demo",
    "GIT_COMMITTER_EMAIL": "demo@sentra.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **_ENV, "GIT_CONFIG_GLOBAL": os.devnull}
    return subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=False)


def run_demo(say: Callable[[str], None]) -> bool:
    """Returns True when the guard blocked the secret and let the clean commit through."""
    with tempfile.TemporaryDirectory(prefix="sentra-demo-") as tmp:
        repo = Path(tmp)
        _git(repo, "init", "-q", "-b", "main")
        install("pre-commit", repo)
        token = expand("ghp_{{github:36}}", secrets.token_hex(8))
        (repo / "app.py").write_text(f'import os\n\nGITHUB_TOKEN = "{token}"\n', encoding="utf-8")
        _git(repo, "add", "app.py")
        say(f"$ git commit -m 'add app'   # in {repo}, app.py line 3 holds a (fake) GitHub token")
        blocked = _git(repo, "commit", "-q", "-m", "add app")
        say((blocked.stdout + blocked.stderr).rstrip())
        say(f"-> commit {'refused' if blocked.returncode else 'ACCEPTED (unexpected)'} (exit {blocked.returncode})\n")
        (repo / "app.py").write_text('import os\n\nGITHUB_TOKEN = os.environ["GITHUB_TOKEN"]\n', encoding="utf-8")
        _git(repo, "add", "app.py")
        say("$ git commit -m 'add app'   # the token now comes from the environment")
        clean = _git(repo, "commit", "-q", "-m", "add app")
        say(f"-> commit {'accepted' if clean.returncode == 0 else 'refused'} (exit {clean.returncode})")
        return blocked.returncode != 0 and clean.returncode == 0
