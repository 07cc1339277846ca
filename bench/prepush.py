"""Time Sentra's pre-push hook on a push of 20 commits, as a whole process, beside peers.

Scenario (built once under $SENTRA_BENCH_DIR, default /tmp/sentra-bench): the synthetic
history of bench/synth_history.py (20,000 commits; 2,000 with --quick) is cloned bare as the
remote and cloned again as the local repository; then 20 local commits of ordinary code
(3 files, ~60 added lines each) are made on main. Two pushes are timed:

    update      main, remote at the old tip:  `<ref> <new> <ref> <old>` on stdin
    new-branch  a new branch with the same 20 commits: the remote sha is 0000..., so the
                range is "not on any remote-tracking ref"

Tools, per push (each timed as a whole process, median of --runs after one warm-up, interleaved):

    git log -p -U0 RANGE                        the floor for the range
    sentra hook pre-push origin URL             git's stdin line on stdin (what the hook gets)
    sentra scan --commits A..B                  the same range through the CLI (update push only)
    gitleaks git --log-opts "RANGE"             gitleaks 8.30.1 (it has no pre-push mode; this is
    betterleaks git --log-opts "RANGE"          how it is wired into pre-push hooks)

Sentra's encrypted state (.git/sentra) is removed before each Sentra run so that the 20
commits are new to it every time, as on a real push; it records with a bench key file.
With --with-secret the 10th commit adds a GitHub token: every tool should then block/report.

    .venv/bin/python bench/prepush.py [--runs 15] [--quick] [--base-commits N] [--with-secret]
                                      [--peers /tmp/peers] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import synth_history
from audit import (
    DEFAULT_PEERS,
    WORK_ROOT,
    Run,
    bench_key_file,
    clean_env,
    median,
    peer_bins,
    run_timed,
    sentra_at,
    version_of,
)
from common import LANGS, code_lines, secret_line

from sentra_scan.ruleset.examples import expand

ZERO = "0" * 40
PUSH_COMMITS = 20


@dataclass
class Tool:
    key: str
    label: str
    argv: list[str]
    cwd: Path
    env: dict[str, str]
    stdin: bytes | None = None
    kind: str = "peer"  # floor | sentra | peer
    reset: Path | None = None  # a directory removed (untimed) before each run
    missing: str = ""
    version: str = ""
    warm: Run | None = None
    warm_stderr: str = ""
    runs: list[Run] = field(default_factory=list)


def git(repo: Path, *args: str) -> str:
    env = clean_env(
        {
            "GIT_AUTHOR_NAME": "Bench",
            "GIT_AUTHOR_EMAIL": "bench@example.com",
            "GIT_COMMITTER_NAME": "Bench",
            "GIT_COMMITTER_EMAIL": "bench@example.com",
            "GIT_AUTHOR_DATE": "2030-01-01T12:00:00+00:00",
            "GIT_COMMITTER_DATE": "2030-01-01T12:00:00+00:00",
        }
    )
    proc = subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise RuntimeError(f"git {' '.join(args[:4])}: {proc.stderr.strip()}")
    return proc.stdout


def build_scenario(base: Path, dest: Path, *, with_secret: bool, seed: int = 11) -> dict[str, str]:
    """remote.git (bare) and local/ with PUSH_COMMITS new commits on main and on a new branch."""
    tag = "secret" if with_secret else "clean"
    root = dest / tag
    done = root / "scenario.json"
    if done.is_file():
        info = json.loads(done.read_text())
        if info.get("base_head") == git(base, "rev-parse", "HEAD").strip():
            return info
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    remote, local = root / "remote.git", root / "local"
    git(root, "clone", "-q", "--bare", str(base), str(remote))
    git(root, "clone", "-q", str(remote), str(local))
    old = git(local, "rev-parse", "HEAD").strip()
    rng = random.Random(seed)
    tracked = [p for p in git(local, "ls-files").splitlines() if p.rsplit(".", 1)[-1] in LANGS]
    token = expand("ghp_{{github:36}}", f"prepush-{seed}") if with_secret else None
    for n in range(PUSH_COMMITS):
        touched = [*rng.sample(tracked, 2), f"src/pushed/change_{n}.py"]
        for i, rel in enumerate(touched):
            path = local / rel
            ext = path.suffix[1:]
            block = code_lines(ext, rng, 20)
            if token and n == PUSH_COMMITS // 2 and i == 2:
                block[10] = secret_line(ext, token)
            old_lines = path.read_text().splitlines() if path.exists() else []
            at = rng.randint(0, len(old_lines))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("\n".join([*old_lines[:at], *block, *old_lines[at:]]) + "\n")
        git(local, "add", "--", *touched)
        git(local, "commit", "-q", "-m", f"Change {n}: {len(touched)} files")
    new = git(local, "rev-parse", "HEAD").strip()
    git(local, "branch", "-q", "feature/pushed", new)
    info = {
        "base_head": git(base, "rev-parse", "HEAD").strip(),
        "remote": str(remote),
        "local": str(local),
        "old": old,
        "new": new,
        "with_secret": with_secret,
        "base_commits": git(local, "rev-list", "--count", "HEAD").strip(),
    }
    done.write_text(json.dumps(info, indent=1) + "\n")
    return info


def tools_for(
    push: str,
    info: dict[str, str],
    bins: dict[str, Path | None],
    record: bool,
    sentra: tuple[list[str], dict[str, str], str],
) -> list[Tool]:
    local = Path(info["local"])
    env = clean_env()
    old, new = info["old"], info["new"]
    if push == "update":
        line = f"refs/heads/main {new} refs/heads/main {old}\n"
        rng = [f"{old}..{new}"]
        log_opts = f"{old}..{new}"
        short = "OLD..NEW"
    else:
        line = f"refs/heads/feature/pushed {new} refs/heads/feature/pushed {ZERO}\n"
        rng = [new, "--not", "--remotes=origin"]
        log_opts = f"{new} --not --remotes=origin"
        short = "NEW --not --remotes=origin"
    senv = clean_env({"SENTRA_KEY_FILE": str(bench_key_file())} if record else {"SENTRA_NO_RECORD": "1"})
    sentra_argv, sentra_env, version = sentra
    senv.update(sentra_env)
    state = local / ".git" / "sentra"
    tools = [
        Tool("floor", f"git log -p -U0 {short}", ["git", "log", "-p", "-U0", *rng], local, env, kind="floor"),
        Tool(
            "sentra",
            "sentra hook pre-push",
            [*sentra_argv, "hook", "pre-push", "origin", info["remote"]],
            local,
            senv,
            stdin=line.encode(),
            kind="sentra",
            reset=state,
            version=version,
        ),
    ]
    if push == "update":
        tools.append(
            Tool(
                "sentra-scan",
                "sentra scan --commits A..B",
                [*sentra_argv, "scan", "--commits", f"{old}..{new}"],
                local,
                senv,
                kind="sentra",
                reset=state,
                version=version,
            )
        )
    for name in ("gitleaks", "betterleaks"):
        b = bins[name]
        quiet = ["--no-banner", "-l", "error"] + (["-s"] if name == "betterleaks" else [])
        tools.append(
            Tool(
                name,
                f"{name} git --log-opts",
                [str(b), "git", f"--log-opts={log_opts}", *quiet, "."] if b else [],
                local,
                env,
                missing="" if b else "not installed",
                version=version_of([str(b), "version"]) if b else "",
            )
        )
    return tools


def measure(tools: list[Tool], runs: int, log: Any) -> None:
    active = [t for t in tools if not t.missing]
    err = WORK_ROOT / "prepush-stderr.txt"
    for t in active:
        if t.reset:
            shutil.rmtree(t.reset, ignore_errors=True)
        t.warm = run_timed(t.argv, t.cwd, t.env, stdin=t.stdin, stderr=err)
        t.warm_stderr = err.read_text(errors="replace").strip()
    for i in range(runs):
        k = i % len(active)
        for t in active[k:] + active[:k]:
            if t.reset:
                shutil.rmtree(t.reset, ignore_errors=True)
            t.runs.append(run_timed(t.argv, t.cwd, t.env, stdin=t.stdin))
        if (i + 1) % 5 == 0:
            log(f"  run {i + 1}/{runs}")


def summarize(push: str, tools: list[Tool]) -> dict[str, Any]:
    by = {t.key: t for t in tools}
    floor_s = median([r.wall for r in by["floor"].runs])
    sentra_s = median([r.wall for r in by["sentra"].runs]) if by["sentra"].runs else None
    rows = []
    for t in tools:
        walls = [r.wall for r in t.runs]
        m = median(walls) if walls else None
        rows.append(
            {
                "tool": t.key,
                "label": t.label,
                "version": t.version,
                "argv": t.argv,
                "stdin": t.stdin.decode() if t.stdin else None,
                "status": t.missing or "ok",
                "runs": len(walls),
                "median_ms": m * 1000 if m else None,
                "min_ms": min(walls) * 1000 if walls else None,
                "cpu_ms": median([r.cpu for r in t.runs]) * 1000 if walls else None,
                "maxrss_mb": median([r.maxrss_mb for r in t.runs]) if walls else None,
                "exit_codes": sorted({r.code for r in t.runs}) if walls else [],
                "warm_exit": t.warm.code if t.warm else None,
                "warm_stderr_tail": t.warm_stderr[-400:] if t.warm and t.warm.code not in (0,) else "",
                "x_floor": m / floor_s if m and floor_s else None,
                "peer_over_sentra": m / sentra_s if m and sentra_s and t.kind == "peer" else None,
            }
        )
    return {"push": push, "tools": rows}


def render(s: dict[str, Any]) -> str:
    def f(x: float | None, spec: str = ".1f") -> str:
        return "-" if x is None else format(x, spec)

    headers = ["tool", "median ms", "min ms", "cpu ms", "x floor", "peer/sentra", "RSS MB", "exit"]
    rows = []
    for r in s["tools"]:
        if r["status"] != "ok":
            rows.append([f"{r['label']}: {r['status']}", "", "", "", "", "", "", ""])
            continue
        rows.append(
            [
                r["label"],
                f(r["median_ms"]),
                f(r["min_ms"]),
                f(r["cpu_ms"]),
                f(r["x_floor"], ".2f"),
                f(r["peer_over_sentra"], ".2f"),
                f(r["maxrss_mb"], ".0f"),
                ",".join(map(str, r["exit_codes"])),
            ]
        )
    widths = [max([len(h), *(len(str(row[i])) for row in rows)]) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return "  ".join(
            [cells[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))]
        ).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--quick", action="store_true", help="2,000-commit base history, 5 runs")
    ap.add_argument("--base-commits", type=int, default=None, help="synthetic base history (default 20000)")
    ap.add_argument("--with-secret", action="store_true", help="the 10th pushed commit adds a GitHub token")
    ap.add_argument("--no-record", action="store_true", help="SENTRA_NO_RECORD=1 for Sentra")
    ap.add_argument("--peers", type=Path, default=DEFAULT_PEERS)
    ap.add_argument("--sentra-at", metavar="REV", default=None, help="run Sentra as committed at REV (see audit.py)")
    ap.add_argument("--json", type=Path, default=None, help="write the results here ('-' for stdout)")
    args = ap.parse_args(argv)
    if args.quick:
        args.base_commits = args.base_commits or 2000
        args.runs = 5 if args.runs == 15 else args.runs
    args.base_commits = args.base_commits or 20_000
    to_stdout = args.json is not None and str(args.json) == "-"

    def log(msg: str) -> None:
        print(msg, file=sys.stderr if to_stdout else sys.stdout, flush=True)

    base, _ = synth_history.ensure(commits=args.base_commits, log=log)
    info = build_scenario(base, WORK_ROOT / f"prepush-{args.base_commits}", with_secret=args.with_secret)
    log(f"push of {PUSH_COMMITS} commits onto {base.name} ({info['base_commits']} commits in the local repo)")
    bins = peer_bins(args.peers)
    argv_prefix, env_extra, version, _ = sentra_at(args.sentra_at)
    sentra = (argv_prefix, env_extra, version)
    log(f"sentra: {version}")
    load_before = os.getloadavg()
    results = []
    for push in ("update", "new-branch"):
        log(f"[{push}] {args.runs} runs")
        tools = tools_for(push, info, bins, record=not args.no_record, sentra=sentra)
        measure(tools, args.runs, log)
        s = summarize(push, tools)
        results.append(s)
        log(f"\n{push} push ({PUSH_COMMITS} commits{', one with a secret' if args.with_secret else ''}):")
        log(render(s) + "\n")
        for r in s["tools"]:
            if r["warm_stderr_tail"] and r["warm_exit"] not in (0, 1):
                log(f"  {r['label']} exited {r['warm_exit']}: {r['warm_stderr_tail']}")
    log(f"load average before/after: {load_before[0]:.1f} / {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    if args.json:
        doc = {
            "environment": {
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
                "git": version_of(["git", "--version"]),
                "loadavg_before": load_before,
                "loadavg_after": os.getloadavg(),
                "runs": args.runs,
                "sentra": version,
            },
            "scenario": info,
            "pushes": results,
        }
        text = json.dumps(doc, indent=1) + "\n"
        if to_stdout:
            sys.stdout.write(text)
        else:
            args.json.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
