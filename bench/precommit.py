"""Time Sentra's pre-commit hook as a whole process, side by side with peer scanners.

Builds a scenario in a temporary directory (a git repository with history, generated
deterministically or cloned with --repo), stages a change of 10 files / 500 added lines of
ordinary code (optionally with one GitHub token, --with-secret), then runs every tool's
pre-commit mode N times, interleaved, after a warm-up. Prints medians, minima and ratios to
Sentra; then where Sentra's time goes (start-up, imports, git, scanning; -X importtime) and
`git diff --cached` through a subprocess versus pygit2.

This is a measurement, not a test: it never fails on a slow result.

    .venv/bin/python bench/precommit.py [--runs 15] [--peers /tmp/peers] [--repo PATH]
                                        [--with-secret] [--json]

Peers come from /work/shared/tools/peers-setup.sh DEST (see bench/README.md); a missing peer
is reported as "not installed".
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    ROOT,
    VENV_BIN,
    VENV_PYTHON,
    Command,
    StagedChange,
    clean_env,
    clone_repo,
    compile_bytecode,
    generate_repo,
    git,
    git_env,
    measure,
    median,
    ms,
    run_process,
    stage_change,
    summary,
    table,
    tool_version,
    which,
)

TARGET_S = 0.150
TARGET_RATIO = 3.0
# Peers whose default rules cover one provider only: the ratio to them is reported, and also the
# ratio to the fastest peer with a general rule set.
NARROW_PEERS = {"git-secrets": "AWS patterns only"}

# The hook's own `git diff --cached` invocation; read from the package when it is importable so
# the subprocess-vs-pygit2 comparison runs exactly what the hook runs.
FALLBACK_GIT_ARGV = [
    "git", "-c", "core.quotepath=off", "-c", "color.ui=never", "-c", "diff.noprefix=false",
    "diff", "--cached", "--no-color", "--no-ext-diff", "--no-textconv", "--no-relative", "--unified=0",
    "--find-renames", "--diff-filter=d", "--src-prefix=a/", "--dst-prefix=b/", "--ignore-submodules=none",
]  # fmt: skip


def hook_git_argv() -> list[str]:
    try:
        from sentra_scan.sources.gitcmd import FIXED_CONFIG
        from sentra_scan.sources.staged import DIFF_ARGS
    except ImportError:
        return FALLBACK_GIT_ARGV
    return ["git", *FIXED_CONFIG, *DIFF_ARGS]


def github_token() -> str:
    """A GitHub classic PAT with a valid checksum, generated now (never stored anywhere)."""
    seed = f"bench-{time.time_ns()}-{os.getpid()}"
    try:
        from sentra_scan.ruleset.examples import expand
    except ImportError:  # the same construction, should the package move it
        import random
        import zlib

        alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
        rng = random.Random(seed)
        body = "".join(rng.choice(alphabet) for _ in range(30))
        n, digits = zlib.crc32(body.encode()), []
        while n:
            n, r = divmod(n, 62)
            digits.append(alphabet[r])
        return "ghp_" + body + "".join(reversed(digits)).rjust(6, "0")
    return expand("ghp_{{github:36}}", seed)


# ---------------------------------------------------------------------------------------------
# The commands


def sentra_command(repo: Path, env: dict[str, str]) -> Command:
    exe = VENV_BIN / "sentra"
    cmd = Command("sentra", [str(exe), "hook", "pre-commit"], repo, env, kind="sentra")
    if not exe.exists():
        cmd.missing = f"not installed ({exe})"
        return cmd
    try:
        from importlib.metadata import version

        cmd.version = version("sentra-scan")
    except Exception:  # metadata is informational only
        cmd.version = "?"
    return cmd


def _full_output(argv: Sequence[str]) -> str:
    import subprocess

    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return proc.stdout + proc.stderr


def leaks_family(name: str, exe: Path | None, repo: Path, env: dict[str, str]) -> Command:
    """gitleaks and Betterleaks: `git --pre-commit --staged` (gitleaks 8.19+), `git --staged`
    (Betterleaks), or `protect --staged` (older gitleaks)."""
    cmd = Command(name, [], repo, env)
    if exe is None:
        cmd.missing = "not installed"
        return cmd
    git_help = _full_output([str(exe), "git", "--help"])
    if "--staged" in git_help:
        flags = ["--pre-commit", "--staged"] if "--pre-commit" in git_help else ["--staged"]
        cmd.argv = [str(exe), "git", *flags, "--no-banner"]
    elif "--staged" in _full_output([str(exe), "protect", "--help"]):
        cmd.argv = [str(exe), "protect", "--staged", "--no-banner"]
    else:
        cmd.missing = "no staged mode found in --help"
        return cmd
    cmd.version = tool_version([str(exe), "version"])
    return cmd


def peer_commands(dest: Path, repo: Path, env: dict[str, str], staged: list[str]) -> list[Command]:
    peers = [
        leaks_family("gitleaks", which("gitleaks", dest / "bin/gitleaks"), repo, env),
        leaks_family("betterleaks", which("betterleaks", dest / "bin/betterleaks"), repo, env),
    ]

    # detect-secrets: its pre-commit hook is detect-secrets-hook on the staged file names (the
    # pre-commit framework computes those names; here they are computed once, outside the timing).
    ds = which("detect-secrets-hook", dest / "venv/bin/detect-secrets-hook")
    cmd = Command("detect-secrets", [str(ds), *staged] if ds else [], repo, env, note="staged file names")
    if ds is None:
        cmd.missing = "not installed"
    else:
        cmd.version = tool_version([str(ds.parent / "detect-secrets"), "--version"])
    peers.append(cmd)

    # secretlint: lint-staged style, the staged file names.
    sl = which("secretlint", dest / "node/node_modules/.bin/secretlint")
    rc = dest / "node/.secretlintrc.json"
    cmd = Command("secretlint", [], repo, env, note="staged file names")
    if sl is None or not rc.exists():
        cmd.missing = "not installed"
    else:
        cmd.argv = [str(sl), "--secretlintrc", str(rc), *staged]
        cmd.version = tool_version([str(sl), "--version"])
    peers.append(cmd)

    # git-secrets: its installed hook runs `git secrets --pre_commit_hook -- "$@"`.
    gs = which("git-secrets")
    cfg = dest / "git-secrets.gitconfig"
    gs_env = {**env, "GIT_CONFIG_GLOBAL": str(cfg)}
    cmd = Command(
        "git-secrets", ["git", "secrets", "--pre_commit_hook", "--"], repo, gs_env, note=NARROW_PEERS["git-secrets"]
    )
    if gs is None or not cfg.exists():
        cmd.missing = "not installed"
    else:
        dpkg = _full_output(["dpkg-query", "-W", "-f=${Version}", "git-secrets"]).strip()
        cmd.version = dpkg or "?"
    peers.append(cmd)

    # trufflehog 2.x (Python) scans history only: no staged mode, listed for completeness.
    th = which("trufflehog", dest / "venv/bin/trufflehog")
    peers.append(
        Command("trufflehog", [], repo, env, missing="no staged mode (history only)" if th else "not installed")
    )
    return peers


def floor_commands(repo: Path, env: dict[str, str], senv: dict[str, str]) -> list[Command]:
    return [
        Command("git diff --cached -U0", ["git", "diff", "--cached", "-U0"], repo, env, kind="floor"),
        Command("python -c pass", [str(VENV_PYTHON), "-c", "pass"], repo, senv, kind="floor"),
    ]


# ---------------------------------------------------------------------------------------------
# Where Sentra's time goes

# Runs the hook's steps one by one in a fresh interpreter and prints their durations (seconds)
# and the top-level modules each step imported first. It uses package internals: if they moved,
# the breakdown is reported as unavailable, the rest of the benchmark is unaffected.
PHASES_DRIVER = r"""
import io, json, sys, time
marks = [("start", time.perf_counter(), set(sys.modules))]
def mark(name):
    marks.append((name, time.perf_counter(), set(sys.modules)))
from sentra_scan.cli import main
from sentra_scan.cli.hook import pre_commit_main
from sentra_scan.api import find_config, make_scanner
from sentra_scan.config import load_config
from sentra_scan.report import get_reporter
from sentra_scan.sources.staged import DIFF_ARGS
from sentra_scan.sources.gitcmd import git_lines
from sentra_scan.sources.diffparse import DiffParser
mark("imports")
scanner = make_scanner(load_config(find_config()))
mark("config + rules")
lines = list(git_lines(DIFF_ARGS))
mark("git diff --cached")
items = list(DiffParser(max_file_size=scanner.config.max_file_size).parse(lines))
mark("parse diff")
result = scanner.scan(items)
mark("scan")
if result.findings:  # a blocked commit records the result (the ledger) before it reports
    try:
        from sentra_scan.incremental import record_result
    except ImportError:
        pass
    else:
        record_result(scanner, result, mode="pre-commit", target="staged changes", repo=None)
        mark("record findings (ledger)")
get_reporter("text", color=False, context="pre-commit").write(result, io.StringIO())
mark("report")
out = []
for (_, t0, m0), (name, t1, m1) in zip(marks, marks[1:]):
    out.append([name, t1 - t0, sorted({m.split(".")[0] for m in m1 - m0} - {"sentra_scan"})])
import sentra_scan
info = {"findings": len(result.findings), "diff_lines": len(lines), "package": sentra_scan.__file__}
print(json.dumps({"phases": out, **info}))
"""

# `git diff --cached` for the staged change, two ways, in a fresh interpreter each.
GITDIFF_DRIVER = r"""
import json, sys, time
mode, argv = sys.argv[1], json.loads(sys.argv[2])
t0 = time.perf_counter()
if mode == "subprocess":
    import subprocess
    t1 = time.perf_counter()
    t2 = t1
    out = subprocess.run(argv, capture_output=True, check=True).stdout
    t3 = time.perf_counter()
    added = sum(1 for l in out.splitlines() if l.startswith(b"+") and not l.startswith(b"+++"))
    size = len(out)
else:
    import pygit2
    t1 = time.perf_counter()
    repo = pygit2.Repository(".")
    t2 = time.perf_counter()
    diff = repo.index.diff_to_tree(repo.head.peel(pygit2.Tree), context_lines=0)
    diff.find_similar()
    text = diff.patch or ""
    t3 = time.perf_counter()
    added = diff.stats.insertions
    size = len(text.encode())
print(json.dumps({"import": t1 - t0, "open": t2 - t1, "diff": t3 - t2, "added": added, "bytes": size}))
"""


# The imports the hook path makes, for measuring the interpreter's teardown at exit: the same
# process with and without os._exit(0) at the end.
HOOK_IMPORTS = (
    "from sentra_scan.cli import main; import sentra_scan.cli.hook, sentra_scan.api, sentra_scan.config, "
    "sentra_scan.report, sentra_scan.sources.staged, sentra_scan.sources.diffparse"
)


def run_json(argv: Sequence[str], cwd: Path, env: dict[str, str]) -> tuple[float, dict[str, Any] | None, str]:
    sample, text = run_process(argv, cwd, env, capture=True)
    for line in reversed(text.strip().splitlines()):
        if line.startswith("{"):
            try:
                return sample.wall, json.loads(line), text
            except ValueError:
                break
    return sample.wall, None, text


def phase_breakdown(repo: Path, env: dict[str, str], runs: int) -> dict[str, Any]:
    argv = [str(VENV_PYTHON), "-c", PHASES_DRIVER]
    run_json(argv, repo, env)  # warm-up
    per_phase: dict[str, list[float]] = {}
    modules: dict[str, list[str]] = {}
    walls = []
    info: dict[str, Any] = {}
    for _ in range(runs):
        wall, data, text = run_json(argv, repo, env)
        if data is None:
            return {"error": text.strip().splitlines()[-1] if text.strip() else "no output"}
        walls.append(wall)
        for name, secs, mods in data["phases"]:
            per_phase.setdefault(name, []).append(secs)
            modules[name] = mods
        info = {k: v for k, v in data.items() if k != "phases"}
    phases = [{"phase": n, "median_s": median(v), "first_imports": modules[n]} for n, v in per_phase.items()]
    # Teardown: the hook's imports, then a normal exit versus os._exit(0).
    py = str(VENV_PYTHON)
    normal = Command("imports, exit", [py, "-c", HOOK_IMPORTS], repo, env, kind="probe")
    abrupt = Command(
        "imports, os._exit", [py, "-c", HOOK_IMPORTS + "; import os; os._exit(0)"], repo, env, kind="probe"
    )
    measure([normal, abrupt], runs)
    teardown = median([x.wall for x in normal.samples]) - median([x.wall for x in abrupt.samples])
    if normal.warmup_code != 0:
        teardown = float("nan")
    return {"phases": phases, "teardown_s": teardown, "driver_whole_median_s": median(walls), **info}


_IMPORTTIME = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)")


def _parse_importtime(text: str) -> list[tuple[int, str, int, int]]:
    rows = []
    for line in text.splitlines():
        m = _IMPORTTIME.match(line)
        if m:
            rows.append((len(m.group(3)) // 2, m.group(4), int(m.group(1)), int(m.group(2))))
    return rows


def importtime_profile(repo: Path, env: dict[str, str], runs: int) -> dict[str, Any]:
    """`python -X importtime -m sentra_scan hook pre-commit`, medians over `runs` processes.
    Modules that `python -c pass` imports too (encodings, site, ...) are start-up, not the hook."""
    base_rows = _parse_importtime(
        run_process([str(VENV_PYTHON), "-X", "importtime", "-c", "pass"], repo, env, capture=True)[1]
    )
    startup = {name for _, name, _, _ in base_rows}
    argv = [str(VENV_PYTHON), "-X", "importtime", "-m", "sentra_scan", "hook", "pre-commit"]
    run_process(argv, repo, env)  # warm-up
    selfs: dict[str, list[int]] = {}
    cums: dict[str, list[int]] = {}
    depth: dict[str, int] = {}
    order: list[str] = []
    for _ in range(runs):
        for d, name, self_us, cum_us in _parse_importtime(run_process(argv, repo, env, capture=True)[1]):
            if name not in depth:
                depth[name] = d
                order.append(name)
            selfs.setdefault(name, []).append(self_us)
            cums.setdefault(name, []).append(cum_us)
    rows = [
        {"module": n, "depth": depth[n], "self_ms": median(selfs[n]) / 1000, "cumulative_ms": median(cums[n]) / 1000}
        for n in order
        if n not in startup
    ]
    top_level = [r for r in rows if r["depth"] == 0]
    return {
        "hook_imports_ms": sum(r["cumulative_ms"] for r in top_level),
        "startup_imports_ms": sum(cum / 1000 for d, _, _, cum in base_rows if d == 0),
        "modules": len(rows),
        "top_cumulative": sorted(rows, key=lambda r: -r["cumulative_ms"])[:15],
        "top_self": sorted(rows, key=lambda r: -r["self_ms"])[:12],
        "top_level": sorted(top_level, key=lambda r: -r["cumulative_ms"]),
    }


def gitdiff_comparison(repo: Path, env: dict[str, str], runs: int) -> dict[str, Any]:
    git_argv = hook_git_argv()
    out: dict[str, Any] = {"git_argv": git_argv}
    argvs = {m: [str(VENV_PYTHON), "-c", GITDIFF_DRIVER, m, json.dumps(git_argv)] for m in ("subprocess", "pygit2")}
    samples: dict[str, list[tuple[float, dict[str, Any]]]] = {m: [] for m in argvs}
    for m, argv in argvs.items():  # warm-up, and check it works
        _, data, text = run_json(argv, repo, env)
        if data is None:
            out[m] = {"error": text.strip().splitlines()[-1] if text.strip() else "no output"}
    for r in range(runs):
        for m in list(argvs)[r % 2 :] + list(argvs)[: r % 2]:
            if m in out:
                continue
            wall, data, _ = run_json(argvs[m], repo, env)
            if data is not None:
                samples[m].append((wall, data))
    for m, rows in samples.items():
        if m in out or not rows:
            continue
        out[m] = {
            "whole_median_s": median([w for w, _ in rows]),
            "whole_min_s": min(w for w, _ in rows),
            "import_median_s": median([d["import"] for _, d in rows]),
            "open_median_s": median([d["open"] for _, d in rows]),
            "diff_median_s": median([d["diff"] for _, d in rows]),
            "added_lines": rows[0][1]["added"],
            "patch_bytes": rows[0][1]["bytes"],
        }
    return out


# ---------------------------------------------------------------------------------------------
# Scenario and report


def build_scenario(work: Path, args: argparse.Namespace) -> tuple[Path, dict[str, str], StagedChange, str, str | None]:
    env = git_env(work)
    repo = work / "repo"
    if args.repo:
        clone_repo(Path(args.repo).resolve(), repo, env)
        origin = f"clone of {Path(args.repo).resolve()}"
    else:
        generate_repo(repo, env, files=args.files_in_repo, commits=12)
        origin = f"generated: {args.files_in_repo} files in 9 languages"
    commits = int(git(repo, "rev-list", "--count", "HEAD", env=env).strip())
    tracked = len(git(repo, "ls-files", env=env).splitlines())
    origin += f", {tracked} tracked files, {commits} commits"
    token = github_token() if args.with_secret else None
    change = stage_change(repo, env, files=10, lines=500, new_files=2, token=token)
    return repo, env, change, origin, token


def export_revision(rev: str, dest: Path) -> str:
    """Put sentra_scan/ and rules/ as of `rev` in `dest` (for PYTHONPATH); return the short hash."""
    import subprocess

    env = clean_env()
    short = git(ROOT, "rev-parse", "--short", f"{rev}^{{commit}}", env=env).strip()
    dest.mkdir(parents=True)
    archive = subprocess.Popen(
        ["git", "archive", short, "--", "sentra_scan", "rules"], cwd=ROOT, env=env, stdout=subprocess.PIPE
    )
    subprocess.run(["tar", "-x", "-C", str(dest)], stdin=archive.stdout, check=True)
    assert archive.stdout is not None
    archive.stdout.close()
    if archive.wait() != 0:
        raise RuntimeError(f"git archive {rev} failed")
    return short


def sentra_revision() -> str:
    """The commit of the checkout being measured, `+dirty` if the package has local changes."""
    try:
        head = git(ROOT, "rev-parse", "--short", "HEAD", env=clean_env()).strip()
        dirty = git(ROOT, "status", "--porcelain", "--", "sentra_scan", "rules", env=clean_env()).strip()
    except RuntimeError:
        return "?"
    return head + ("+dirty" if dirty else "")


def machine() -> dict[str, Any]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "git": tool_version(["git", "--version"]),
        "kernel": platform.release(),
        "loadavg": os.getloadavg()[0],
    }


def verdict(cmd: Command, with_secret: bool) -> str:
    code = cmd.warmup_code
    if code is None:
        return "-"
    if cmd.kind in ("floor",):
        return "ok" if code == 0 else f"exit {code}"
    found = code != 0
    if found == with_secret:
        return "found" if found else "clean"
    return "MISSED" if with_secret else "FALSE POSITIVE?"


def print_report(res: dict[str, Any]) -> None:
    p = print
    sc = res["scenario"]
    m = res["machine"]
    p("Sentra pre-commit hook benchmark")
    p(f"  repo:    {sc['origin']}")
    secret = f"; one GitHub token at {sc['secret_at']}" if sc["secret_at"] else "; no secrets"
    p(f"  staged:  {sc['files']} files ({sc['new_files']} new), {sc['added_lines']} added lines{secret}")
    pkg = res.get("breakdown", {}).get("package", "")
    where = f" ({Path(pkg).parent.parent})" if pkg else ""
    p(f"  sentra:  {res['tools'].get('sentra', {}).get('version', '?')} at {res['sentra_revision']}{where}")
    load = f"load {m['loadavg']:.2f} → {m.get('loadavg_end', float('nan')):.2f}"
    p(f"  machine: {m['cpu']}, {m['cpus']} CPUs, Python {m['python']}, {m['git']}, {load}")
    p(f"  runs:    {res['runs']} per tool after a warm-up, interleaved; times are whole-process wall clock")
    floor = res["tools"].get("python -c pass", {}).get("median_s")
    if floor:
        p(f"  floor:   python -c pass {ms(floor)} ms: compare absolute figures across runs only at a similar floor")
    busy = max(m["loadavg"], m.get("loadavg_end", 0.0)) > (m["cpus"] or 1) / 2
    if busy:
        p("  WARNING: the machine was busy (1-minute load above half the CPUs): wall times are inflated and")
        p("  noisy; the cpu column (user+sys) is less affected. Rerun on a quiet machine for reference figures.")
    p("")
    sentra = res["tools"].get("sentra", {}).get("median_s")
    rows = []
    for name, t in res["tools"].items():
        if t.get("missing"):
            rows.append([name, t["version"] or "-", t["missing"], "", "", "", "", "", "", ""])
            continue
        ratio = "-" if not sentra else f"{t['median_s'] / sentra:.2f}"
        rows.append(
            [
                name,
                t["version"] or "-",
                t["command"] if len(t["command"]) < 60 else t["command"][:57] + "...",
                t["verdict"],
                ms(t["median_s"]),
                ms(t["min_s"]),
                ms(t["cpu_median_s"]),
                f"{t['maxrss_mb']:.0f}",
                ratio,
            ]
        )
    p(
        table(
            ["tool", "version", "command", "result", "median ms", "min ms", "cpu ms", "rss MB", "× sentra"],
            [r[:9] for r in rows],
            align="llllrrrrr",
        )
    )
    p("  × sentra = tool median / Sentra median (above 1: Sentra is faster). cpu = user+sys incl. children.")
    tg = res["target"]
    p("")
    if tg.get("sentra_median_s") is not None:
        p(
            f"target: Sentra < {TARGET_S * 1000:.0f} ms whole-process: {ms(tg['sentra_median_s'])} ms — "
            + ("met" if tg["under_time"] else f"MISSED by {ms(tg['sentra_median_s'] - TARGET_S)} ms")
        )
    if tg.get("fastest_peer"):
        p(
            f"target: ≥ {TARGET_RATIO:.0f}× faster than the fastest peer ({tg['fastest_peer']}, "
            f"{ms(tg['fastest_peer_median_s'])} ms): {tg['speedup']:.2f}× — "
            + ("met" if tg["fast_enough"] else f"MISSED (Sentra would need ≤ {ms(tg['needed_s'])} ms)")
        )
    gp = tg.get("general_peer")
    if gp:
        p(
            f"        fastest peer with a general rule set ({gp['name']}, {ms(gp['median_s'])} ms): "
            f"{gp['speedup']:.2f}× — "
            + ("met" if gp["fast_enough"] else f"MISSED (Sentra would need ≤ {ms(gp['needed_s'])} ms)")
        )
    if res.get("cold_first_run_s") is not None:
        p(f"Sentra's first run with an empty rule cache (parses YAML): {ms(res['cold_first_run_s'])} ms")

    br = res.get("breakdown", {})
    if br:
        p("")
        p("Where Sentra's hook time goes (medians over fresh processes)")
    if "error" in br:
        p(f"  breakdown unavailable: {br['error']}")
    elif br:
        rows = []
        total = br["whole_s"]
        for ph in br["rows"]:
            share = f"{100 * ph['median_s'] / total:.0f}%" if total else "-"
            mods = [m for m in ph.get("first_imports", []) if not m.startswith("_")]
            other = [m for m in mods if m not in sys.stdlib_module_names]
            stdlib = len(mods) - len(other)
            shown = ", ".join(other[:6]) + (f" (+{len(other) - 6})" if len(other) > 6 else "")
            if stdlib:
                shown += ("; " if other else "") + f"{stdlib} stdlib"
            rows.append([ph["phase"], ms(ph["median_s"]), share, shown])
        rows.append(["whole process (sentra hook pre-commit)", ms(total), "100%", ""])
        p(table(["phase", "ms", "share", "top-level modules first imported"], rows, align="lrrl"))
    it = res.get("importtime", {})
    if it:
        p("")
        p(
            f"-X importtime, python -m sentra_scan hook pre-commit ({it['modules']} modules beyond start-up; "
            f"importtime itself inflates): hook imports {it['hook_imports_ms']:.1f} ms, "
            f"interpreter start-up imports {it['startup_imports_ms']:.1f} ms"
        )
        rows = [
            ["  " * r["depth"] + r["module"], f"{r['cumulative_ms']:.1f}", f"{r['self_ms']:.1f}"]
            for r in it["top_cumulative"]
        ]
        p(table(["top cumulative", "cum ms", "self ms"], rows, align="lrr"))
        p("")
        rows = [[r["module"], f"{r['self_ms']:.1f}", f"{r['cumulative_ms']:.1f}"] for r in it["top_self"]]
        p(table(["top self", "self ms", "cum ms"], rows, align="lrr"))

    gd = res.get("gitdiff", {})
    if gd:
        p("")
        p("git diff --cached for this change, fresh interpreter each (the hook uses the subprocess)")
        rows = []
        for mode, label in (
            ("subprocess", "subprocess: git CLI"),
            ("pygit2", "pygit2: Repository + index.diff_to_tree"),
        ):
            d = gd.get(mode, {})
            if "error" in d or not d:
                rows.append([label, d.get("error", "unavailable"), "", "", "", "", ""])
                continue
            rows.append(
                [
                    label,
                    ms(d["whole_median_s"]),
                    ms(d["import_median_s"]),
                    ms(d["open_median_s"]),
                    ms(d["diff_median_s"]),
                    ms(d["import_median_s"] + d["open_median_s"] + d["diff_median_s"]),
                    d["added_lines"],
                ]
            )
        p(table(["way", "whole ms", "import ms", "open ms", "diff ms", "in-process ms", "added"], rows))
        p("  whole = interpreter start-up + the rest; pygit2 diff includes find_similar() (the CLI has --find-renames)")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=15, help="timed runs per tool (default 15)")
    ap.add_argument("--peers", default="/tmp/peers", help="peers-setup.sh DEST (default /tmp/peers)")
    ap.add_argument("--repo", help="clone this repository instead of generating one")
    ap.add_argument("--with-secret", action="store_true", help="one added line holds a GitHub token")
    ap.add_argument("--json", action="store_true", help="print machine-readable results only")
    ap.add_argument(
        "--rev",
        help="measure sentra_scan/ and rules/ as of this commit of the checkout (exported, first on PYTHONPATH) "
        "instead of the working tree",
    )
    ap.add_argument("--files-in-repo", type=int, default=300, help="files in the generated repository")
    ap.add_argument("--no-breakdown", action="store_true", help="skip the breakdown, importtime and pygit2 parts")
    ap.add_argument("--keep", action="store_true", help="keep the scenario directory (path printed on stderr)")
    args = ap.parse_args(argv)
    if args.runs < 1:
        ap.error("--runs must be at least 1")

    def say(msg: str) -> None:
        if not args.json:
            print(f"… {msg}", file=sys.stderr, flush=True)

    work = Path(tempfile.mkdtemp(prefix="sentra-bench-"))
    try:
        say("building the scenario")
        repo, genv, change, origin, token = build_scenario(work, args)
        # Every tool runs in the same environment: no user/system git config, Sentra's rule cache
        # in the scenario directory (filled by the warm-up), no colour.
        env = clean_env(
            {
                "GIT_CONFIG_NOSYSTEM": "1",
                "GIT_CONFIG_GLOBAL": genv["GIT_CONFIG_GLOBAL"],
                "SENTRA_CACHE_DIR": str(work / "sentra-cache"),
                "NO_COLOR": "1",
            }
        )
        # Sentra's own processes (and the interpreter floor) may get a PYTHONPATH: --rev.
        senv = dict(env)
        revision = sentra_revision()
        if args.rev:
            revision = export_revision(args.rev, work / "sentra-src")
            senv["PYTHONPATH"] = str(work / "sentra-src")
        compile_bytecode(work / "sentra-src" if args.rev else ROOT)
        staged = [
            f for f in git(repo, "diff", "--cached", "--name-only", "--diff-filter=ACM", env=env).splitlines() if f
        ]
        sentra = sentra_command(repo, senv)
        cold = None
        if not sentra.missing:
            cold = run_process(sentra.argv, repo, env)[0].wall
        commands = [sentra, *peer_commands(Path(args.peers), repo, env, staged), *floor_commands(repo, env, senv)]
        say(f"timing {sum(1 for c in commands if not c.missing)} commands × {args.runs} runs")
        measure(commands, args.runs, progress=say)

        tools: dict[str, Any] = {}
        for c in commands:
            entry: dict[str, Any] = {
                "kind": c.kind,
                "version": c.version,
                "command": " ".join(shlex.quote(a) for a in c.argv[:6])
                + (f" <{len(c.argv) - 6} more>" if len(c.argv) > 6 else ""),
                "note": c.note,
                "missing": c.missing,
            }
            if not c.missing:
                entry.update(summary(c))
                entry["verdict"] = verdict(c, args.with_secret)
                head = c.warmup_output.strip().splitlines()[:5]
                # Tools echo what they found: keep the generated token out of the results.
                entry["output_head"] = [line.replace(token, "ghp_" + "*" * 36) if token else line for line in head]
            tools[c.name] = entry
        if not sentra.missing:
            tools["sentra"]["command"] = "sentra hook pre-commit"

        s_med = tools["sentra"].get("median_s")
        peers = {n: t for n, t in tools.items() if t["kind"] == "peer" and not t["missing"]}
        target: dict[str, Any] = {"sentra_median_s": s_med}
        if s_med is not None:
            target["under_time"] = s_med < TARGET_S
        if peers and s_med:
            fastest = min(peers, key=lambda n: peers[n]["median_s"])
            f_med = peers[fastest]["median_s"]
            target.update(
                fastest_peer=fastest,
                fastest_peer_median_s=f_med,
                speedup=f_med / s_med,
                fast_enough=f_med / s_med >= TARGET_RATIO,
                needed_s=f_med / TARGET_RATIO,
            )
            general = {n: t for n, t in peers.items() if n not in NARROW_PEERS}
            if general and fastest in NARROW_PEERS:
                g = min(general, key=lambda n: general[n]["median_s"])
                g_med = general[g]["median_s"]
                target["general_peer"] = {
                    "name": g,
                    "median_s": g_med,
                    "speedup": g_med / s_med,
                    "fast_enough": g_med / s_med >= TARGET_RATIO,
                    "needed_s": g_med / TARGET_RATIO,
                }

        res: dict[str, Any] = {
            "scenario": {
                "origin": origin,
                "files": len(change.files),
                "new_files": sum(1 for f in change.files if f.startswith("bench_added/")),
                "added_lines": change.added_lines,
                "secret_at": f"{change.secret_file}:{change.secret_line}" if change.secret_file else None,
                "staged_files": change.files,
            },
            "machine": machine(),
            "runs": args.runs,
            "sentra_revision": revision,
            "tools": tools,
            "target": target,
            "cold_first_run_s": cold,
        }

        if not args.no_breakdown and not sentra.missing:
            say("breakdown: hook phases")
            ph = phase_breakdown(repo, senv, args.runs)
            startup = tools["python -c pass"]["median_s"]
            whole = tools["sentra"]["median_s"]
            if "error" in ph:
                res["breakdown"] = ph
            else:
                rows = [{"phase": "interpreter start-up (python -c pass)", "median_s": startup, "first_imports": []}]
                rows += ph["phases"]
                teardown = ph.get("teardown_s", float("nan"))
                if teardown == teardown:  # not NaN
                    rows.append(
                        {
                            "phase": "exit: interpreter teardown (clean-path modules)",
                            "median_s": teardown,
                            "first_imports": [],
                        }
                    )
                rows.append(
                    {
                        "phase": "unaccounted (by difference)",
                        "median_s": whole - sum(r["median_s"] for r in rows),
                        "first_imports": [],
                    }
                )
                res["breakdown"] = {"rows": rows, "whole_s": whole, **{k: v for k, v in ph.items() if k != "phases"}}
            say("breakdown: -X importtime")
            res["importtime"] = importtime_profile(repo, senv, min(args.runs, 7))
            say("breakdown: git diff via subprocess vs pygit2")
            res["gitdiff"] = gitdiff_comparison(repo, senv, args.runs)
    finally:
        if args.keep:
            print(f"scenario kept in {work}", file=sys.stderr)
        else:
            import shutil

            shutil.rmtree(work, ignore_errors=True)

    res["machine"]["loadavg_end"] = os.getloadavg()[0]
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        print_report(res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
