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
from sentra_scan.context_fields import public_registry
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
    (".ftpconfig", 6): {(3, "ftp.example.org"), (5, "root"), (7, "/var/www")},  # the remote directory
    ("deployment-config.json", 5): {(3, "deploy.example.org"), (4, "webadmin")},
    ("sftp-config.json", 6): {(4, "sftp.example.org"), (5, "builder")},
    (".vscode/sftp.json", 6): {(3, "vs.example.org"), (4, "/var/www"), (5, "coder")},
    # the credentials entry, and the host of the connection holding it (the entry has none)
    ("db/robomongo.json", 8): {(6, "main"), (7, "mongouser"), (11, "mongo.example.org")},
    # the SSH tunnel's password: the tunnel's host and user, not the database server's host
    ("db/robomongo.json", 14): {(12, "bastion.example.org"), (13, "tunnel")},
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
    "deploy/deployment-config.json": (
        '{\n    "host": "ftp.example.org",\n    "remotePath": "/srv/' + CANARY + '",\n'
        '    "timeLastUsed": "' + CANARY + '",\n    "timesUsed": "' + CANARY + '",\n'
        '    "password": "Plain-Secret-Value-9"\n}\n'
    ),
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


# --- Docker Hub is no account context; a private registry is ----------------------------------

DOCKER_HUB = """{
    "auths": {
        "https://index.docker.io/v1/": {
            "email": "ci@example.org",
            "auth": "<auth>"
        },
        "registry.example.org:5000": {
            "auth": "<auth>"
        }
    }
}
"""


@pytest.mark.parametrize(
    "registry",
    ["https://index.docker.io/v1/", "https://hub.docker.com/", "docker.io", "registry-1.docker.io", "index.docker.io"],
)
def test_docker_hub_is_not_account_context(registry: str) -> None:
    auth = password("docker-hub")
    for name, text in (
        (".docker/config.json", '{\n  "auths": {\n    "' + registry + '": {\n'),
        (".dockercfg", '{\n  "' + registry + '": {\n'),
    ):
        text += '      "email": "ci@example.org",\n      "auth": "' + auth + '"\n    }\n  }\n}\n'
        frag = fragment(name, text)
        line = next(n for n, t in zip(frag.line_numbers, frag.lines, strict=True) if auth in t)
        assert context_of(frag, line, auth) == {(line - 1, "ci@example.org")}, name  # the e-mail stays


def test_public_registry_names_docker_hub_only() -> None:
    hub = ["https://index.docker.io/v1/", "https://hub.docker.com/", "docker.io", "registry-1.docker.io:443"]
    assert all(public_registry(r) for r in hub)
    private = ["registry.example.org", "localhost:5000", "docker.io.example.org", "notdocker.io", "ghcr.io"]
    assert not any(public_registry(r) for r in private)


def test_a_private_registry_is_account_context(tmp_path: Path) -> None:
    auth = password("private-registry")
    text = DOCKER_HUB.replace("<auth>", auth, 1).replace("<auth>", auth + "x")
    assert context_of(fragment(".docker/config.json", text), 5, auth) == {(4, "ci@example.org")}
    assert context_of(fragment(".docker/config.json", text), 8, auth + "x") == {(7, "registry.example.org:5000")}
    # a docker.io look-alike is a private host
    other = text.replace("registry.example.org:5000", "docker.io.example.org")
    assert context_of(fragment(".docker/config.json", other), 8, auth + "x") == {(7, "docker.io.example.org")}
    # in the report: the Docker Hub record names its e-mail only
    write_files(tmp_path, {".docker/config.json": text})
    _, doc = sentra_json(["scan", ".", "--no-git-ignore"], tmp_path)
    names = {f["line"]: [(c["name"], c["value"]) for c in f.get("context", ())] for f in doc["findings"]}
    assert names == {5: [("email", "ci@example.org")], 8: [("registry", "registry.example.org:5000")]}


# --- One database per credential ----------------------------------------------------------------


def test_one_database_per_credential_the_nearest() -> None:
    pw = password("one-database")
    js = (
        '{\n  "databaseName": "auth",\n  "userName": "app",\n  "userPassword": "' + pw + '",\n'
        '  "defaultDatabase": "orders",\n  "serverHost": "mongo.example.org"\n}\n'
    )
    assert context_of(fragment("connections.json", js), 4, pw) == {
        (3, "app"),
        (5, "orders"),  # `databaseName` and `defaultDatabase` both a line away: the better name
        (6, "mongo.example.org"),
    }
    near = js.replace('"databaseName": "auth",\n  ', "").replace(pw + '",\n', pw + '",\n  "db": "stats",\n')
    assert context_of(fragment("connections.json", near), 3, pw) == {(2, "app"), (4, "stats"), (6, "mongo.example.org")}
    # a database named like the user is kept (one per value, and one database)
    env = f"DB_HOST=db.example.org\nDB_NAME=shop\nDB_USERNAME=shop\nDB_PASSWORD={pw}\n"
    assert context_of(fragment(".env", env), 4, pw) == {(1, "db.example.org"), (2, "shop"), (3, "shop")}


def test_php_database_settings_keep_their_database() -> None:
    pw = password("php-config")
    php = f'<?php\n$dbhost = "localhost";\n$dbname = "main";\n$dbuser = "root";\n$dbpass = "{pw}";\n'
    assert context_of(fragment("config.php", php), 5, pw) == {(2, "localhost"), (3, "main"), (4, "root")}


# --- A service's password keeps to its service's fields ------------------------------------------


def test_a_service_password_prefers_its_service_fields() -> None:
    pw = password("service-group")
    js = (
        '{\n  "host": "db.example.org",\n  "user": "app",\n  "proxyHost": "proxy.example.org",\n'
        '  "proxyUser": "squid",\n  "proxyPassword": "' + pw + '"\n}\n'
    )
    assert context_of(fragment("client.json", js), 6, pw) == {(4, "proxy.example.org"), (5, "squid")}
    # no proxy field: the record's own
    bare = js.replace('  "proxyHost": "proxy.example.org",\n  "proxyUser": "squid",\n', "")
    assert context_of(fragment("client.json", bare), 4, pw) == {(2, "db.example.org"), (3, "app")}


def test_the_holding_objects_host_only_when_the_record_has_none() -> None:
    pw = password("parent-host")
    js = (
        '{\n  "url": "https://es.example.org:9200",\n  "user": "admin",\n  "auth": {\n'
        '    "username": "elastic",\n    "password": "' + pw + '"\n  }\n}\n'
    )
    # the host of the holding object, never its user
    assert context_of(fragment("es.json", js), 6, pw) == {(2, "https://es.example.org:9200"), (5, "elastic")}
    own = js.replace('"username": "elastic",', '"host": "es2.example.org",')
    assert context_of(fragment("es.json", own), 6, pw) == {(5, "es2.example.org")}


# --- Record times and use counts ------------------------------------------------------------------

ENCRYPTED = "MDoEEPgAAAAAAAAAAAAAAAAAAAEwFAYIKoZIhvcNAwcECB{{b64:30}}"


def logins_json() -> tuple[str, list[str]]:
    """A Firefox logins.json of two logins, its encrypted values made at test time."""
    values = [expand(ENCRYPTED, f"context-logins-{n}") for n in range(4)]
    entries = []
    for n, (user, pw) in enumerate((values[:2], values[2:])):
        stamp = 1515902314887 + n
        entries.append(
            "        {\n"
            f'            "id": {n + 1},\n'
            '            "hostname": "https://git.example.org",\n'
            '            "usernameField": "login",\n'
            f'            "encryptedUsername": "{user}",\n'
            f'            "encryptedPassword": "{pw}",\n'
            f'            "timeCreated": {stamp},\n'
            f'            "timeLastUsed": {stamp + 1000},\n'
            f'            "timePasswordChanged": {stamp},\n'
            f'            "timesUsed": {n + 3}\n'
            "        }"
        )
    return '{\n    "nextId": 3,\n    "logins": [\n' + ",\n".join(entries) + '\n    ],\n    "version": 2\n}\n', values


def test_firefox_logins_give_their_times_and_use_count(tmp_path: Path) -> None:
    text, values = logins_json()
    write_files(tmp_path, {".mozilla/firefox/logins.json": text})
    proc, doc = sentra_json(["scan", ".", "--no-git-ignore"], tmp_path)
    assert proc.returncode == 1, proc.stderr
    found = {f["line"]: [(c["line"], c["name"], c["role"]) for c in f["context"]] for f in doc["findings"]}
    assert sorted(found) == [8, 9, 19, 20]  # encryptedUsername and encryptedPassword of each login
    assert found[9] == [
        (6, "hostname", "host"),  # the encrypted user name is a finding, never context
        (10, "timeCreated", "when"),
        (11, "timeLastUsed", "when"),
        (12, "timePasswordChanged", "when"),
        (13, "timesUsed", "usage"),
    ]
    assert [c[0] for c in found[20]] == [17, 21, 22, 23, 24]  # its own login's, not the first's
    values_of = {(c["line"], c["value"]) for f in doc["findings"] for c in f["context"]}
    assert (10, "1515902314887") in values_of  # the value as written
    assert not any(v in json.dumps(doc) for v in values)
    out = sentra(["scan", ".", "--no-git-ignore"], tmp_path).stdout
    assert (
        "    account: host https://git.example.org; timeCreated 2018-01-14T03:58:34Z,"
        " timeLastUsed 2018-01-14T03:58:35Z, timePasswordChanged 2018-01-14T03:58:34Z, timesUsed 3"
        " (lines 6, 10, 11, 12, 13)\n"
    ) in out


def test_record_times_in_yaml_and_ini_records() -> None:
    pw = password("record-times")
    yaml = (
        f"prod:\n  username: deploy\n  password: {pw}\n  created_at: 2023-04-01T10:00:00Z\n"
        "  last_login: 1700000000\n  login_count: 12\nstaging:\n  created_at: 2021-01-01\n"
    )
    frag = fragment("accounts.yml", yaml)
    fields = find_context(frag, 3, 13, 13 + len(pw), pw)
    assert [(c.line, c.name, c.value, c.role) for c in fields] == [
        (2, "username", "deploy", "user"),
        (4, "created_at", "2023-04-01T10:00:00Z", "when"),
        (5, "last_login", "1700000000", "when"),  # a time here, not a login name
        (6, "login_count", "12", "usage"),
    ]  # not the staging mapping's created_at
    ini = f"[first]\ncreated = 2020-02-02\n\n[second]\nuser = bob\npassword = {pw}\npasswordLastSet = 2024-05-06\n"
    assert context_of(fragment("accounts.ini", ini), 6, pw) == {(5, "bob"), (7, "2024-05-06")}
    last = f"[site]\nlastLoginUser = carol\nlastLogin = 2024-05-06 07:08\npassword = {pw}\n"
    assert context_of(fragment("accounts.ini", last), 4, pw) == {(2, "carol"), (3, "2024-05-06 07:08")}


def test_record_times_never_from_free_text_or_another_record() -> None:
    pw = password("free-text")
    # flat files that are not structured records: a .env, a README, code
    env = f"# created 2020-01-01\nCREATED_AT=2020-01-01\nLAST_USED=1700000000\nDB_USER=app\nDB_PASSWORD={pw}\n"
    assert context_of(fragment(".env", env), 5, pw) == {(4, "app")}
    readme = f"Created: 2020-01-01\nlast_login: 1700000000\npassword: {pw}\n"
    assert context_of(fragment("README.md", readme), 3, pw) == set()
    # a sibling record and the holding object keep their times
    js = (
        '{\n  "created_at": "2019-09-09",\n  "logins": [\n    {"timeCreated": 1515902314887},\n'
        '    {\n      "password": "' + pw + '"\n    }\n  ]\n}\n'
    )
    assert context_of(fragment("logins.json", js), 6, pw) == set()
    xml = f"<Server>\n<Created>2020-01-01</Created>\n<Login>\n<Pass>{pw}</Pass>\n</Login>\n</Server>"
    assert context_of(fragment("sites.xml", xml), 4, pw) == set()


def test_a_time_or_count_field_shows_only_a_time_or_a_count() -> None:
    pw = password("time-shape")
    js = (
        '{\n  "password": "' + pw + '",\n  "passwordChanged": "' + CANARY + '",\n'
        '  "timeCreated": "next tuesday",\n  "timesUsed": "' + CANARY + '",\n  "expires_at": "2031-13-40"\n}\n'
    )
    assert context_of(fragment("vault.json", js), 2, pw) == set()
    numeric = "1515902314887"  # a password that looks like a time is never shown
    same = '{\n  "password": "' + numeric + '",\n  "timePasswordChanged": ' + numeric + "\n}\n"
    assert context_of(fragment("vault.json", same), 2, numeric) == set()


# --- Remote directories and nicks -------------------------------------------------------------


def test_a_transfer_accounts_remote_directory() -> None:
    pw = password("remote-path")
    js = (
        '{\n  "host": "ftp.example.org",\n  "remote_path": "/srv/www/",\n  "target": "/var/www",\n'
        '  "password": "' + pw + '"\n}\n'
    )
    assert context_of(fragment("sftp-config.json", js), 5, pw) == {(2, "ftp.example.org"), (3, "/srv/www/")}
    for value in ("origin", "user@host:/srv", "/srv/" + CANARY):  # not an absolute path, a random segment
        other = js.replace("/srv/www/", value)
        assert context_of(fragment("sftp-config.json", other), 5, pw) == {(2, "ftp.example.org")}, value


def test_an_irc_nick_is_its_user() -> None:
    pw = password("irc")
    conf = f"IRC_HOST=irc.example.org\nIRC_PORT=6697\nIRC_NICK=ircbot\nIRC_PASS={pw}\n"
    assert context_of(fragment("config", conf), 4, pw) == {(1, "irc.example.org"), (3, "ircbot")}
