"""Account context: a credential finding names the user, host and database of its record
(`Finding.context`), read from real files of each format, in every report format and in
history audits; never a secret, never from another record."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path
from typing import Any

import pytest

from sentra_scan.api import make_scanner, scan_paths
from sentra_scan.config import Config
from sentra_scan.context import find_context
from sentra_scan.model import ContextField, Fragment
from sentra_scan.report import FORMATS, get_reporter
from sentra_scan.ruleset.examples import expand
from tests.helpers import SHARED, Repo, canary_github_token, sentra, sentra_json

FILEZILLA = """<?xml version="1.0" encoding="UTF-8" standalone="yes" ?>
<FileZilla3>
    <Servers>
        <Server>
            <Host>example.com</Host>
            <Port>21</Port>
            <Protocol>0</Protocol>
            <User>root</User>
            <Pass>Wobbly-Kettle-42</Pass>
            <Account>example.com</Account>
            <Name>example.com</Name>
        </Server>
        <Server>
            <Host>files.example.org</Host>
            <User>deploy</User>
            <Pass encoding="base64">SGFwcHktUGVuZ3Vpbi05OQ==</Pass>
        </Server>
    </Servers>
</FileZilla3>
"""
ESMTPRC = """identity "ops@example.org"
hostname smtp.example.org:587
username "ops@example.org"
password "Quill-Harbor-77"
starttls required
"""
FTPCONFIG = """{
    "protocol": "sftp",
    "host": "ftp.example.org",
    "port": 22,
    "user": "root",
    "pass": "<password>",
    "remote": "/var/www"
}
"""
DEPLOYMENT = """{
    "type": "sftp",
    "host": "deploy.example.org",
    "username": "webadmin",
    "password": "<password>",
    "port": 22
}
"""
SFTP_CONFIG = """{
    "type": "sftp",

    "host": "sftp.example.org",
    "user": "builder",
    "password": "<password>",
    "port": "22"
}
"""
VSCODE_SFTP = """{
    "protocol": "sftp",
    "host": "vs.example.org",
    "remotePath": "/var/www",
    "username": "coder",
    "password": "<password>"
}
"""
ROBOMONGO = """{
    "connections" : [
     {
      "credentials" : [
       {
        "databaseName" : "main",
        "userName" : "mongouser",
        "userPassword" : "<password>"
       }
      ],
      "serverHost" : "mongo.example.org",
      "sshHost" : "bastion.example.org",
      "sshUserName" : "tunnel",
      "sshUserPassword" : "<ssh-password>"
     }
    ]
}
"""


def password(seed: str) -> str:
    """A fixture's password, made at test time: never written in the source, where Sentra
    scanning this repository would take it for a leak."""
    return expand("{{upper:1}}{{lower:6}}-{{upper:1}}{{lower:6}}-{{digits:2}}", f"context-{seed}")


FTPCONFIG = FTPCONFIG.replace("<password>", password("ftpconfig"))
DEPLOYMENT = DEPLOYMENT.replace("<password>", password("deployment"))
SFTP_CONFIG = SFTP_CONFIG.replace("<password>", password("sftp-config"))
VSCODE_SFTP = VSCODE_SFTP.replace("<password>", password("vscode-sftp"))
ROBOMONGO = ROBOMONGO.replace("<password>", password("robomongo")).replace("<ssh-password>", password("robomongo-ssh"))
PW = "Pw-Xyz-123"  # the record-boundary tests' password (in JSON below it is joined in, not quoted)


DOTENV = """APP_ENV=local

DB_HOST=db.example.org
DB_DATABASE=shop
DB_USERNAME=shopuser
DB_PASSWORD=Crimson-Ladder-53

MAIL_HOST=smtp.example.org
MAIL_PORT=587
MAIL_USERNAME=mailer@example.org
MAIL_PASSWORD=Hollow-Beacon-71
"""
NETRC = "machine imap.example.org login reader@example.org password Frosty-Anchor-12\n"
PGPASS = "#hostname:port:database:username:password\npg.example.org:5432:orders:pguser:Gentle-Thunder-40\n"
DOCKER = """{
    "auths": {
        "registry.example.org": {
            "email": "ci@example.org",
            "auth": "Y2k6Tm9ibGUtUml2ZXItOTMtQ29yYWwtV2luZG93LTE3"
        }
    }
}
"""
WP_CONFIG = """<?php
define( 'DB_NAME',     'blog' );
define( 'DB_USER',     'wpuser' );
define( 'DB_PASSWORD', 'Brisk-Willow-66' );
define( 'DB_HOST',     'mysql.example.org' );
define( 'DB_CHARSET',  'utf8mb4' );
"""

FILES = {
    "filezilla/filezilla.xml": FILEZILLA,
    ".esmtprc": ESMTPRC,
    ".ftpconfig": FTPCONFIG,
    "deployment-config.json": DEPLOYMENT,
    "sftp-config.json": SFTP_CONFIG,
    ".vscode/sftp.json": VSCODE_SFTP,
    "db/robomongo.json": ROBOMONGO,
    "web/.env": DOTENV,
    ".netrc": NETRC,
    "db/.pgpass": PGPASS,
    ".docker/config.json": DOCKER,
    "wp-config.php": WP_CONFIG,
}

# (path, line of the finding) -> the context expected: (line, value) pairs
EXPECTED: dict[tuple[str, int], set[tuple[int, str]]] = {
    ("filezilla/filezilla.xml", 9): {(5, "example.com"), (8, "root")},  # <Account> repeats <Host>: once
    ("filezilla/filezilla.xml", 16): {(14, "files.example.org"), (15, "deploy")},
    (".esmtprc", 4): {(2, "smtp.example.org:587"), (3, "ops@example.org")},  # username beats identity
    (".ftpconfig", 6): {(3, "ftp.example.org"), (5, "root")},
    ("deployment-config.json", 5): {(3, "deploy.example.org"), (4, "webadmin")},
    ("sftp-config.json", 6): {(4, "sftp.example.org"), (5, "builder")},
    (".vscode/sftp.json", 6): {(3, "vs.example.org"), (5, "coder")},
    ("db/robomongo.json", 8): {(6, "main"), (7, "mongouser")},  # the credentials object only
    ("db/robomongo.json", 14): {(11, "mongo.example.org"), (12, "bastion.example.org"), (13, "tunnel")},
    ("web/.env", 6): {(3, "db.example.org"), (4, "shop"), (5, "shopuser")},
    ("web/.env", 11): {(8, "smtp.example.org"), (10, "mailer@example.org")},  # MAIL_*, not DB_*
    (".netrc", 1): {(1, "imap.example.org"), (1, "reader@example.org")},
    ("db/.pgpass", 2): {(2, "pg.example.org"), (2, "orders"), (2, "pguser")},
    (".docker/config.json", 5): {(3, "registry.example.org"), (4, "ci@example.org")},
    ("wp-config.php", 4): {(2, "blog"), (3, "wpuser"), (5, "mysql.example.org")},
}


@pytest.fixture(scope="module")
def rule_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rule-cache")


@pytest.fixture(autouse=True)
def shared_rule_cache(hermetic_env: Path, rule_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTRA_CACHE_DIR", str(rule_cache))
    monkeypatch.setenv("SENTRA_NO_RECORD", "1")


def write_files(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")


def contexts(doc: dict[str, Any]) -> dict[tuple[str, int], set[tuple[int, str]]]:
    return {
        (f["path"], f["line"]): {(c["line"], c["value"]) for c in f.get("context", ())}
        for f in doc["findings"]
        if f["path"] in FILES
    }


def test_every_format_names_its_account(tmp_path: Path) -> None:
    write_files(tmp_path, FILES)
    proc, doc = sentra_json(["scan", ".", "--no-git-ignore", "--all-occurrences"], tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert contexts(doc) == EXPECTED
    f = next(f for f in doc["findings"] if f["path"] == "filezilla/filezilla.xml" and f["line"] == 9)
    assert f["context"] == [
        {"line": 5, "name": "Host", "value": "example.com", "role": "host"},
        {"line": 8, "name": "User", "value": "root", "role": "user"},
    ]


def test_text_report_and_explain_say_whose(tmp_path: Path) -> None:
    write_files(tmp_path, {k: FILES[k] for k in ("filezilla/filezilla.xml", "web/.env", "db/.pgpass")})
    out = sentra(["scan", ".", "--no-git-ignore"], tmp_path).stdout
    assert "    account: root @ example.com (lines 5, 8)\n" in out
    assert "    account: mailer@example.org @ smtp.example.org (lines 8, 10)\n" in out
    assert "    account: pguser @ pg.example.org, database orders (line 2)\n" in out
    explained = sentra(["explain", "filezilla/filezilla.xml:9"], tmp_path).stdout
    assert "account: root @ example.com (lines 5, 8)" in explained


def test_history_audit_carries_context(repo: Repo) -> None:
    """History fragments hold a hunk's added lines: the record committed with the password."""
    repo.commit_files({"README.md": "# app\n"}, "init")
    repo.commit_files({"filezilla/filezilla.xml": FILEZILLA}, "sites")
    proc, doc = sentra_json(["audit", "--all-occurrences"], repo.path)
    assert proc.returncode == 1, proc.stderr
    found = {(f["line"], tuple((c["line"], c["value"]) for c in f.get("context", ()))) for f in doc["findings"]}
    assert found == {
        (9, ((5, "example.com"), (8, "root"))),
        (16, ((14, "files.example.org"), (15, "deploy"))),
    }


def fragment(path: str, text: str, first: int = 1) -> Fragment:
    lines = tuple(text.split("\n"))
    return Fragment(path, lines, tuple(range(first, first + len(lines))))


def context_of(frag: Fragment, line: int, secret: str) -> set[tuple[int, str]]:
    text = frag.lines[frag.line_numbers.index(line)]
    col = text.index(secret) + 1
    return {(c.line, c.value) for c in find_context(frag, line, col, col + len(secret), secret)}


def test_a_user_of_another_record_is_not_taken() -> None:
    xml = (
        "<Servers>\n<Server>\n<Host>a.example.org</Host>\n<User>alice</User>\n</Server>\n"
        "<Server>\n<Pass>Pw-Xyz-123</Pass>\n</Server>\n</Servers>"
    )
    assert context_of(fragment("sites.xml", xml), 7, "Pw-Xyz-123") == set()
    js = '[\n  {\n    "host": "a.example.org",\n    "user": "alice"\n  },\n  {\n    "password": "' + PW + '"\n  }\n]'
    assert context_of(fragment("servers.json", js), 7, "Pw-Xyz-123") == set()
    ini = "[first]\nuser = alice\n\n[second]\npassword = Pw-Xyz-123\n"
    assert context_of(fragment("app.ini", ini), 5, "Pw-Xyz-123") == set()
    netrc = "machine a.example.org login alice\nmachine b.example.org password Pw-Xyz-123\n"
    assert context_of(fragment(".netrc", netrc), 2, "Pw-Xyz-123") == {(2, "b.example.org")}
    yaml = "dev:\n  username: alice\nprod:\n  password: Pw-Xyz-123\n"
    assert context_of(fragment("db.yml", yaml), 4, "Pw-Xyz-123") == set()


def test_the_window_and_history_gaps_bound_the_record() -> None:
    far = "[db]\nuser = alice\n" + "".join(f"opt{i} = {i}\n" for i in range(12)) + "password = Pw-Xyz-123\n"
    assert context_of(fragment("app.ini", far), 15, "Pw-Xyz-123") == set()
    # a hunk's added lines: line 2 and line 9 of the new file are not one record
    gap = Fragment("app.ini", ("user = alice", "password = Pw-Xyz-123"), (2, 9))
    assert context_of(gap, 9, "Pw-Xyz-123") == set()
    hunk = Fragment("app.ini", ("user = alice", "password = Pw-Xyz-123"), (8, 9))
    assert context_of(hunk, 9, "Pw-Xyz-123") == {(8, "alice")}


def test_urls_lose_their_credentials_and_paths() -> None:
    text = 'DATABASE_URL = "postgres://app:Pw-Xyz-123@db.example.org:5432/orders"\n'
    assert context_of(fragment("settings.py", text), 1, "Pw-Xyz-123") == {
        (1, "app"),
        (1, "db.example.org:5432"),
        (1, "orders"),
    }
    js = '{\n  "url": "https://bob:Other-Secret-9@api.example.org/v1/hook?token=abc",\n  "password": "' + PW + '"\n}'
    assert context_of(fragment("cfg.json", js), 3, "Pw-Xyz-123") == {(2, "https://api.example.org")}


def test_an_api_token_in_code_has_no_account(tmp_path: Path) -> None:
    token = canary_github_token("context-none")
    code = f'import os\n\n\ndef client():\n    return Github("{token}")\n'
    (tmp_path / "app.py").write_text(code, encoding="utf-8")
    _, doc = sentra_json(["scan", ".", "--no-git-ignore"], tmp_path)
    assert [f["rule_id"] for f in doc["findings"]] == ["github-pat"]
    assert all("context" not in f for f in doc["findings"])
    assert "account:" not in sentra(["scan", ".", "--no-git-ignore"], tmp_path).stdout


# The canary is a password placed where a user name goes, its neighbours named like secrets.
CANARY = "Zq7" + "vLp9" + "Xw2Kt4"  # random-looking, 13 characters
CANARY_FILES = {
    "ftp/sftp-config.json": (
        '{\n    "host": "ftp.example.org",\n    "user": "' + CANARY + '",\n'
        '    "user_password": "' + CANARY + '",\n    "password": "Plain-Secret-Value-8"\n}\n'
    ),
    "app/.env": f"DB_HOST=db.example.org\nDB_USERNAME={CANARY}\nDB_PASSWORD={CANARY}\n",
    "mail/.esmtprc": f'hostname smtp.example.org\nusername "{CANARY}@example.org"\npassword "{CANARY}"\n',
    "site/.netrc": f"machine ftp.example.org login {CANARY}! password Hidden-Value-55\n",
    "db/.pgpass": f"pg.example.org:5432:orders:{CANARY}:{CANARY}\n",
}


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_password_in_a_user_position_never_prints(tmp_path: Path, fmt: str) -> None:
    write_files(tmp_path, CANARY_FILES)
    proc = sentra(["scan", ".", "--no-git-ignore", "--format", fmt], tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert CANARY not in proc.stdout
    assert CANARY not in proc.stderr
    assert "ftp.example.org" in proc.stdout  # the context is there, the canary is not


def test_reporters_mask_a_reported_secret_inside_a_context_value(tmp_path: Path) -> None:
    """Belt and braces: were a context value ever to hold a secret the result reports, every
    reporter masks it (`Masker.text`)."""
    token = canary_github_token("context-user")
    write_files(tmp_path, {"deploy.json": f'{{\n  "host": "h.example.org",\n  "password": "{token}"\n}}\n'})
    result = scan_paths([tmp_path], make_scanner(Config()), respect_gitignore=False)
    [finding] = result.findings
    assert [c.value for c in finding.context] == ["h.example.org"]  # the token's own field is not context
    leaky = ContextField(2, "login", f"a{token}", "user")
    result = dataclasses.replace(result, findings=(dataclasses.replace(finding, context=(leaky,)),))
    for fmt in FORMATS:
        out = io.StringIO()
        get_reporter(fmt).write(result, out)
        assert token not in out.getvalue(), fmt
        assert "h.example.org" not in out.getvalue(), fmt
        assert "ghp_********" in out.getvalue(), fmt


def test_sarif_and_gitlab_reports_validate_with_context(tmp_path: Path) -> None:
    import jsonschema  # type: ignore[import-untyped,unused-ignore]

    write_files(tmp_path, {k: FILES[k] for k in ("filezilla/filezilla.xml", ".docker/config.json")})
    schemas = {
        "sarif": SHARED / "schemas" / "sarif-schema-2.1.0.json",
        "gitlab": Path(__file__).parent / "fixtures" / "schemas" / "gitlab-secret-detection-report-format.json",
    }
    for fmt, schema_path in schemas.items():
        doc = json.loads(sentra(["scan", ".", "--no-git-ignore", "--format", fmt], tmp_path).stdout)
        jsonschema.validate(doc, json.loads(schema_path.read_text(encoding="utf-8")))
        if fmt == "sarif":
            result = next(
                r
                for r in doc["runs"][0]["results"]
                if r["locations"][0]["physicalLocation"]["region"]["startLine"] == 9
            )
            assert [
                (r["physicalLocation"]["region"]["startLine"], r["message"]["text"]) for r in result["relatedLocations"]
            ] == [
                (5, "host (Host): example.com"),
                (8, "user (User): root"),
            ]
        else:
            details = [v["details"].get("account", {}).get("value") for v in doc["vulnerabilities"]]
            assert "root @ example.com (lines 5, 8)" in details
            assert "ci@example.org @ registry.example.org (lines 3, 4)" in details
