"""Moving a secret out of the code, in process, on real git repositories: the name it gets,
the reference that replaces it in each kind of file (which must still parse), the staged
blob and the working-tree file rewritten separately, the store and its audit log."""

from __future__ import annotations

import ast
import base64
import json
import os
import shutil
import subprocess
import tomllib
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import yaml

from sentra_scan.api import make_scanner, scan_staged
from sentra_scan.errors import UsageError
from sentra_scan.model import Finding
from sentra_scan.move import Fixer, MoveError, ensure_import, entry_path, find_literal, language
from sentra_scan.move.naming import assigned_name, env_name
from sentra_scan.ruleset.examples import expand
from sentra_scan.store import Store
from sentra_scan.storeops import open_store, render
from tests.helpers import Repo

KEY = expand("sk_live_{{alnum:32}}", "move-tests")
OTHER = expand("sk_live_{{alnum:32}}", "move-tests-other")
DB_PASSWORD = expand("{{alnum:20}}", "move-tests-db")


@pytest.fixture(autouse=True)
def store_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTRA_KEY", base64.b64encode(os.urandom(32)).decode())


@pytest.fixture
def cleanup() -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


def make_fixer(repo: Repo, cleanup: ExitStack, scheme: str = "dev/{name}") -> Fixer:
    def store() -> Store:
        state, opened, _config = open_store(repo.path)
        cleanup.callback(state.close)
        return opened

    return Fixer(repo.path, scheme, store, repo.path / ".sentra-baseline")


def findings(repo: Repo) -> tuple[Finding, ...]:
    return scan_staged(repo.path, scanner=make_scanner(start=repo.path)).findings


def move_all(repo: Repo, cleanup: ExitStack, scheme: str = "dev/{name}") -> list[str]:
    """Move every staged finding; the store entries they went to."""
    fixer = make_fixer(repo, cleanup, scheme)
    found = findings(repo)
    assert found, "nothing was found to move"
    entries = [fixer.move(f).entry for f in found if fixer.pending(f)]
    fixer.finish()
    return entries


def staged(repo: Repo, path: str) -> str:
    return repo.git("show", f":{path}")


def stored(repo: Repo, entry: str) -> str:
    state, store, _ = open_store(repo.path)
    try:
        return store.get(entry)
    finally:
        state.close()


# --- per language: the reference, and the file still parses ---------------------------------


def node_check(text: str, tmp: Path) -> None:
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    script = tmp / "check.js"
    script.write_text(text, encoding="utf-8")
    subprocess.run(["node", "--check", str(script)], check=True, capture_output=True)


def sh_check(text: str, tmp: Path) -> None:
    script = tmp / "check.sh"
    script.write_text(text, encoding="utf-8")
    subprocess.run(["sh", "-n", str(script)], check=True, capture_output=True)


def no_check(text: str, tmp: Path) -> None:
    pass


def py_check(text: str, tmp: Path) -> None:
    ast.parse(text)


def yaml_check(text: str, tmp: Path) -> None:
    yaml.safe_load(text)


def json_check(text: str, tmp: Path) -> None:
    json.loads(text)


def toml_check(text: str, tmp: Path) -> None:
    tomllib.loads(text)


Checker = Callable[[str, Path], object]
CASES: list[tuple[str, str, str, str, Checker]] = [
    # path, content ({S}: the secret), the entry, the reference expected in the file, parser
    ("app.py", 'stripe_key = "{S}"\nprint(stripe_key)\n', "dev/STRIPE_KEY", 'os.environ["STRIPE_KEY"]', py_check),
    ("cfg.py", "import os\n\nSETTINGS = {{'stripe': '{S}'}}\n", "dev/STRIPE", 'os.environ["STRIPE"]', py_check),
    ("raw.py", 'token = b"{S}"\n', "dev/STRIPE_SECRET_KEY", 'os.environb[b"STRIPE_SECRET_KEY"]', py_check),
    (
        "app.js",
        "const stripeKey = '{S}';\nconsole.log(stripeKey);\n",
        "dev/STRIPE_KEY",
        "process.env.STRIPE_KEY",
        node_check,
    ),
    (
        "lib/pay.mjs",
        "export const cfg = {{ apiKey: `{S}` }};\n",
        "dev/STRIPE_SECRET_KEY",
        "process.env.STRIPE_SECRET_KEY",
        node_check,
    ),
    (
        "web/pay.ts",
        'const stripe = new Stripe("{S}");\n',
        "dev/STRIPE_SECRET_KEY",
        "process.env.STRIPE_SECRET_KEY",
        no_check,
    ),
    (
        "main.go",
        'package main\n\nfunc main() {{\n\tstripeKey := "{S}"\n\t_ = stripeKey\n}}\n',
        "dev/STRIPE_KEY",
        'os.Getenv("STRIPE_KEY")',
        no_check,
    ),
    ("pay.rb", "Stripe.api_key = '{S}'\n", "dev/STRIPE_API_KEY", 'ENV.fetch("STRIPE_API_KEY")', no_check),
    (
        "Pay.java",
        'class Pay {{ String stripeKey = "{S}"; }}\n',
        "dev/STRIPE_KEY",
        'System.getenv("STRIPE_KEY")',
        no_check,
    ),
    (
        "deploy.sh",
        '#!/bin/sh\nexport STRIPE_KEY="{S}"\n',
        "dev/STRIPE_KEY",
        'export STRIPE_KEY="${STRIPE_KEY}"',
        sh_check,
    ),
    ("run.sh", "STRIPE_KEY={S} ./server\n", "dev/STRIPE_KEY", 'STRIPE_KEY="${STRIPE_KEY}" ./server', sh_check),
    (
        "config.yaml",
        "stripe:\n  secret_key: {S}\n",
        "dev/STRIPE_SECRET_KEY",
        "secret_key: sentra://env/STRIPE_SECRET_KEY",
        yaml_check,
    ),
    ("quoted.yml", "stripe_key: '{S}'\n", "dev/STRIPE_KEY", "stripe_key: 'sentra://env/STRIPE_KEY'", yaml_check),
    (
        "settings.json",
        '{{"stripe": {{"stripeKey": "{S}"}}}}\n',
        "dev/STRIPE_KEY",
        '"sentra://env/STRIPE_KEY"',
        json_check,
    ),
    ("pyproject.toml", '[tool.pay]\nstripe_key = "{S}"\n', "dev/STRIPE_KEY", '"sentra://env/STRIPE_KEY"', toml_check),
    ("main.tf", 'variable "x" {{\n  default = "{S}"\n}}\n', "dev/DEFAULT", '"sentra://env/DEFAULT"', no_check),
    (
        ".env",
        "APP_ENV=prod\nSTRIPE_SECRET_KEY={S}\n",
        "dev/STRIPE_SECRET_KEY",
        "STRIPE_SECRET_KEY=${STRIPE_SECRET_KEY}",
        no_check,
    ),
    ("web/.env.local", 'STRIPE_TOKEN="{S}"\n', "dev/STRIPE_TOKEN", 'STRIPE_TOKEN="${STRIPE_TOKEN}"', no_check),
    ("Dockerfile", "FROM alpine\nENV STRIPE_KEY={S}\n", "dev/STRIPE_KEY", "ENV STRIPE_KEY=${STRIPE_KEY}", no_check),
]


@pytest.mark.parametrize(("path", "template", "entry", "expected", "check"), CASES, ids=[c[0] for c in CASES])
def test_move_per_language(
    repo: Repo, cleanup: ExitStack, tmp_path: Path, path: str, template: str, entry: str, expected: str, check: Checker
) -> None:
    repo.stage(path, template.format(S=KEY))
    assert move_all(repo, cleanup) == [entry]
    text = staged(repo, path)
    assert KEY not in text
    assert expected in text
    check(text, tmp_path)
    assert (repo.path / path).read_text(encoding="utf-8") == text  # no unstaged edits: the same file
    assert stored(repo, entry) == KEY
    assert findings(repo) == ()


def test_python_import_goes_after_the_docstring_and_future_imports(repo: Repo, cleanup: ExitStack) -> None:
    repo.stage("app.py", f'"""Doc."""\n\nfrom __future__ import annotations\n\nimport sys\n\nKEY = "{KEY}"\n')
    move_all(repo, cleanup)
    lines = staged(repo, "app.py").splitlines()
    assert lines[:4] == ['"""Doc."""', "", "from __future__ import annotations", "import os"]
    assert 'KEY = os.environ["STRIPE_SECRET_KEY"]' in lines  # KEY alone is generic: the rule's name
    ast.parse("\n".join(lines))


def test_python_import_after_a_shebang_and_no_duplicate(repo: Repo, cleanup: ExitStack) -> None:
    repo.stage("a.py", f'#!/usr/bin/env python3\n# -*- coding: utf-8 -*-\nstripe_key = "{KEY}"\n')
    repo.stage("b.py", f'import os.path\nstripe_key = "{KEY}"\n')
    move_all(repo, cleanup)
    assert staged(repo, "a.py").splitlines()[:3] == ["#!/usr/bin/env python3", "# -*- coding: utf-8 -*-", "import os"]
    assert staged(repo, "b.py").count("import os") == 1


def test_go_import_is_added() -> None:
    block = 'package main\n\nimport (\n\t"fmt"\n)\n\nvar k = os.Getenv("K")\n'
    assert '\t"os"\n' in ensure_import(block, "go")
    single = 'package main\n\nvar k = os.Getenv("K")\n'
    assert 'package main\n\nimport "os"\n' in ensure_import(single, "go")
    has = 'package main\n\nimport "os"\n'
    assert ensure_import(has, "go") == has


def test_secret_inside_a_larger_literal_moves_the_whole_literal(repo: Repo, cleanup: ExitStack) -> None:
    url = f"postgres://app:{DB_PASSWORD}@db.internal:5432/app"
    repo.stage("db.py", f'DATABASE_URL = "{url}"\n')
    repo.stage("db.yaml", f"database:\n  url: {url}\n")
    entries = move_all(repo, cleanup)
    assert entries == ["dev/DATABASE_URL", "dev/URL"]
    assert staged(repo, "db.py") == 'import os\nDATABASE_URL = os.environ["DATABASE_URL"]\n'
    assert staged(repo, "db.yaml") == "database:\n  url: sentra://env/URL\n"
    assert stored(repo, "dev/DATABASE_URL") == url
    rendered = render(staged(repo, "db.yaml"), {"URL": stored(repo, "dev/URL")}, "db.yaml")
    assert yaml.safe_load(rendered) == {"database": {"url": url}}


def test_escaped_literal_stores_the_runtime_value(repo: Repo, cleanup: ExitStack) -> None:
    repo.stage("app.py", f'stripe_key = "{KEY}\\t"\n')
    move_all(repo, cleanup)
    assert stored(repo, "dev/STRIPE_KEY") == KEY + "\t"


# --- names ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "name"),
    [
        ("stripe_key = ", "STRIPE_KEY"),
        ("const stripeKey = ", "STRIPE_KEY"),
        ("    self.stripeAPIKey = ", "STRIPE_API_KEY"),
        ('config["payment_token"] = ', "PAYMENT_TOKEN"),
        ('  "stripe-key": ', "STRIPE_KEY"),
        ("stripe.api_key = ", "STRIPE_API_KEY"),
        ("stripe_key: str = ", "STRIPE_KEY"),
        ("client(:api_key => ", "API_KEY"),
        ("stripeKey := ", "STRIPE_KEY"),
        ("ENV STRIPE_KEY ", "STRIPE_KEY"),
        ("print(", None),
        ("", None),
    ],
)
def test_assigned_name(before: str, name: str | None) -> None:
    assert assigned_name(before) == name


def test_env_name() -> None:
    assert env_name("stripeKey") == "STRIPE_KEY"
    assert env_name("HTTPServerToken") == "HTTP_SERVER_TOKEN"
    assert env_name("2fa-secret") == "SECRET_2FA_SECRET"


def test_a_taken_name_gets_a_suffix_and_the_same_value_reuses_it(repo: Repo, cleanup: ExitStack) -> None:
    state, store, _ = open_store(repo.path)
    store.set("dev/STRIPE_KEY", OTHER)
    state.close()
    repo.stage("a.py", f'stripe_key = "{KEY}"\n')
    repo.stage("b.py", f'stripe_key = "{KEY}"\n')
    assert move_all(repo, cleanup) == ["dev/STRIPE_KEY_2", "dev/STRIPE_KEY_2"]
    assert 'os.environ["STRIPE_KEY_2"]' in staged(repo, "a.py")
    assert stored(repo, "dev/STRIPE_KEY") == OTHER  # never overwritten
    assert stored(repo, "dev/STRIPE_KEY_2") == KEY


def test_name_scheme(repo: Repo, cleanup: ExitStack) -> None:
    repo.stage("app.py", f'stripe_key = "{KEY}"\n')
    assert move_all(repo, cleanup, "staging/payments/{name}") == ["staging/payments/STRIPE_KEY"]
    assert entry_path("dev/{name}", "X") == "dev/X"
    with pytest.raises(MoveError):
        entry_path("dev/STRIPE", "X")
    with pytest.raises(MoveError):
        entry_path("dev/{name}-x", "X")
    with pytest.raises(UsageError):
        entry_path("../{name}", "X")


# --- the staged blob and the working tree -----------------------------------------------------


def test_unstaged_edits_survive(repo: Repo, cleanup: ExitStack) -> None:
    repo.commit_files({"app.py": "print('v1')\n"})
    repo.stage("app.py", f"print('v1')\nstripe_key = \"{KEY}\"\n")
    repo.write("app.py", f"# unstaged header\n\nprint('v2')\nstripe_key = \"{KEY}\"\nprint('unstaged tail')\n")
    move_all(repo, cleanup)
    assert staged(repo, "app.py") == "import os\nprint('v1')\nstripe_key = os.environ[\"STRIPE_KEY\"]\n"
    work = (repo.path / "app.py").read_text(encoding="utf-8")
    assert work == (
        "# unstaged header\n\nimport os\nprint('v2')\nstripe_key = os.environ[\"STRIPE_KEY\"]\nprint('unstaged tail')\n"
    )


def test_working_tree_without_the_literal_is_left_alone(repo: Repo, cleanup: ExitStack) -> None:
    repo.stage("app.py", f'stripe_key = "{KEY}"\n')
    repo.write("app.py", "stripe_key = load()\n")
    fixer = make_fixer(repo, cleanup)
    (finding,) = findings(repo)
    outcome = fixer.move(finding)
    fixer.finish()
    assert not outcome.worktree
    assert (repo.path / "app.py").read_text(encoding="utf-8") == "stripe_key = load()\n"
    assert KEY not in staged(repo, "app.py")


def test_crlf_working_tree_keeps_its_line_endings(repo: Repo, cleanup: ExitStack) -> None:
    repo.stage("app.py", f'x = 1\r\nstripe_key = "{KEY}"\r\n')
    move_all(repo, cleanup)
    assert (repo.path / "app.py").read_bytes() == b'import os\r\nx = 1\r\nstripe_key = os.environ["STRIPE_KEY"]\r\n'


def test_file_mode_is_kept(repo: Repo, cleanup: ExitStack) -> None:
    script = repo.write("run.sh", f"#!/bin/sh\nSTRIPE_KEY={KEY} exec ./server\n")
    script.chmod(0o755)
    repo.git("add", "run.sh")
    move_all(repo, cleanup)
    assert repo.git("ls-files", "-s", "run.sh").startswith("100755 ")
    assert script.stat().st_mode & 0o777 == 0o755


def test_an_alternate_index_is_honoured(repo: Repo, cleanup: ExitStack, monkeypatch: pytest.MonkeyPatch) -> None:
    repo.commit_files({"README.md": "x\n"})
    repo.stage("app.py", f'stripe_key = "{KEY}"\n')
    alternate = repo.path / ".git" / "alt-index"
    shutil.copy(repo.path / ".git" / "index", alternate)
    before = (repo.path / ".git" / "index").read_bytes()
    monkeypatch.setenv("GIT_INDEX_FILE", str(alternate))
    move_all(repo, cleanup)
    assert KEY not in staged(repo, "app.py")
    assert (repo.path / ".git" / "index").read_bytes() == before
    monkeypatch.delenv("GIT_INDEX_FILE")
    assert KEY in staged(repo, "app.py")


def test_two_secrets_on_one_line(repo: Repo, cleanup: ExitStack) -> None:
    repo.stage("app.py", f'live, old = "{KEY}", "{OTHER}"\n')
    move_all(repo, cleanup)
    assert (
        staged(repo, "app.py")
        == 'import os\nlive, old = os.environ["STRIPE_SECRET_KEY"], os.environ["STRIPE_SECRET_KEY_2"]\n'
    )
    assert stored(repo, "dev/STRIPE_SECRET_KEY_2") == OTHER


# --- what is refused (and then nothing changes) -----------------------------------------------


@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("fstr.py", 'key = f"{{prefix}}{S}"\n'),
        ("multi.py", 'KEYS = """\n{S}\n"""\n'),
        ("comment.py", "# the old key was {S}\n"),
        ("concat.py", 'stripe_key = ("live:" "{S}")\n'),
        ("bare.js", "// {S}\n"),
    ],
)
def test_refused_moves_change_nothing(repo: Repo, cleanup: ExitStack, path: str, template: str) -> None:
    repo.stage(path, template.format(S=KEY))
    fixer = make_fixer(repo, cleanup)
    (finding,) = findings(repo)
    with pytest.raises(MoveError) as exc:
        fixer.move(finding)
    assert KEY not in exc.value.diagnostics()
    assert staged(repo, path) == template.format(S=KEY)
    state, store, _ = open_store(repo.path)
    assert store.names() == []
    state.close()


def test_literal_finder_unit() -> None:
    line = 'x = call("a", "b\\"' + "SECRET" + '", c)  # "not a string"'
    start = line.index("SECRET")
    lit = find_literal(line, start, start + 6, "python")
    assert line[lit.start : lit.end] == '"b\\"SECRET"'
    assert lit.value == 'b"SECRET'
    yaml_line = "key: 'it''s SECRET'"
    start = yaml_line.index("SECRET")
    assert find_literal(yaml_line, start, start + 6, "yaml").value == "it''s SECRET"
    assert language("docker/Dockerfile.prod") == "docker"
    assert language("bin/deploy", "#!/usr/bin/env bash") == "shell"
    assert language("notes.txt") == "config"


# --- allowing ---------------------------------------------------------------------------------


def test_allow_inline_comment_per_language(repo: Repo, cleanup: ExitStack) -> None:
    repo.stage("app.py", f'stripe_key = "{KEY}"\n')
    repo.stage("app.js", f'const k = "{KEY}";\n')
    repo.stage("c.yaml", f"k: {KEY}\n")
    fixer = make_fixer(repo, cleanup)
    outcomes = [fixer.allow(f) for f in findings(repo)]
    assert [o.action for o in outcomes] == ["allowed"] * 3
    assert staged(repo, "app.py") == f'stripe_key = "{KEY}"  # sentra:allow stripe-secret-key\n'
    assert staged(repo, "app.js") == f'const k = "{KEY}";  // sentra:allow stripe-secret-key\n'
    assert yaml.safe_load(staged(repo, "c.yaml")) == {"k": KEY}
    assert findings(repo) == ()
    assert not (repo.path / ".sentra").exists()  # allowing never opens the store


def test_allow_without_comment_syntax_goes_to_the_baseline(repo: Repo, cleanup: ExitStack) -> None:
    repo.stage("settings.json", f'{{"stripeKey": "{KEY}"}}\n')
    fixer = make_fixer(repo, cleanup)
    (finding,) = findings(repo)
    assert fixer.allow(finding).action == "baseline"
    assert staged(repo, "settings.json") == f'{{"stripeKey": "{KEY}"}}\n'
    baseline = staged(repo, ".sentra-baseline")
    assert f"{finding.fingerprint} stripe-secret-key" in baseline
    assert KEY not in baseline
    assert findings(repo) == ()


# --- the store --------------------------------------------------------------------------------


def test_every_move_is_audited_without_values(repo: Repo, cleanup: ExitStack) -> None:
    repo.stage("app.py", f'stripe_key = "{KEY}"\nother_key = "{OTHER}"\n')
    move_all(repo, cleanup)
    log = (repo.path / ".sentra" / "audit.log").read_text(encoding="utf-8")
    records = [json.loads(line) for line in log.splitlines()]
    assert [(r["action"], r["path"]) for r in records] == [("move", "dev/STRIPE_KEY"), ("move", "dev/OTHER_KEY")]
    for secret in (KEY, OTHER):
        assert secret not in log
        assert secret.encode() not in (repo.path / ".sentra" / "secrets.enc").read_bytes()


def test_multiline_secrets_and_the_store_file_are_not_moved(repo: Repo, cleanup: ExitStack) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        .decode()
    )
    repo.stage("deploy/key.pem", pem)
    repo.stage("keys.py", f'KEY = """{pem}"""\n')
    repo.stage(".sentra/secrets.enc", f"# sentra store v1 {os.urandom(16).hex()}\ndev/X AAAA\n")
    repo.git("add", "-f", ".sentra/secrets.enc")
    fixer = make_fixer(repo, cleanup)
    found = findings(repo)
    assert {f.rule_id for f in found} >= {"private-key-pkcs8", "sentra-secret-store"}
    for finding in found:
        with pytest.raises(MoveError):
            fixer.plan(finding)
