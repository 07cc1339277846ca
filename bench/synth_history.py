"""Deterministic synthetic git history with planted secrets, for the history benchmarks.

Builds a repository of N commits (default 20,000) by streaming them into `git fast-import`:
source files in several languages (Python, JS, TS, Go, Java, Rust, C, Ruby, shell, YAML,
JSON, Markdown, TOML, a few binary assets) created, edited, renamed and deleted; feature
branches merged back into main (and a few abandoned "wip" branches left unmerged); tags.
Ordinary lines sometimes carry the words real code is full of (key, token, http, auth...)
so that keyword prefilters see a realistic hit rate; none of them is a secret.

Secrets are planted at known commits: GitHub classic tokens with a valid checksum
(sentra_scan.ruleset.examples), AWS access key ids (AKIA + 16 base32 characters), Slack bot
tokens and RSA private key PEM blocks. Some are deleted again later; some sit on branches
that HEAD does not reach. The answer key (JSON, written beside the repository as
REPO.answers.json) lists each one: commit, path, line, rule, whether HEAD reaches it.

The same --commits/--seed/--secrets always give the same commit ids.

    .venv/bin/python bench/synth_history.py [--commits 20000] [--seed 1] [--secrets K]
                                            [--out /tmp/sentra-bench/synth-20000-s1] [--force]

The generated repository lives outside the project (default under /tmp/sentra-bench) and
must never be committed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import NOUNS, VERBS, code_lines

from sentra_scan.ruleset.examples import expand

KEY_VERSION = 2
WORK_ROOT = Path(os.environ.get("SENTRA_BENCH_DIR", "/tmp/sentra-bench"))
START_TIME = 1_420_070_400  # 2015-01-01T00:00:00Z
AUTHORS = [(f"Dev {name.capitalize()}", f"{name}@example.com") for name in NOUNS[:24]]

EXT_WEIGHTS = (
    ("py", 22), ("js", 11), ("ts", 8), ("go", 10), ("java", 8), ("rs", 4), ("c", 4), ("rb", 3),
    ("sh", 3), ("yaml", 8), ("json", 6), ("md", 8), ("toml", 2),
)  # fmt: skip
EXTS = [e for e, _ in EXT_WEIGHTS]
WEIGHTS = [w for _, w in EXT_WEIGHTS]
DIR_OF = {
    "py": ("src/app/{n}", "src/lib/{n}", "tests/{n}"),
    "js": ("web/src/{n}", "web/lib/{n}"),
    "ts": ("web/src/{n}", "web/types"),
    "go": ("internal/{n}", "cmd/{n}", "pkg/{n}"),
    "java": ("java/src/main/java/com/example/{n}", "java/src/test/java/com/example/{n}"),
    "rs": ("crates/{n}/src",),
    "c": ("native/{n}",),
    "rb": ("scripts/ruby",),
    "sh": ("scripts", "ci"),
    "yaml": ("config", "deploy/{n}", ".github/workflows"),
    "json": ("data/{n}", "fixtures"),
    "md": ("docs", "docs/{n}"),
    "toml": ("config",),
}
COMMENT = {"py": "#", "rb": "#", "sh": "#", "yaml": "#", "toml": "#"}

# Lines with the vocabulary secret scanners key on, none of them a secret (environment
# lookups, URLs without credentials, dictionary keys). About 5% of generated code lines.
NOISE = {
    "py": (
        "for key, value in sorted(options.items()):",
        'url = "https://example.com/api/v2/" + path',
        'cache_key = f"{prefix}:{name}"',
        'api_key = os.environ.get("SERVICE_API_KEY", "")',
        "if not request.user.is_authenticated:",
        'password = getpass.getpass("Password: ")',
        'token = session.get("csrf_token")',
        "from http import HTTPStatus",
        "keys = list(mapping.keys())",
    ),
    "js": (
        "const url = `https://example.com/api/${path}`;",
        "Object.keys(state).forEach((key) => update(key));",
        "const token = process.env.API_TOKEN;",
        "headers.Authorization = `Bearer ${token}`;",
        "import http from 'node:http';",
        "const secretName = config.secretName || 'default';",
    ),
    "go": (
        '\tresp, err := http.Get("https://example.com/health")',
        "\tfor key, value := range labels {",
        '\ttoken := os.Getenv("API_TOKEN")',
        '\tsecret := cfg.Secret("app")',
        '\tauth := r.Header.Get("Authorization")',
    ),
    "java": (
        '    String apiKey = System.getenv("API_KEY");',
        "    for (String key : map.keySet()) {",
        '    URI uri = URI.create("https://example.com/api");',
        "    char[] password = console.readPassword();",
    ),
    "yaml": (
        "  password: ${DB_PASSWORD}",
        "  token: ${{ secrets.DEPLOY_TOKEN }}",
        "  url: https://example.com/service",
        "  api_key_env: SERVICE_API_KEY",
        "  auth: oauth",
    ),
    "md": (
        "See https://example.com/docs for the full reference.",
        "Set `API_TOKEN` in your environment before running the task.",
        "The access key is read from the `AWS_ACCESS_KEY_ID` variable.",
        "Use a personal access token with the `repo` scope.",
    ),
}


@dataclass
class Planted:
    index: int
    kind: str
    rule: str
    secret: str  # the whole secret (for PEM blocks, the whole block)
    marker: str  # a substring unique to this secret (PEM: its first body line)
    path: str
    line: int  # 1-based line of the secret (PEM: the BEGIN line) in the introducing commit
    branch: str
    mark: int
    commit: str = ""
    reachable_from_head: bool = True
    removed: bool = False


@dataclass(frozen=True)
class FileState:
    lines: tuple[str, ...]
    mark: int
    binary: bool = False


@dataclass
class Line:
    """A line of development: main, or a feature/wip branch overlaying main."""

    name: str
    kind: str  # main | feature | wip
    tip: int
    files: dict[str, FileState]  # main: every file; branches: what they changed or created
    owned: set[str] = field(default_factory=set)  # branches: the paths they may touch
    deleted: set[str] = field(default_factory=set)
    remaining: int = 0
    commits: int = 0


@dataclass
class Stats:
    commits: int = 0
    merges: int = 0
    feature_branches: int = 0
    wip_branches: int = 0
    files_created: int = 0
    files_modified: int = 0
    files_renamed: int = 0
    files_deleted: int = 0
    binary_files: int = 0
    tags: int = 0


# ---------------------------------------------------------------------------------------------
# Content


def _yaml(rng: random.Random, n: int) -> list[str]:
    out: list[str] = []
    while len(out) < n:
        out.append(f"{rng.choice(NOUNS)}_{rng.choice(NOUNS)}:")
        for _ in range(rng.randint(2, 6)):
            kind = rng.random()
            name = f"{rng.choice(NOUNS)}"
            if kind < 0.4:
                out.append(f"  {name}: {rng.randint(0, 5000)}")
            elif kind < 0.7:
                out.append(f"  {name}: {rng.choice(NOUNS)}-{rng.choice(NOUNS)}")
            elif kind < 0.85:
                out.append(f"  {name}: {rng.choice(('true', 'false'))}")
            else:
                out.append(f"  {name}:")
                out.extend(f"    - {rng.choice(NOUNS)}" for _ in range(rng.randint(1, 3)))
    return out[:n]


def _json(rng: random.Random, n: int) -> list[str]:
    out: list[str] = []
    while len(out) < n:
        out.append(f'  "{rng.choice(NOUNS)}_{rng.randint(1, 999)}": {{')
        fields = [
            f'    "{rng.choice(NOUNS)}": '
            + rng.choice((str(rng.randint(0, 99999)), f'"{rng.choice(VERBS)} {rng.choice(NOUNS)}"', "null", "true"))
            for _ in range(rng.randint(2, 6))
        ]
        out.extend(f + "," for f in fields[:-1])
        out.append(fields[-1])
        out.append("  },")
    return out[:n]


def _markdown(rng: random.Random, n: int) -> list[str]:
    out: list[str] = []
    while len(out) < n:
        r = rng.random()
        if r < 0.15:
            out += [f"## {rng.choice(VERBS).capitalize()} the {rng.choice(NOUNS)}", ""]
        elif r < 0.6:
            words = [rng.choice(NOUNS + VERBS) for _ in range(rng.randint(8, 20))]
            out += [" ".join(words).capitalize() + ".", ""]
        elif r < 0.8:
            out += [f"- {rng.choice(VERBS)} {rng.choice(NOUNS)} per {rng.choice(NOUNS)}" for _ in range(3)]
        else:
            out += ["```", f"$ app {rng.choice(VERBS)} --{rng.choice(NOUNS)} {rng.randint(1, 99)}", "```", ""]
    return out[:n]


def _toml(rng: random.Random, n: int) -> list[str]:
    out: list[str] = []
    while len(out) < n:
        out.append(f"[{rng.choice(NOUNS)}]")
        out += [f"{rng.choice(NOUNS)} = {rng.randint(0, 999)}" for _ in range(rng.randint(2, 5))]
        out.append("")
    return out[:n]


def content(ext: str, rng: random.Random, n: int) -> list[str]:
    if ext == "yaml":
        lines = _yaml(rng, n)
    elif ext == "json":
        lines = _json(rng, n)
    elif ext == "md":
        lines = _markdown(rng, n)
    elif ext == "toml":
        lines = _toml(rng, n)
    else:
        lines = code_lines(ext, rng, n)
    noise = NOISE.get({"ts": "js", "rs": "go", "c": "java", "rb": "py", "sh": "py"}.get(ext, ext))
    if noise and n >= 4:
        for i in range(n):
            if rng.random() < 0.05:
                lines[i] = rng.choice(noise)
    return lines


# ---------------------------------------------------------------------------------------------
# Secrets

AWS_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"  # the key id body is base32
KINDS = ("github", "aws", "slack", "pem")
RULES = {"github": "github-pat", "aws": "aws-access-key-id", "slack": "slack-bot-token", "pem": "private-key-rsa"}
SECRET_LINES = {
    "github": {
        "py": 'GITHUB_TOKEN = "{s}"',
        "js": 'const githubToken = "{s}";',
        "yaml": "  github_token: {s}",
        "sh": "export GITHUB_TOKEN={s}",
    },
    "aws": {
        "py": 'AWS_ACCESS_KEY_ID = "{s}"',
        "yaml": "  aws_access_key_id: {s}",
        "json": '    "AccessKeyId": "{s}",',
        "sh": "export AWS_ACCESS_KEY_ID={s}",
    },
    "slack": {
        "py": 'SLACK_BOT_TOKEN = "{s}"',
        "js": 'const slackToken = "{s}";',
        "yaml": "  slack_bot_token: {s}",
        "go": '\tslackToken := "{s}"',
    },
}


def make_secret(kind: str, seed: str) -> str:
    if kind == "github":
        return expand("ghp_{{github:36}}", seed)
    if kind == "aws":
        return expand(f"AKIA{{{{chars:{AWS_ALPHABET}:16}}}}", seed)
    if kind == "slack":
        return expand("xoxb-{{digits:12}}-{{digits:13}}-{{alnum:24}}", seed)
    body = "\n".join(["MIIEpAIBAAKCAQEA{{b64:48}}", *["{{b64:64}}"] * 22, "{{b64:40}}=="])
    return expand(f"-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----", seed)


# ---------------------------------------------------------------------------------------------
# The generator


class Generator:
    def __init__(self, out: IO[bytes], *, commits: int, seed: int, secrets: int) -> None:
        self.out = out
        self.n = commits
        self.seed = seed
        self.rng = random.Random(seed)
        self.mark = 0
        self.when = START_TIME
        self.counter = 0  # unique file names
        self.stats = Stats()
        self.planted: list[Planted] = []
        self.main = Line("main", "main", 0, {})
        self.open: list[Line] = []
        self.reserved: set[str] = set()
        self.branch_no = 0
        self.merged_refs: list[str] = []
        self.commit_marks: list[int] = []
        self.main_commits = 0
        self._paths: list[str] = []
        self._paths_dirty = True
        self._touched: set[str] = set()
        k = min(secrets, max(0, commits - 2))
        self.plant_at = set(random.Random(seed * 7919 + 1).sample(range(1, commits - 1), k)) if k else set()
        self.plant_pending = 0
        self.removals: list[tuple[int, Planted, str]] = []  # (at commit no, planted, text to remove)

    # -- fast-import primitives
    def _w(self, data: bytes) -> None:
        self.out.write(data)

    def _next_mark(self) -> int:
        self.mark += 1
        return self.mark

    def blob(self, data: bytes) -> int:
        m = self._next_mark()
        self._w(b"blob\nmark :%d\ndata %d\n" % (m, len(data)) + data + b"\n")
        return m

    def text_blob(self, lines: tuple[str, ...]) -> int:
        return self.blob(("\n".join(lines) + "\n").encode())

    def commit(self, ref: str, message: str, parent: int, ops: list[str], merge: int = 0) -> int:
        m = self._next_mark()
        self.when += self.rng.randint(120, 3 * 3600)
        name, email = self.rng.choice(AUTHORS)
        msg = message.encode()
        head = f"commit {ref}\nmark :{m}\nauthor {name} <{email}> {self.when} +0000\n"
        head += f"committer {name} <{email}> {self.when} +0000\ndata {len(msg)}\n"
        self._w(head.encode() + msg + b"\n")
        tail = f"from :{parent}\n" if parent else ""
        if merge:
            tail += f"merge :{merge}\n"
        tail += "".join(op + "\n" for op in ops) + "\n"
        self._w(tail.encode())
        self.stats.commits += 1
        self.commit_marks.append(m)
        return m

    # -- paths and files
    def new_path(self, ext: str, rng: random.Random) -> str:
        self.counter += 1
        folder = rng.choice(DIR_OF.get(ext, ("misc",))).format(n=rng.choice(NOUNS))
        stem = f"{rng.choice(VERBS)}_{rng.choice(NOUNS)}_{self.counter}"
        if ext == "java":
            stem = "".join(p.capitalize() for p in stem.split("_"))
        return f"{folder}/{stem}.{ext}"

    def pick_ext(self) -> str:
        return self.rng.choices(EXTS, WEIGHTS)[0]

    def view(self, line: Line, path: str) -> FileState | None:
        if path in line.deleted:
            return None
        got = line.files.get(path)
        if got is None and line.kind != "main":
            got = self.main.files.get(path)
        return got

    def put(self, line: Line, path: str, lines: list[str] | tuple[str, ...], ops: list[str]) -> None:
        lines = tuple(lines)
        m = self.text_blob(lines)
        if line.kind == "main" and path not in line.files:
            self._paths_dirty = True
        line.files[path] = FileState(lines, m)
        line.deleted.discard(path)
        ops.append(f"M 100644 :{m} {path}")

    def edit(self, old: tuple[str, ...], ext: str) -> list[str]:
        rng = self.rng
        lines = list(old)
        for _ in range(rng.choice((1, 1, 1, 2, 2, 3))):
            r = rng.random()
            at = rng.randint(0, len(lines))
            if r < 0.45 or not lines:  # insert a block
                lines[at:at] = content(ext, rng, rng.randint(1, 14))
            elif r < 0.85:  # replace a few lines
                k = rng.randint(1, 5)
                lines[at : at + k] = content(ext, rng, rng.randint(1, 6))
            else:  # delete a few lines
                del lines[at : at + rng.randint(1, 6)]
        if len(lines) > 700:
            cut = rng.randint(0, len(lines) - 200)
            del lines[cut : cut + 150]
        return lines

    def editable(self, line: Line) -> list[str]:
        if line.kind == "main":
            files = self.main.files
            if self._paths_dirty:
                self._paths = sorted(p for p, fs in files.items() if not fs.binary)
                self._paths_dirty = False
            return [p for p in self._paths if p not in self.reserved and p in files]
        out = []
        for p in sorted(line.owned - line.deleted):
            fs = self.view(line, p)
            if fs is not None and not fs.binary:
                out.append(p)
        return out

    # -- planting
    def plant(self, line: Line, ops: list[str], commit_no: int) -> None:
        i = len(self.planted)
        kind = KINDS[i % len(KINDS)]
        secret = make_secret(kind, f"sentra-bench-{self.seed}-{i}")
        rng = self.rng
        if kind == "pem":
            if rng.random() < 0.5:
                path = f"deploy/tls/{rng.choice(NOUNS)}_{self._count()}.pem"
                lines = secret.split("\n")
                at = 0
            else:
                path = self.new_path("yaml", rng)
                lines = content("yaml", rng, rng.randint(10, 40))
                at = rng.randint(0, len(lines))
                block = ["tls:", "  key: |", *("    " + x for x in secret.split("\n"))]
                lines[at:at] = block
                at += 2
            if line.kind != "main":
                line.owned.add(path)
            self.put(line, path, lines, ops)
            marker = secret.split("\n")[1]
            text = None
        else:
            ext = rng.choice(sorted(SECRET_LINES[kind]))
            text = SECRET_LINES[kind][ext].format(s=secret)
            candidates = [p for p in self.editable(line) if p.endswith("." + ext) and p not in self._touched]
            if candidates and rng.random() < 0.6:
                path = rng.choice(candidates)
                lines = list(self.view(line, path).lines)  # type: ignore[union-attr]
            else:
                path = self.new_path(ext, rng)
                lines = content(ext, rng, rng.randint(15, 80))
                if line.kind != "main":
                    line.owned.add(path)
            at = rng.randint(0, len(lines))
            lines.insert(at, text)
            self.put(line, path, lines, ops)
            marker = secret
        self._touched.add(path)
        p = Planted(i, kind, RULES[kind], secret, marker, path, at + 1, line.name, 0)
        self.planted.append(p)
        if line.kind == "main" and rng.random() < 0.3:
            self.removals.append((commit_no + rng.randint(3, 400), p, text or ""))

    def _count(self) -> int:
        self.counter += 1
        return self.counter

    # -- commits on a line
    def work_commit(self, line: Line, commit_no: int) -> None:
        rng = self.rng
        ops: list[str] = []
        self._touched = set()
        verb, noun = rng.choice(VERBS), rng.choice(NOUNS)
        message = f"{verb.capitalize()} {noun} {rng.choice(('handling', 'support', 'layout', 'checks', 'output'))}"
        if line.kind == "main":
            self._main_ops(ops, commit_no)
        else:
            self._branch_ops(line, ops)
        if commit_no in self.plant_at:
            self.plant(line, ops, commit_no)
        elif self.plant_pending:  # an index that fell on a merge commit
            self.plant_pending -= 1
            self.plant(line, ops, commit_no)
        if not ops:  # always change something
            self._create(line, ops)
        ref = f"refs/heads/{line.name}"
        line.tip = self.commit(ref, message, line.tip, ops)
        for p in reversed(self.planted):
            if p.mark:
                break
            p.mark = line.tip
        line.commits += 1
        if line.kind == "main":
            self.main_commits += 1
            if self.main_commits % 1000 == 0:
                self._w(f"reset refs/tags/v{self.main_commits // 1000}.0.0\nfrom :{line.tip}\n\n".encode())
                self.stats.tags += 1

    def _create(self, line: Line, ops: list[str]) -> None:
        ext = self.pick_ext()
        path = self.new_path(ext, self.rng)
        self.put(line, path, content(ext, self.rng, self.rng.randint(15, 180)), ops)
        if line.kind != "main":
            line.owned.add(path)
        self._touched.add(path)
        self.stats.files_created += 1

    def _modify(self, line: Line, path: str, ops: list[str]) -> None:
        old = self.view(line, path)
        assert old is not None
        self.put(line, path, self.edit(old.lines, path.rsplit(".", 1)[-1]), ops)
        self._touched.add(path)
        self.stats.files_modified += 1

    def _main_ops(self, ops: list[str], commit_no: int) -> None:
        rng = self.rng
        main = self.main
        # Scheduled removals of planted secrets (main only).
        due = [r for r in self.removals if r[0] <= commit_no]
        self.removals = [r for r in self.removals if r[0] > commit_no]
        for _, p, text in due:
            cur = main.files.get(p.path)
            if cur is None or p.path in self.reserved or p.path in self._touched:
                continue
            if p.kind == "pem" and p.path.endswith(".pem"):
                del main.files[p.path]
                self._paths_dirty = True
                ops.append(f"D {p.path}")
            elif text and text in cur.lines:
                self.put(main, p.path, [x for x in cur.lines if x != text], ops)
            else:
                continue
            self._touched.add(p.path)
            p.removed = True
        editable = self.editable(main)
        n_files = len(main.files)
        r = rng.random()
        if r < 0.02 and len(editable) > 20:  # a wide change
            for path in rng.sample(editable, rng.randint(8, 20)):
                if path not in self._touched:
                    self._modify(main, path, ops)
        elif r < 0.05 and editable:  # rename (sometimes with an edit)
            old = rng.choice(editable)
            if old not in self._touched:
                ext = old.rsplit(".", 1)[-1]
                new = self.new_path(ext, rng)
                ops.append(f"R {old} {new}")
                main.files[new] = main.files.pop(old)
                self._paths_dirty = True
                self._touched.update((old, new))
                self.stats.files_renamed += 1
                if rng.random() < 0.3:
                    self._modify(main, new, ops)
        elif r < 0.05 + (0.05 if n_files > 2500 else 0.015) and len(editable) > 50:  # delete
            path = rng.choice(editable)
            if path not in self._touched:
                del main.files[path]
                self._paths_dirty = True
                ops.append(f"D {path}")
                self._touched.add(path)
                self.stats.files_deleted += 1
        elif r < 0.075:  # a binary asset
            self.counter += 1
            path = f"assets/img/{rng.choice(NOUNS)}_{self.counter}.png"
            data = b"\x89PNG\r\n\x1a\n" + rng.randbytes(rng.randint(1500, 8000))
            m = self.blob(data)
            main.files[path] = FileState((), m, binary=True)
            ops.append(f"M 100644 :{m} {path}")
            self.stats.binary_files += 1
        else:
            create_p = 0.25 if n_files < 2500 else 0.08
            if rng.random() < create_p or not editable:
                self._create(main, ops)
            for path in rng.sample(editable, min(len(editable), rng.choice((1, 1, 1, 2, 2, 3, 4)))):
                if path not in self._touched:
                    self._modify(main, path, ops)

    def _branch_ops(self, line: Line, ops: list[str]) -> None:
        rng = self.rng
        editable = self.editable(line)
        r = rng.random()
        if r < 0.25 or not editable:
            self._create(line, ops)
        elif r < 0.3 and len(editable) > 2:
            path = rng.choice(editable)
            line.deleted.add(path)
            line.files.pop(path, None)
            ops.append(f"D {path}")
            self.stats.files_deleted += 1
        else:
            for path in rng.sample(editable, min(len(editable), rng.choice((1, 1, 2)))):
                self._modify(line, path, ops)

    # -- branches
    def open_branch(self) -> None:
        rng = self.rng
        self.branch_no += 1
        wip = rng.random() < 0.15
        kind = "wip" if wip else "feature"
        line = Line(f"{kind}/{self.branch_no}-{rng.choice(VERBS)}-{rng.choice(NOUNS)}", kind, self.main.tip, {})
        pool = self.editable(self.main)
        line.owned = set(rng.sample(pool, min(len(pool), rng.randint(1, 5))))
        self.reserved |= line.owned
        line.remaining = rng.randint(2, 25)
        self.open.append(line)
        if wip:
            self.stats.wip_branches += 1
        else:
            self.stats.feature_branches += 1

    def close_branch(self, line: Line) -> None:
        self.open.remove(line)
        self.reserved -= line.owned
        if line.kind == "wip" or line.commits == 0:
            return
        if self.stats.commits in self.plant_at:
            self.plant_pending += 1
        ops = [f"D {p}" for p in sorted(line.deleted) if p in self.main.files]
        ops += [f"M 100644 :{fs.mark} {p}" for p, fs in sorted(line.files.items())]
        self.main.tip = self.commit(
            "refs/heads/main", f"Merge branch '{line.name}'", self.main.tip, ops, merge=line.tip
        )
        for p in line.deleted:
            self.main.files.pop(p, None)
        self.main.files.update(line.files)
        self._paths_dirty = True
        self.stats.merges += 1
        self.main_commits += 1
        self.merged_refs.append(f"refs/heads/{line.name}")

    # -- the whole history
    def run(self) -> None:
        self._w(b"feature done\n")
        rng = self.rng
        self._touched = set()
        ops: list[str] = []
        for _ in range(120):
            self._create(self.main, ops)
        self.put(self.main, "README.md", ["# Synthetic project", "", *_markdown(rng, 30)], ops)
        self.main.tip = self.commit("refs/heads/main", "Initial import", 0, ops)
        self.main_commits = 1
        while self.stats.commits < self.n:
            left = self.n - self.stats.commits
            done = [b for b in self.open if b.remaining <= 0]
            features_open = sum(1 for b in self.open if b.kind == "feature" and b.commits)
            if done or (left <= features_open and self.open):
                self.close_branch(done[0] if done else self.open[0])
                continue
            if left > 40 and len(self.open) < 3 and rng.random() < 1 / 30:
                self.open_branch()
            target = self.main
            if self.open and rng.random() < 0.35 and left > len(self.open) + 1:
                target = rng.choice(self.open)
                target.remaining -= 1
            self.work_commit(target, self.stats.commits)
        for line in list(self.open):  # anything still open stays as an unmerged branch
            self.open.remove(line)
        self._w(b"done\n")


# ---------------------------------------------------------------------------------------------
# Driver


def _git(repo: Path, *args: str, input: bytes | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull)
    proc = subprocess.run(["git", *args], cwd=repo, env=env, input=input, capture_output=True, check=False)
    if proc.returncode:
        raise RuntimeError(f"git {' '.join(args[:3])}: {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout.decode()


def answers_path(repo: Path) -> Path:
    return repo.with_name(repo.name + ".answers.json")


def default_path(commits: int, seed: int) -> Path:
    return WORK_ROOT / f"synth-{commits}-s{seed}"


def default_secrets(commits: int) -> int:
    return max(8, commits // 400)


def generate(
    repo: Path,
    *,
    commits: int = 20_000,
    seed: int = 1,
    secrets: int | None = None,
    repack: bool = True,
    log: Callable[[str], object] = print,
) -> dict:
    """Build the repository at `repo` (replacing it) and write its answer key; return the key."""
    secrets = default_secrets(commits) if secrets is None else secrets
    if repo.exists():
        shutil.rmtree(repo)
    repo.mkdir(parents=True)
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "config", "core.autocrlf", "false")
    marks = repo / ".git" / "synth-marks"
    t0 = time.perf_counter()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull)
    proc = subprocess.Popen(
        ["git", "fast-import", "--quiet", "--done", f"--export-marks={marks}"],
        cwd=repo,
        env=env,
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None
    gen = Generator(proc.stdin, commits=commits, seed=seed, secrets=secrets)
    try:
        gen.run()
    finally:
        proc.stdin.close()
    err = proc.stderr.read() if proc.stderr else b""
    if proc.wait():
        raise RuntimeError(f"git fast-import failed: {err.decode(errors='replace')[-2000:]}")
    t_import = time.perf_counter() - t0
    # Keep the last few merged feature refs (like a real clone), drop the rest.
    drop = gen.merged_refs[:-10]
    if drop:
        _git(repo, "update-ref", "--stdin", input="".join(f"delete {r}\n" for r in drop).encode())
    _git(repo, "symbolic-ref", "HEAD", "refs/heads/main")
    t1 = time.perf_counter()
    if repack:
        _git(repo, "repack", "-a", "-d", "-q")
        _git(repo, "prune-packed")
    t_repack = time.perf_counter() - t1
    _git(repo, "reset", "-q", "--hard")
    mark_to_sha = {}
    for row in marks.read_text().splitlines():
        m, sha = row.split()
        mark_to_sha[int(m[1:])] = sha
    marks.unlink()
    reachable = set(_git(repo, "rev-list", "HEAD").split())
    for p in gen.planted:
        p.commit = mark_to_sha[p.mark]
        p.reachable_from_head = p.commit in reachable
    refs = dict(
        row.split(" ", 1)[::-1] for row in _git(repo, "for-each-ref", "--format=%(objectname) %(refname)").splitlines()
    )
    key = {
        "version": KEY_VERSION,
        "generator": "bench/synth_history.py",
        "params": {"commits": commits, "seed": seed, "secrets": secrets},
        "repo": str(repo),
        "head": _git(repo, "rev-parse", "HEAD").strip(),
        "commits_reachable_from_head": len(reachable),
        "refs": refs,
        "stats": asdict(gen.stats),
        "files_at_head": len(gen.main.files),
        "timing_s": {"generate_and_import": round(t_import, 2), "repack": round(t_repack, 2)},
        "secrets": [asdict(p) for p in gen.planted],
    }
    answers_path(repo).write_text(json.dumps(key, indent=1) + "\n")
    log(
        f"synth: {gen.stats.commits} commits ({gen.stats.merges} merges, {len(refs)} refs), "
        f"{len(gen.planted)} secrets, {len(gen.main.files)} files at HEAD; "
        f"import {t_import:.1f}s, repack {t_repack:.1f}s -> {repo}"
    )
    return key


def ensure(
    repo: Path | None = None,
    *,
    commits: int = 20_000,
    seed: int = 1,
    secrets: int | None = None,
    log: Callable[[str], object] = print,
) -> tuple[Path, dict]:
    """The synthetic repository for these parameters, generated only if missing or stale."""
    repo = repo or default_path(commits, seed)
    secrets = default_secrets(commits) if secrets is None else secrets
    key_file = answers_path(repo)
    if key_file.is_file() and (repo / ".git").is_dir():
        try:
            key = json.loads(key_file.read_text())
            head = _git(repo, "rev-parse", "HEAD").strip()
        except (ValueError, RuntimeError):
            key, head = {}, ""
        if (
            key.get("version") == KEY_VERSION
            and key.get("params") == {"commits": commits, "seed": seed, "secrets": secrets}
            and key.get("head") == head
        ):
            return repo, key
    return repo, generate(repo, commits=commits, seed=seed, secrets=secrets, log=log)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--commits", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--secrets", type=int, default=None, help="planted secrets (default: commits/400, at least 8)")
    ap.add_argument("--out", type=Path, default=None, help=f"repository path (default: {WORK_ROOT}/synth-N-sSEED)")
    ap.add_argument("--no-repack", action="store_true", help="keep fast-import's pack as it is")
    ap.add_argument("--force", action="store_true", help="regenerate even if an up-to-date copy exists")
    args = ap.parse_args(argv)
    if args.commits < 10:
        ap.error("--commits must be at least 10")
    repo = args.out or default_path(args.commits, args.seed)
    if args.force or args.no_repack:
        generate(repo, commits=args.commits, seed=args.seed, secrets=args.secrets, repack=not args.no_repack)
    else:
        repo, key = ensure(repo, commits=args.commits, seed=args.seed, secrets=args.secrets)
        print(f"synth: {repo} (head {key['head'][:12]}), answer key {answers_path(repo)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
