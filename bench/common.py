"""Helpers shared by the benchmarks in bench/: deterministic git repositories of ordinary
code, whole-process timing, and plain-text tables.

Nothing here imports sentra_scan: the benchmarks time Sentra from the outside.
"""

from __future__ import annotations

import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The interpreter running the benchmark is the project's venv python; its console scripts sit beside it.
VENV_BIN = Path(sys.executable).parent
VENV_PYTHON = VENV_BIN / "python"

FIXED_DATE = "2024-01-01T12:00:00+00:00"

# ---------------------------------------------------------------------------------------------
# Deterministic "ordinary code". The vocabulary deliberately avoids words secret scanners key on
# (key, token, secret, password, auth, credential, ...) so that a clean change is clean for
# every tool, and string literals are lower-entropy words, never hex or base64 blobs.

NOUNS = (
    "order", "item", "price", "count", "total", "user", "name", "value", "index", "buffer",
    "record", "entry", "cache", "queue", "node", "path", "line", "row", "column", "report",
    "invoice", "customer", "address", "city", "shape", "width", "height", "color", "score",
    "level", "event", "message", "handler", "layout", "window", "page", "chart", "metric",
    "sample", "batch", "segment", "region", "label", "title", "widget", "panel", "budget",
)  # fmt: skip
VERBS = (
    "load", "parse", "build", "render", "update", "compute", "merge", "split", "format",
    "collect", "filter", "resolve", "apply", "check", "normalize", "convert", "sort", "group",
    "count", "scale", "draw", "fetch", "store", "emit", "reset", "select", "clamp", "trim",
)  # fmt: skip
ADJS = ("first", "last", "next", "current", "total", "average", "small", "large", "empty", "valid", "pending")


@dataclass(frozen=True)
class Lang:
    ext: str
    comment: str
    func_open: str  # format fields: {name} {a} {b}
    func_close: str | None
    assign: str  # {var} {expr}
    call: str  # {fn} {var}
    cond_open: str  # {var} {n}
    cond_close: str | None
    ret: str  # {var}
    string: str  # {var} {text}
    indent: str = "    "
    planted_line: str = 'GITHUB_TOKEN = "{token}"'


LANGS: dict[str, Lang] = {
    "py": Lang(
        "py", "#", "def {name}({a}, {b}):", None, "{var} = {expr}", "{fn}({var})", "if {var} > {n}:", None,
        "return {var}", '{var} = "{text}"',
    ),
    "js": Lang(
        "js", "//", "function {name}({a}, {b}) {{", "}}", "let {var} = {expr};", "{fn}({var});",
        "if ({var} > {n}) {{", "}}", "return {var};", 'const {var} = "{text}";', "  ",
        'const GITHUB_TOKEN = "{token}";',
    ),
    "ts": Lang(
        "ts", "//", "export function {name}({a}: number, {b}: number): number {{", "}}", "let {var} = {expr};",
        "{fn}({var});", "if ({var} > {n}) {{", "}}", "return {var};", 'const {var}: string = "{text}";', "  ",
        'const GITHUB_TOKEN: string = "{token}";',
    ),
    "go": Lang(
        "go", "//", "func {name}({a} int, {b} int) int {{", "}}", "{var} := {expr}", "{fn}({var})",
        "if {var} > {n} {{", "}}", "return {var}", '{var} := "{text}"', "\t", 'const githubToken = "{token}"',
    ),
    "rs": Lang(
        "rs", "//", "pub fn {name}({a}: i64, {b}: i64) -> i64 {{", "}}", "let {var} = {expr};", "{fn}({var});",
        "if {var} > {n} {{", "}}", "return {var};", 'let {var} = "{text}";', "    ",
        'const GITHUB_TOKEN: &str = "{token}";',
    ),
    "java": Lang(
        "java", "//", "public static int {name}(int {a}, int {b}) {{", "}}", "int {var} = {expr};",
        "{fn}({var});", "if ({var} > {n}) {{", "}}", "return {var};", 'String {var} = "{text}";', "    ",
        'static final String GITHUB_TOKEN = "{token}";',
    ),
    "c": Lang(
        "c", "//", "int {name}(int {a}, int {b}) {{", "}}", "int {var} = {expr};", "{fn}({var});",
        "if ({var} > {n}) {{", "}}", "return {var};", 'const char *{var} = "{text}";', "    ",
        'static const char *GITHUB_TOKEN = "{token}";',
    ),
    "rb": Lang(
        "rb", "#", "def {name}({a}, {b})", "end", "{var} = {expr}", "{fn}({var})", "if {var} > {n}", "end",
        "return {var}", '{var} = "{text}"', "  ",
    ),
    "sh": Lang(
        "sh", "#", "{name}() {{", "}}", "{var}=$(( {expr} ))", "{fn} \"${var}\"", 'if [ "${var}" -gt {n} ]; then',
        "fi", 'echo "${var}"', '{var}="{text}"', "  ", 'export GITHUB_TOKEN="{token}"',
    ),
}  # fmt: skip

DIRS = ("src", "lib", "app", "core", "util", "web", "cmd", "scripts", "internal", "pkg")


def _ident(rng: random.Random) -> str:
    return f"{rng.choice(ADJS)}_{rng.choice(NOUNS)}"


def _expr(rng: random.Random, names: Sequence[str]) -> str:
    a, b = rng.choice(names), rng.choice(names)
    op = rng.choice(("+", "-", "*"))
    return f"{a} {op} {b} {rng.choice(('+', '*'))} {rng.randint(1, 99)}"


def _function(lang: Lang, rng: random.Random) -> list[str]:
    name = f"{rng.choice(VERBS)}_{rng.choice(NOUNS)}"
    a, b = rng.sample(NOUNS, 2)
    names = [a, b]
    ind = lang.indent
    out = [f"{lang.comment} {rng.choice(VERBS).capitalize()} the {rng.choice(NOUNS)} for each {rng.choice(NOUNS)}."]
    out.append(lang.func_open.format(name=name, a=a, b=b))
    for _ in range(rng.randint(3, 9)):
        kind = rng.random()
        var = _ident(rng)
        if kind < 0.45:
            out.append(ind + lang.assign.format(var=var, expr=_expr(rng, names)))
            names.append(var)
        elif kind < 0.6:
            text = " ".join(rng.choice(NOUNS) for _ in range(rng.randint(2, 5)))
            out.append(ind + lang.string.format(var=var, text=text))
        elif kind < 0.75:
            out.append(ind + lang.call.format(fn=f"{rng.choice(VERBS)}_{rng.choice(NOUNS)}", var=rng.choice(names)))
        else:
            out.append(ind + lang.cond_open.format(var=rng.choice(names), n=rng.randint(1, 500)))
            out.append(ind * 2 + lang.assign.format(var=var, expr=_expr(rng, names)))
            if lang.cond_close:
                out.append(ind + lang.cond_close.format())
    out.append(ind + lang.ret.format(var=rng.choice(names)))
    if lang.func_close:
        out.append(lang.func_close.format())
    out.append("")
    return out


def code_lines(ext: str, rng: random.Random, n: int) -> list[str]:
    """Exactly `n` lines of plausible code in the language of `ext` (Python-like if unknown)."""
    lang = LANGS.get(ext, LANGS["py"])
    out: list[str] = []
    while len(out) < n:
        block = _function(lang, rng)
        if len(out) + len(block) > n:
            block = [
                f"{lang.comment} {rng.choice(VERBS)} {rng.choice(NOUNS)} {rng.choice(NOUNS)}"
                for _ in range(n - len(out))
            ]
        out.extend(block)
    return out


def secret_line(ext: str, token: str) -> str:
    return LANGS.get(ext, LANGS["py"]).planted_line.format(token=token)


# ---------------------------------------------------------------------------------------------
# Git repositories


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The caller's environment minus anything that would point git elsewhere."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_") and k not in ("SKIP", "SENTRA_STRICT")}
    env.update(extra or {})
    return env


def git_env(workdir: Path) -> dict[str, str]:
    """A reproducible git environment: no system or user config, fixed identity and dates."""
    gitconfig = workdir / "gitconfig"
    if not gitconfig.exists():
        gitconfig.write_text("[user]\n\tname = Bench\n\temail = bench@example.com\n[init]\n\tdefaultBranch = main\n")
    return clean_env(
        {
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": str(gitconfig),
            "GIT_AUTHOR_DATE": FIXED_DATE,
            "GIT_COMMITTER_DATE": FIXED_DATE,
        }
    )


def git(repo: Path, *args: str, env: Mapping[str, str]) -> str:
    proc = subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


def _file_text(ext: str, rng: random.Random, n: int) -> str:
    return "\n".join(code_lines(ext, rng, n)) + "\n"


def generate_repo(repo: Path, env: Mapping[str, str], *, files: int = 300, commits: int = 12, seed: int = 1) -> None:
    """A repository of `files` source files in several languages, built over `commits` commits
    (the first adds most files; later ones add the rest and edit some). Deterministic."""
    rng = random.Random(seed)
    repo.mkdir(parents=True)
    git(repo, "init", "-q", env=env)
    exts = sorted(LANGS)
    paths = [
        Path(rng.choice(DIRS), rng.choice(NOUNS), f"{rng.choice(VERBS)}_{rng.choice(NOUNS)}_{i}.{exts[i % len(exts)]}")
        for i in range(files)
    ]
    first = int(files * 0.6)
    batches = [paths[:first]]
    rest = paths[first:]
    per = max(1, len(rest) // max(1, commits - 1))
    batches += [rest[i : i + per] for i in range(0, len(rest), per)]
    readme = repo / "README.md"
    readme.write_text("# Example project\n\nGenerated by bench/common.py for benchmarks.\n")
    written: list[Path] = []
    for n, batch in enumerate(batches):
        for p in batch:
            target = repo / p
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(_file_text(p.suffix[1:], rng, rng.randint(40, 160)))
            written.append(p)
        if n:  # edit a few earlier files
            for p in rng.sample(written, min(5, len(written))):
                with open(repo / p, "a") as fh:
                    fh.write("\n".join(code_lines(p.suffix[1:], rng, rng.randint(5, 30))) + "\n")
        git(repo, "add", "-A", env=env)
        git(repo, "commit", "-q", "-m", f"change {n}: {len(batch)} files", env=env)


def clone_repo(source: Path, repo: Path, env: Mapping[str, str]) -> None:
    subprocess.run(["git", "clone", "-q", str(source), str(repo)], env=env, check=True, capture_output=True)


def candidate_files(repo: Path, env: Mapping[str, str], max_size: int = 256 * 1024) -> list[str]:
    """Tracked text files in a language we can generate, small enough to edit."""
    out = []
    for name in git(repo, "ls-files", "-z", env=env).split("\0"):
        p = repo / name
        ext = p.suffix[1:]
        if ext in LANGS and p.is_file() and not p.is_symlink() and p.stat().st_size <= max_size:
            try:
                p.read_text("utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            out.append(name)
    return sorted(out)


@dataclass
class StagedChange:
    files: list[str]
    added_lines: int
    secret_file: str | None = None
    secret_line: int | None = None


def stage_change(
    repo: Path,
    env: Mapping[str, str],
    *,
    files: int = 10,
    lines: int = 500,
    new_files: int = 2,
    seed: int = 7,
    token: str | None = None,
) -> StagedChange:
    """Insert `lines` added lines of ordinary code spread over `files` files (`new_files` of them
    new) and `git add` them. With `token`, one of those lines assigns it (same line count)."""
    rng = random.Random(seed)
    existing = candidate_files(repo, env)
    n_old = min(files - new_files, len(existing))
    chosen = rng.sample(existing, n_old)
    exts = sorted(LANGS)
    fresh = [
        f"bench_added/{rng.choice(VERBS)}_{rng.choice(NOUNS)}_{i}.{exts[i % len(exts)]}" for i in range(files - n_old)
    ]
    targets = chosen + fresh
    # The secret goes into a Python file if there is one (every scanner covers it), else the first file.
    secret_target = next((t for t in targets if t.endswith(".py")), targets[0]) if token else None
    per = [lines // files + (1 if i < lines % files else 0) for i in range(files)]
    secret_at = None
    for target, n in zip(targets, per, strict=True):
        path = repo / target
        ext = path.suffix[1:]
        block = code_lines(ext, rng, n)
        if target == secret_target:
            secret_at = n // 2
            block[secret_at] = secret_line(ext, token or "")
        if path.exists():
            old = path.read_text("utf-8").splitlines()
            at = rng.randint(0, len(old))
            new = [*old[:at], *block, *old[at:]]
            if secret_target == target and secret_at is not None:
                secret_at += at
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            new = block
        path.write_text("\n".join(new) + "\n")
    git(repo, "add", "--", *targets, env=env)
    numstat = git(repo, "diff", "--cached", "--numstat", env=env)
    added = sum(int(row.split("\t")[0]) for row in numstat.splitlines() if row and row[0].isdigit())
    return StagedChange(targets, added, secret_target, None if secret_at is None else secret_at + 1)


# ---------------------------------------------------------------------------------------------
# Whole-process timing


@dataclass
class Sample:
    wall: float  # seconds, perf_counter around spawn..reap
    cpu: float  # user+sys seconds of the process and the children it waited for
    maxrss_mb: float
    code: int


@dataclass
class Command:
    name: str
    argv: list[str]
    cwd: Path
    env: dict[str, str]
    kind: str = "peer"  # sentra | peer | floor | probe
    note: str = ""
    version: str = ""
    missing: str = ""  # why it cannot run ("not installed", ...); empty when it can
    samples: list[Sample] = field(default_factory=list)
    warmup_code: int | None = None
    warmup_output: str = ""


def run_process(argv: Sequence[str], cwd: Path, env: Mapping[str, str], *, capture: bool = False) -> tuple[Sample, str]:
    """Run one process to completion; wall time, CPU and peak RSS from wait4. With `capture`,
    stdout and stderr go to a temporary file (returned) instead of /dev/null."""
    out_path = None
    if capture:
        fd, out_path = _tempfile()
        sink: int = fd
    else:
        sink = subprocess.DEVNULL
    t0 = time.perf_counter()
    proc = subprocess.Popen(list(argv), cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=sink, stderr=sink)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    text = ""
    if out_path is not None:
        os.close(sink)
        text = Path(out_path).read_text("utf-8", "replace")
        os.unlink(out_path)
    return Sample(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, proc.returncode), text


def _tempfile() -> tuple[int, str]:
    import tempfile

    return tempfile.mkstemp(prefix="bench-out-")


def measure(
    commands: Iterable[Command], runs: int, warmup: int = 1, progress: Callable[[str], None] | None = None
) -> None:
    """Warm each command up, then run all of them `runs` times, interleaved (round-robin with
    a rotating start) so that drift in machine load spreads evenly over the tools."""
    active = [c for c in commands if not c.missing]
    for c in active:
        for i in range(warmup):
            sample, text = run_process(c.argv, c.cwd, c.env, capture=(i == 0))
            if i == 0:
                c.warmup_code, c.warmup_output = sample.code, text
    for r in range(runs):
        if progress:
            progress(f"run {r + 1}/{runs}")
        k = r % len(active) if active else 0
        for c in active[k:] + active[:k]:
            c.samples.append(run_process(c.argv, c.cwd, c.env)[0])


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def summary(c: Command) -> dict[str, float | int | None]:
    walls = [s.wall for s in c.samples]
    return {
        "median_s": median(walls),
        "min_s": min(walls) if walls else None,
        "max_s": max(walls) if walls else None,
        "cpu_median_s": median([s.cpu for s in c.samples]),
        "maxrss_mb": median([s.maxrss_mb for s in c.samples]),
        "exit_code": c.warmup_code,
        "runs": len(walls),
    }


def which(name: str, *candidates: Path) -> Path | None:
    for cand in candidates:
        if cand.is_file() and os.access(cand, os.X_OK):
            return cand
    found = shutil.which(name)
    return Path(found) if found else None


def tool_version(argv: Sequence[str], env: Mapping[str, str] | None = None) -> str:
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=60, env=env, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    text = (proc.stdout or proc.stderr).strip().splitlines()
    return text[0].strip() if text else "?"


# ---------------------------------------------------------------------------------------------
# Output


def ms(x: float | None) -> str:
    return "-" if x is None or x != x else f"{x * 1000:.1f}"


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], align: str | None = None) -> str:
    """A plain-text table; `align` is one of 'l'/'r' per column (default: first left, rest right)."""
    rows = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    align = align or "l" + "r" * (len(headers) - 1)

    def fmt(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(cells, widths, align, strict=True))

    lines = [fmt(headers), "  ".join("-" * w for w in widths)]
    lines += [fmt(r) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def compile_bytecode(package_parent: Path) -> None:
    """Byte-compile `package_parent`/sentra_scan, as `pip install` does: a measured run must
    not compile the sources (this machine sets PYTHONDONTWRITEBYTECODE, so nothing would
    ever cache them, and every run would pay ~60 ms a user's installed Sentra does not)."""
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(package_parent / "sentra_scan")],
        check=True,
        env={k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
    )
