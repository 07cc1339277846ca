"""Time `sentra audit` over whole histories, side by side with the `git log -p` floor and peers.

For each repository (the synthetic history of bench/synth_history.py, and pallets/flask and
pypa/pip when their mirrors are present, and any --repo), runs every tool once to warm up
(that run's report gives the findings count and, on the synthetic history, the recall
against the answer key), then --runs more times, interleaved, and reports medians:

    git log -p -U0 HEAD            the floor: the time just to produce the diffs
    git log (sentra's options)     the same walk with the options Sentra's stream uses
    sentra audit #1 / #2           `sentra audit REPO --branch HEAD --format json -o F`, twice in
                                   a row: #1 starts with no sentra state in the repository
                                   (.git/sentra removed), #2 right after, on the state #1 left
    gitleaks git --log-opts=HEAD   gitleaks 8.30.1
    betterleaks git --log-opts=HEAD
    trufflehog (v2) --regex        one run only, under --slow-timeout (it diffs commit by commit)
    detect-secrets                 no history mode: listed, not run

Ratios: each tool's median over the floor's; each peer's median over Sentra's (#1) (above 1:
Sentra is faster). Peak memory, three ways: "RSS" the largest single process among the tool
and the children it waited for (wait4; often the `git log` child); "own" the tool's own
process (VmHWM, sampled); "tree" the sampled peak of the summed RSS of the whole process tree
(a page shared by several processes counted in each); "tree PSS" the same with proportional
set sizes (a shared page split between its processes: what the tree really holds).
Nothing is asserted: this is a measurement.

    .venv/bin/python bench/audit.py [--runs 3] [--quick] [--commits 20000] [--repo PATH]...
                                    [--no-real] [--tools floor,sentra,gitleaks,...] [--all-refs]
                                    [--peers /tmp/peers] [--json FILE]

Peers come from /work/shared/tools/peers-setup.sh DEST; a missing one is "not installed".
Repositories are cloned (hard-linked, local) under $SENTRA_BENCH_DIR (default
/tmp/sentra-bench); the sources are never written to.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import synth_history
from common import compile_bytecode

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
WORK_ROOT = synth_history.WORK_ROOT
DEFAULT_PEERS = Path(os.environ.get("SENTRA_PEERS", "/tmp/peers"))
REAL_REPOS = (Path("/work/.mirror/pallets+flask/repo"), Path("/work/.mirror/pypa+pip/repo"))
# The reference figures for pip (HEAD's ancestry).
REFERENCE = {"pip": {"gitleaks": 31.8, "betterleaks": 16.6, "git log -p": 7.9}}
ALL_TOOLS = ("floor", "floor-sentra", "sentra", "gitleaks", "betterleaks", "trufflehog", "detect-secrets")
MB = 1024 * 1024


# ---------------------------------------------------------------------------------------------
# Running one process: wall time, CPU, peak memory


@dataclass
class Run:
    wall: float
    cpu: float  # user+sys of the process and the children it waited for
    maxrss_mb: float  # largest single process in the tree (wait4)
    tree_mb: float  # sampled peak of the summed RSS of the process tree
    code: int
    timed_out: bool = False
    own_mb: float = 0.0  # the process itself, without its children (VmHWM, sampled)
    pss_mb: float = 0.0  # sampled peak of the summed PSS of the tree (shared pages split, not repeated)


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as fh:
            return int(fh.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)
    except (OSError, ValueError, IndexError):
        return 0


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        ppid = int(stat[stat.rfind(b")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


class _TreeSampler(threading.Thread):
    def __init__(self, pid: int, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.peak_kb = 0
        self.own_kb = 0
        self.pss_kb = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            pids = _descendants(self.pid)
            total = sum(_rss_kb(p) for p in pids)
            self.peak_kb = max(self.peak_kb, total)
            self.pss_kb = max(self.pss_kb, sum(_pss_kb(p) for p in pids))
            self.own_kb = max(self.own_kb, _hwm_kb(self.pid))
            self.stop.wait(self.interval)


def _pss_kb(pid: int) -> int:
    """Proportional set size: a page shared by N processes (a forked worker's copy-on-write
    pages, a pack file mapped by two git processes) counts 1/N in each, so the sum over a
    process tree is the memory the tree really holds; summed RSS counts such pages N times."""
    return _proc_kb(f"/proc/{pid}/smaps_rollup", "Pss:")


def _hwm_kb(pid: int) -> int:
    return _proc_kb(f"/proc/{pid}/status", "VmHWM:")


def _proc_kb(path: str, field: str) -> int:
    """A `field: N kB` row of a /proc file (0 when the process is gone)."""
    try:
        with open(path) as fh:
            for row in fh:
                if row.startswith(field):
                    return int(row.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def run_timed(
    argv: Sequence[str],
    cwd: Path,
    env: dict[str, str],
    *,
    stdin: bytes | None = None,
    stdout: Path | None = None,
    stderr: Path | None = None,
    timeout: float | None = None,
    sample: bool = True,
) -> Run:
    """Run `argv` to completion as its own process group. Wall time from spawn to reap; CPU
    and the single-process peak RSS from wait4; the tree's summed RSS sampled every 50 ms."""
    out_fh = open(stdout, "wb") if stdout else subprocess.DEVNULL  # noqa: SIM115
    err_fh = open(stderr, "wb") if stderr else subprocess.DEVNULL  # noqa: SIM115
    try:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=out_fh,
            stderr=err_fh,
            start_new_session=True,
        )
        sampler = _TreeSampler(proc.pid) if sample else None
        if sampler:
            sampler.start()
        timed_out = threading.Event()

        def kill() -> None:
            timed_out.set()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

        timer = threading.Timer(timeout, kill) if timeout else None
        if timer:
            timer.start()
        if stdin is not None:
            assert proc.stdin is not None
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.write(stdin)
            proc.stdin.close()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        if timer:
            timer.cancel()
        tree_kb = own_kb = pss_kb = 0
        if sampler:
            sampler.stop.set()
            sampler.join()
            tree_kb, own_kb, pss_kb = sampler.peak_kb, sampler.own_kb, sampler.pss_kb
    finally:
        for fh in (out_fh, err_fh):
            if fh is not subprocess.DEVNULL:
                fh.close()  # type: ignore[union-attr]
    maxrss = usage.ru_maxrss / 1024
    return Run(
        wall,
        usage.ru_utime + usage.ru_stime,
        maxrss,
        max(tree_kb / 1024, maxrss),
        proc.returncode,
        timed_out.is_set(),
        own_kb / 1024,
        pss_kb / 1024,
    )


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without anything that points git or sentra elsewhere."""
    drop = ("GIT_", "SENTRA_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop) and k != "SKIP"}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull, NO_COLOR="1")
    env.update(extra or {})
    return env


def bench_key_file() -> Path:
    """A key file for sentra's encrypted ledger, so audits record like a user's would."""
    path = WORK_ROOT / "bench-sentra.key"
    if not path.is_file():
        WORK_ROOT.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(base64.b64encode(os.urandom(32)).decode() + "\n")
    return path


def git_out(repo: Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=repo, env=clean_env(), capture_output=True, text=True, check=False)
    if proc.returncode:
        raise RuntimeError(f"git {' '.join(args)} in {repo}: {proc.stderr.strip()}")
    return proc.stdout


def version_of(argv: Sequence[str]) -> str:
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    lines = (proc.stdout or proc.stderr).strip().splitlines()
    return lines[0].strip() if lines else "?"


def peer_bins(peers: Path) -> dict[str, Path | None]:
    def exe(p: Path) -> Path | None:
        return p if p.is_file() and os.access(p, os.X_OK) else None

    return {
        "gitleaks": exe(peers / "bin" / "gitleaks"),
        "betterleaks": exe(peers / "bin" / "betterleaks"),
        "trufflehog": exe(peers / "venv" / "bin" / "trufflehog"),
        "detect-secrets": exe(peers / "venv" / "bin" / "detect-secrets"),
    }


# ---------------------------------------------------------------------------------------------
# Findings and recall


@dataclass(frozen=True)
class Hit:
    rule: str
    commit: str
    path: str
    line: int | None
    text: str  # the secret when the report carries it unredacted


def parse_sentra(path: Path) -> list[Hit]:
    doc = json.loads(path.read_text())
    return [
        Hit(f["rule_id"], (f.get("commit") or {}).get("id", ""), f["path"], f.get("line"), "")
        for f in doc.get("findings", [])
    ]


def parse_gitleaks(path: Path) -> list[Hit]:
    doc = json.loads(path.read_text() or "[]")
    return [
        Hit(f["RuleID"], f.get("Commit", ""), f.get("File", ""), f.get("StartLine"), f.get("Secret", "")) for f in doc
    ]


def parse_betterleaks(path: Path) -> list[Hit]:
    doc = json.loads(path.read_text() or "{}")
    out = []
    for f in doc.get("findings", []) if isinstance(doc, dict) else doc:
        loc = f.get("location", {})
        attrs = f.get("attributes", {})
        match = f.get("match", {})
        out.append(
            Hit(
                f.get("rule_id", ""),
                attrs.get("git.sha", ""),
                loc.get("path", ""),
                loc.get("start_line"),
                match.get("full") or match.get("value") or "",
            )
        )
    return out


def parse_trufflehog(path: Path) -> list[Hit]:
    out = []
    for row in path.read_text(errors="replace").splitlines():
        row = row.strip()
        if not row.startswith("{"):
            continue
        try:
            f = json.loads(row)
        except ValueError:
            continue
        out.append(
            Hit(
                f.get("reason", ""),
                f.get("commitHash", ""),
                f.get("path", ""),
                None,
                "\n".join(f.get("stringsFound", [])),
            )
        )
    return out


def recall(hits: list[Hit], key: dict[str, Any], *, head_only: bool) -> dict[str, Any]:
    """Planted secrets found: same commit, path and line; or the secret's unique part in the
    reported text (for reports that carry it; trufflehog names other commits)."""
    planted = [p for p in key["secrets"] if p["reachable_from_head"] or not head_only]
    found, used = [], set()
    for p in planted:
        ok = False
        for i, h in enumerate(hits):
            where = h.commit == p["commit"] and h.path == p["path"] and (h.line is None or h.line == p["line"])
            if where or (h.text and p["marker"] in h.text):
                ok = True
                used.add(i)
        if ok:
            found.append(p["index"])
    missed = [p for p in planted if p["index"] not in found]
    return {
        "planted": len(planted),
        "found": len(found),
        "recall": len(found) / len(planted) if planted else None,
        "missed": [f"{p['kind']} {p['path']}:{p['line']} @{p['commit'][:10]}" for p in missed],
        "other_findings": len(hits) - len(used),
    }


# ---------------------------------------------------------------------------------------------
# Tools and repositories


@dataclass
class Tool:
    key: str  # floor | floor-sentra | sentra#1 | sentra#2 | gitleaks | ...
    label: str
    argv: list[str]
    cwd: Path
    env: dict[str, str]
    kind: str = "peer"  # floor | sentra | peer
    report: Path | None = None
    stdout: Path | None = None
    parse: Callable[[Path], list[Hit]] | None = None
    ok_codes: tuple[int, ...] = (0, 1)
    version: str = ""
    missing: str = ""
    slow: bool = False  # one run, no warm-up, --slow-timeout
    before: Callable[[], None] | None = None  # untimed set-up before each run
    runs: list[Run] = field(default_factory=list)
    warm: Run | None = None
    hits: list[Hit] | None = None
    error: str = ""
    failed: list[Run] = field(default_factory=list)


@dataclass
class RepoCase:
    name: str
    path: Path
    source: str
    key: dict[str, Any] | None = None
    commits: int = 0
    diff_mb: float = 0.0
    tools: list[Tool] = field(default_factory=list)


def clone(source: Path, name: str) -> Path:
    dest = WORK_ROOT / "clones" / name
    if (dest / ".git").is_dir():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    subprocess.run(["git", "clone", "-q", str(source), str(tmp)], env=clean_env(), check=True, capture_output=True)
    tmp.rename(dest)
    return dest


def trufflehog_clone(repo: Path, name: str) -> Path:
    """truffleHog 2 fetches from `origin` before scanning: give it a clone whose origin is the repo."""
    dest = WORK_ROOT / "clones" / f"{name}-trufflehog"
    if not (dest / ".git").is_dir():
        subprocess.run(
            ["git", "clone", "-q", "--no-checkout", str(repo), str(dest)],
            env=clean_env(),
            check=True,
            capture_output=True,
        )
    return dest


def build_tools(case: RepoCase, args: argparse.Namespace, bins: dict[str, Path | None], out_dir: Path) -> list[Tool]:
    repo = case.path
    env = clean_env()
    scope_git = ["--all"] if args.all_refs else ["HEAD"]
    tools: list[Tool] = []
    want = set(args.tools)
    if "floor" in want:
        tools.append(
            Tool(
                "floor",
                f"git log -p -U0 {' '.join(scope_git)}",
                ["git", "log", "-p", "-U0", *scope_git],
                repo,
                env,
                "floor",
            )
        )
    if "floor-sentra" in want:
        try:
            from sentra_scan.sources.gitcmd import FIXED_CONFIG
            from sentra_scan.sources.history import LOG_ARGS

            argv = ["git", *FIXED_CONFIG, *LOG_ARGS, *scope_git, "--"]
            tools.append(Tool("floor-sentra", "git log, sentra's options", argv, repo, env, "floor"))
        except ImportError as exc:
            tools.append(Tool("floor-sentra", "git log, sentra's options", [], repo, env, "floor", missing=str(exc)))
    sentra_argv, sentra_env = args.sentra
    if "sentra" in want:
        senv = clean_env({"SENTRA_NO_RECORD": "1"} if args.no_record else {"SENTRA_KEY_FILE": str(bench_key_file())})
        senv.update(sentra_env)
        scope = [] if args.all_refs else ["--branch", "HEAD"]
        rules_arg = ["--rules-dir", str(args.rules_dir)] if args.rules_dir else []
        version = args.sentra_version
        state = Path(git_out(repo, "rev-parse", "--path-format=absolute", "--git-common-dir").strip()) / "sentra"

        def reset_state(state: Path = state) -> None:
            shutil.rmtree(state, ignore_errors=True)

        for n in (1, 2):
            report = out_dir / f"{case.name}.sentra{n}.json"
            tools.append(
                Tool(
                    f"sentra#{n}",
                    f"sentra audit #{n}" + (" (no state)" if n == 1 else " (state of #1)"),
                    [*sentra_argv, "audit", str(repo), *scope, *rules_arg, "--format", "json", "-o", str(report)],
                    repo,
                    senv,
                    "sentra",
                    report=report,
                    parse=parse_sentra,
                    version=version,
                    before=reset_state if n == 1 else None,
                )
            )
    for label, rules_dir in args.variants:
        report = out_dir / f"{case.name}.sentra-{label}.json"
        json_out = ["--format", "json", "-o", str(report)]
        senv = clean_env({"SENTRA_NO_RECORD": "1"} if args.no_record else {"SENTRA_KEY_FILE": str(bench_key_file())})
        senv.update(sentra_env)
        state = Path(git_out(repo, "rev-parse", "--path-format=absolute", "--git-common-dir").strip()) / "sentra"
        scope = [] if args.all_refs else ["--branch", "HEAD"]
        tools.append(
            Tool(
                f"sentra-{label}",
                f"sentra audit, rules {label}",
                [*sentra_argv, "audit", str(repo), *scope, "--rules-dir", str(rules_dir), *json_out],
                repo,
                senv,
                "sentra",
                report=report,
                parse=parse_sentra,
                before=lambda state=state: shutil.rmtree(state, ignore_errors=True),
            )
        )
    log_opts = ["--log-opts=--all"] if args.all_refs else ["--log-opts=HEAD"]
    if "gitleaks" in want:
        b = bins["gitleaks"]
        report = out_dir / f"{case.name}.gitleaks.json"
        tools.append(
            Tool(
                "gitleaks",
                "gitleaks git",
                [str(b), "git", *log_opts, "--no-banner", "-l", "error", "-f", "json", "-r", str(report), str(repo)],
                repo,
                env,
                report=report,
                parse=parse_gitleaks,
                version=f"gitleaks {version_of([str(b), 'version'])}" if b else "",
                missing="" if b else "not installed",
            )
        )
    if "betterleaks" in want:
        b = bins["betterleaks"]
        report = out_dir / f"{case.name}.betterleaks.json"
        tools.append(
            Tool(
                "betterleaks",
                "betterleaks git",
                [str(b), "git", *log_opts, "--no-banner", "-s", "-l", "error", "-o", str(report), str(repo)],
                repo,
                env,
                report=report,
                parse=parse_betterleaks,
                version=f"betterleaks {version_of([str(b), 'version'])}" if b else "",
                missing="" if b else "not installed",
            )
        )
    if "trufflehog" in want:
        b = bins["trufflehog"]
        if b is None:
            tools.append(Tool("trufflehog", "trufflehog 2 --regex", [], repo, env, missing="not installed"))
        else:
            th = trufflehog_clone(repo, case.name)
            branch = git_out(repo, "symbolic-ref", "--short", "HEAD").strip()
            report = out_dir / f"{case.name}.trufflehog.jsonl"
            scope = [] if args.all_refs else ["--branch", branch]
            tools.append(
                Tool(
                    "trufflehog",
                    "trufflehog 2 --regex",
                    [
                        str(b),
                        "--regex",
                        "--entropy=False",
                        "--json",
                        "--cleanup",
                        *scope,
                        "--repo_path",
                        str(th),
                        f"file://{th}",
                    ],
                    th,
                    env,
                    stdout=report,
                    report=report,
                    parse=parse_trufflehog,
                    version="truffleHog 2.2.1",
                    slow=True,
                )
            )
    if "detect-secrets" in want:
        tools.append(Tool("detect-secrets", "detect-secrets", [], repo, env, missing="no history mode (not run)"))
    return tools


def prepare_repos(args: argparse.Namespace, log: Callable[[str], None]) -> list[RepoCase]:
    cases = []
    if not args.no_synth:
        path, key = synth_history.ensure(commits=args.commits, seed=args.seed, log=log)
        cases.append(RepoCase(f"synth-{args.commits}", path, "bench/synth_history.py", key))
    sources = [] if args.no_real else [p for p in REAL_REPOS if p.is_dir()]
    missing_real = [] if args.no_real else [p for p in REAL_REPOS if not p.is_dir()]
    for p in missing_real:
        log(f"note: {p} not present, skipped")
    seen: set[Path] = set()
    for src in [*sources, *args.repo]:
        src = src.resolve()
        if src in seen:
            continue
        seen.add(src)
        name = src.parent.name.split("+")[-1] if src.name == "repo" else src.name.removesuffix(".git")
        log(f"cloning {src} -> {WORK_ROOT / 'clones' / name}")
        cases.append(RepoCase(name, clone(src, name), str(src)))
    return cases


# ---------------------------------------------------------------------------------------------
# Sentra's rule set: what it is, how selective its keywords are, variants


def ruleset_info(rules_dir: Path | None = None) -> dict[str, Any]:
    from sentra_scan.ruleset import RuleSet

    rs = RuleSet.load(rules_dir)
    keywords = sorted({k for r in rs.rules for k in r.keywords})
    short = {r.id: [k for k in r.keywords if len(k) <= 2] for r in rs.rules}
    return {
        "rules_dir": str(rules_dir) if rules_dir else "default",
        "rules": len(rs.rules),
        "version": rs.version(),
        "keywords": len(keywords),
        "rules_with_keywords_of_2_chars_or_less": {k: v for k, v in short.items() if v},
    }


def sentra_at(rev: str | None) -> tuple[list[str], dict[str, str], str, Path | None]:
    """How to run Sentra: the installed console script, or (with a revision) the project's
    sentra_scan/ and rules/ at that commit, exported once under WORK_ROOT and run with
    `python -m sentra_scan`, so that edits in the working tree do not change a long run.
    Returns (argv prefix, environment additions, version label, rules dir or None)."""
    if not rev:
        compile_bytecode(ROOT)
        sentra = str(VENV_BIN / "sentra")
        return [sentra], {}, version_of([sentra, "--version"]), None
    sha = git_out(ROOT, "rev-parse", "--verify", f"{rev}^{{commit}}").strip()
    dest = WORK_ROOT / f"sentra-{sha[:12]}"
    if not (dest / "sentra_scan").is_dir():
        tmp = dest.with_name(dest.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        archive = subprocess.run(
            ["git", "archive", "--format=tar", sha, "sentra_scan", "rules"], cwd=ROOT, capture_output=True, check=True
        )
        subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive.stdout, check=True)
        tmp.rename(dest)
    compile_bytecode(dest)
    argv = [str(VENV_BIN / "python"), "-m", "sentra_scan"]
    env = {"PYTHONPATH": str(dest)}
    return argv, env, f"sentra at {sha[:12]}", dest / "rules"


def freeze_rules() -> Path:
    """A snapshot of the default rules (named by their version), for --freeze-rules."""
    from sentra_scan.ruleset import RuleSet, default_rules_dir

    src = default_rules_dir()
    dest = WORK_ROOT / f"rules-frozen-{RuleSet.load(src).version()}"
    if not dest.is_dir():
        tmp = dest.with_name(dest.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(src, tmp)
        tmp.rename(dest)
    return dest


def filtered_rules(min_len: int, source: Path | None = None) -> Path:
    """A copy of the default rules where keywords shorter than `min_len` are dropped (and
    rules left with none are dropped): what the keyword prefilter costs with such keywords."""
    import yaml

    from sentra_scan.ruleset import default_rules_dir

    dest = WORK_ROOT / f"rules-min-keyword-{min_len}"
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    for path in sorted((source or default_rules_dir()).glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        kept = []
        for rule in doc.get("rules") or []:
            kws = [k for k in rule.get("keywords") or [] if len(str(k)) >= min_len]
            if kws:
                kept.append({**rule, "keywords": kws})
        doc["rules"] = kept
        if kept:
            (dest / path.name).write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=1000))
    return dest


def keyword_selectivity(repo: Path, scope: Sequence[str], rules_dir: Path | None = None) -> dict[str, Any]:
    """Over Sentra's own `git log` stream: how many added lines carry a keyword of a rule that
    may run on any path (they pass the prefilter), and which keywords pass the most lines."""
    import ahocorasick

    from sentra_scan.ruleset import RuleSet
    from sentra_scan.sources.gitcmd import FIXED_CONFIG
    from sentra_scan.sources.history import LOG_ARGS

    rs = RuleSet.load(rules_dir)
    automaton = ahocorasick.Automaton()
    # As RuleSet.keyword_ends: rules limited to some paths are triggered by the path, not
    # by their keywords (and an older ruleset without that split gets every keyword).
    split = hasattr(rs, "path_trigger")
    for kw in {k for r in rs.rules if not (split and r.paths_include) for k in r.keywords}:
        automaton.add_word(kw, kw)
    automaton.make_automaton()
    proc = subprocess.Popen(
        ["git", *FIXED_CONFIG, *LOG_ARGS, *scope, "--"], cwd=repo, env=clean_env(), stdout=subprocess.PIPE
    )
    assert proc.stdout is not None
    added = with_kw = only_short = 0
    by_kw: dict[str, int] = {}
    for raw in proc.stdout:
        if not raw.startswith(b"+") or raw.startswith(b"+++ "):
            continue
        added += 1
        found = {kw for _, kw in automaton.iter(raw.lower().decode("latin-1"))}
        if not found:
            continue
        with_kw += 1
        if all(len(k) <= 2 for k in found):
            only_short += 1
        for kw in found:
            by_kw[kw] = by_kw.get(kw, 0) + 1
    proc.wait()
    top = sorted(by_kw.items(), key=lambda kv: -kv[1])[:12]
    return {
        "added_lines": added,
        "with_keyword": with_kw,
        "share": with_kw / added if added else None,
        "only_keywords_of_2_chars_or_less": only_short,
        "top_keywords_by_lines": top,
    }


# ---------------------------------------------------------------------------------------------
# Measuring


def measure_case(case: RepoCase, args: argparse.Namespace, log: Callable[[str], None]) -> None:
    scope = ["--all"] if args.all_refs else ["HEAD"]
    case.commits = int(git_out(case.path, "rev-list", "--count", *scope).strip())
    active = [t for t in case.tools if not t.missing]
    # Warm-up (and the run whose report is kept). The floor's output is counted once.
    for t in active:
        log(f"[{case.name}] warm-up: {t.label}")
        if t.before:
            t.before()
        stdout = t.stdout
        count_floor = t.key == "floor"
        if count_floor:
            stdout = Path(tempfile.mkstemp(prefix="bench-floor-", dir=WORK_ROOT)[1])
        timeout = args.slow_timeout if t.slow else args.timeout
        err = WORK_ROOT / "last-stderr.txt"
        r = run_timed(t.argv, t.cwd, t.env, stdout=stdout, stderr=err, timeout=timeout)
        if count_floor and stdout is not None:
            case.diff_mb = stdout.stat().st_size / MB
            stdout.unlink()
        t.warm = r
        if r.timed_out:
            t.error = f"timed out after {timeout:g}s"
        elif r.code not in t.ok_codes:
            t.error = f"exit {r.code}: " + err.read_text(errors="replace").strip()[-300:]
        elif t.parse and t.report and t.report.exists():
            try:
                t.hits = t.parse(t.report)
            except (ValueError, KeyError, TypeError) as exc:
                t.error = f"unreadable report: {exc}"
        if t.slow:
            t.runs.append(r)
    timed = [t for t in active if not t.slow and not t.error]
    # Sentra's two runs stay adjacent (#2 measures what #1 leaves behind).
    units: list[list[Tool]] = []
    for t in timed:
        if t.key == "sentra#2" and units and units[-1][0].key == "sentra#1":
            units[-1].append(t)
        else:
            units.append([t])
    for i in range(args.runs):
        log(f"[{case.name}] run {i + 1}/{args.runs}")
        k = i % len(units) if units else 0
        for unit in units[k:] + units[:k]:
            for t in unit:
                if t.before:
                    t.before()
                r = run_timed(t.argv, t.cwd, t.env, stdout=t.stdout, timeout=args.timeout)
                if r.timed_out or r.code not in t.ok_codes:
                    t.failed.append(r)  # kept out of the medians, counted in the report
                else:
                    t.runs.append(r)


def summarize(case: RepoCase, head_only: bool) -> dict[str, Any]:
    def med(t: Tool, attr: str) -> float | None:
        vals = [getattr(r, attr) for r in t.runs if not r.timed_out]
        return median(vals) if vals else None

    by_key = {t.key: t for t in case.tools}
    floor = by_key.get("floor")
    floor_s = med(floor, "wall") if floor and floor.runs else None
    sentra = by_key.get("sentra#1")
    sentra_s = med(sentra, "wall") if sentra and sentra.runs else None
    rows = []
    for t in case.tools:
        wall = med(t, "wall")
        row: dict[str, Any] = {
            "tool": t.key,
            "label": t.label,
            "version": t.version,
            "argv": t.argv,
            "status": t.missing or t.error or (f"{len(t.failed)} failed runs left out" if t.failed else "ok"),
            "runs": len(t.runs),
            "failed_runs": [{"code": r.code, "timed_out": r.timed_out, "wall": r.wall} for r in t.failed],
            "median_s": wall,
            "min_s": min((r.wall for r in t.runs), default=None),
            "cpu_s": med(t, "cpu"),
            "maxrss_mb": med(t, "maxrss_mb"),
            "tree_peak_mb": med(t, "tree_mb"),
            "own_peak_mb": med(t, "own_mb"),
            "tree_pss_mb": med(t, "pss_mb"),
            "x_floor": wall / floor_s if wall and floor_s else None,
            "peer_over_sentra": wall / sentra_s if wall and sentra_s and t.kind == "peer" else None,
            "findings": len(t.hits) if t.hits is not None else None,
        }
        if t.warm and t.warm.timed_out:
            row["median_s"] = None
            row["lower_bound_s"] = t.warm.wall
        if case.key and t.hits is not None:
            row["recall"] = recall(t.hits, case.key, head_only=head_only)
        rows.append(row)
    return {
        "repo": case.name,
        "source": case.source,
        "path": str(case.path),
        "commits": case.commits,
        "diff_mb": round(case.diff_mb, 1),
        "tools": rows,
    }


def fmt(x: float | None, spec: str = ".2f", none: str = "-") -> str:
    return none if x is None or x != x else format(x, spec)


def render(summary: dict[str, Any]) -> str:
    head = (
        f"{summary['repo']}: {summary['commits']} commits, {summary['diff_mb']} MB of `git log -p -U0` output"
        f" ({summary['source']})"
    )
    headers = [
        "tool",
        "median s",
        "min s",
        "cpu s",
        "x floor",
        "peer/sentra",
        "RSS MB",
        "own MB",
        "tree MB",
        "tree PSS",
        "findings",
        "recall",
    ]
    rows = []
    for r in summary["tools"]:
        if r["status"] != "ok" and not r["runs"]:
            rows.append([f"{r['label']}: {r['status']}", *[""] * (len(headers) - 1)])
            continue
        rec = r.get("recall")
        median_s = fmt(r["median_s"]) if r.get("lower_bound_s") is None else f">{fmt(r['lower_bound_s'], '.0f')}"
        rows.append(
            [
                r["label"] + (" (1 run)" if r["runs"] == 1 else ""),
                median_s,
                fmt(r["min_s"]),
                fmt(r["cpu_s"]),
                fmt(r["x_floor"]),
                fmt(r["peer_over_sentra"]),
                fmt(r["maxrss_mb"], ".0f"),
                fmt(r["own_peak_mb"], ".0f"),
                fmt(r["tree_peak_mb"], ".0f"),
                fmt(r.get("tree_pss_mb"), ".0f"),
                "-" if r["findings"] is None else str(r["findings"]),
                f"{rec['found']}/{rec['planted']}" + (f" +{rec['other_findings']}" if rec["other_findings"] else "")
                if rec
                else "",
            ]
        )
    widths = [max([len(h), *(len(str(row[i])) for row in rows)]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        first = str(cells[0]).ljust(widths[0])
        return "  ".join([first, *(str(c).rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))]).rstrip()

    out = [head, line(headers), line(["-" * w for w in widths])]
    out += [line(r) for r in rows]
    for r in summary["tools"]:
        if r["status"] not in ("ok",) and r["runs"]:
            out.append(f"  note: {r['label']}: {r['status']}")
        rec = r.get("recall")
        if rec and rec["missed"]:
            out.append(
                f"  {r['label']} missed: " + "; ".join(rec["missed"][:6]) + (" ..." if len(rec["missed"]) > 6 else "")
            )
    return "\n".join(out)


def targets(summaries: list[dict[str, Any]]) -> list[str]:
    """The issue's targets, per repository: met or not (information, never a failure)."""
    out = []
    for s in summaries:
        t = {r["tool"]: r for r in s["tools"]}
        se = t.get("sentra#1")
        if not se or se["median_s"] is None:
            continue
        parts = []
        if t.get("gitleaks", {}).get("median_s"):
            ratio = t["gitleaks"]["peer_over_sentra"]
            parts.append(f"vs gitleaks {ratio:.2f}x (target >=2: {'met' if ratio >= 2 else 'MISSED'})")
        if t.get("betterleaks", {}).get("median_s"):
            ratio = t["betterleaks"]["peer_over_sentra"]
            parts.append(f"vs betterleaks {ratio:.2f}x (target >=1: {'met' if ratio >= 1 else 'MISSED'})")
        if se["x_floor"]:
            parts.append(f"{se['x_floor']:.2f}x floor (target <=3: {'met' if se['x_floor'] <= 3 else 'MISSED'})")
        peak = se["tree_peak_mb"]
        pss = se.get("tree_pss_mb") or 0.0
        parts.append(
            f"peak {pss:.0f} MB tree PSS ({peak:.0f} MB summed RSS), {se['own_peak_mb']:.0f} MB sentra's own"
            f" process, {se['maxrss_mb']:.0f} MB largest process (target <300 MB at 100k commits)"
        )
        out.append(f"{s['repo']}: " + "; ".join(parts))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="timed runs per tool after one warm-up (default 3)")
    ap.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 2,000-commit synthetic history (no flask/pip unless --repo), 1 run",
    )
    ap.add_argument(
        "--commits", type=int, default=None, help="synthetic history size (default 20000; 2000 with --quick)"
    )
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-synth", action="store_true", help="skip the synthetic history")
    ap.add_argument("--no-real", action="store_true", help="skip the flask/pip mirrors")
    ap.add_argument("--repo", type=Path, action="append", default=[], help="another repository to audit (cloned)")
    ap.add_argument("--only", default="", help="comma-separated repository names to keep (e.g. pip,synth-20000)")
    ap.add_argument(
        "--sentra-at",
        metavar="REV",
        default=None,
        help="run Sentra as committed at REV (exported), not the working tree's editable install",
    )
    ap.add_argument(
        "--freeze-rules",
        action="store_true",
        help="copy the rules once and give Sentra that copy (--rules-dir): stable while rules/ is being edited",
    )
    ap.add_argument(
        "--tools", default=",".join(ALL_TOOLS), help=f"comma-separated subset of {','.join(ALL_TOOLS)} (or none)"
    )
    ap.add_argument("--all-refs", action="store_true", help="every ref instead of HEAD's ancestry")
    ap.add_argument("--no-record", action="store_true", help="SENTRA_NO_RECORD=1 (default: record with a bench key)")
    ap.add_argument("--peers", type=Path, default=DEFAULT_PEERS)
    ap.add_argument("--timeout", type=float, default=1800, help="per run, seconds")
    ap.add_argument("--slow-timeout", type=float, default=900, help="for the single truffleHog run, seconds")
    ap.add_argument("--json", type=Path, default=None, help="write the full results here ('-' for stdout)")
    ap.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="LABEL=RULES_DIR",
        help="also time `sentra audit --rules-dir RULES_DIR` (no state), labelled LABEL",
    )
    ap.add_argument(
        "--min-keyword",
        type=int,
        default=None,
        metavar="N",
        help="also time Sentra with the default rules minus keywords shorter than N characters",
    )
    ap.add_argument(
        "--keyword-stats", action="store_true", help="report how many added lines pass Sentra's keyword prefilter"
    )
    args = ap.parse_args(argv)
    if args.quick:
        args.commits = args.commits or 2000
        args.runs = 1 if args.runs == 3 else args.runs
        args.no_real = True  # --repo still adds repositories
    args.commits = args.commits or 20_000
    args.tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    args.tools = [] if args.tools == ["none"] else args.tools
    unknown = set(args.tools) - set(ALL_TOOLS)
    if unknown:
        ap.error(f"unknown tools: {', '.join(sorted(unknown))}")
    args.variants = []
    for v in args.variant:
        label, _, d = v.partition("=")
        if not d or not Path(d).is_dir():
            ap.error(f"--variant {v!r}: expected LABEL=RULES_DIR")
        args.variants.append((label, Path(d)))
    if args.min_keyword:
        args.variants.append((f"min-keyword-{args.min_keyword}", None))
    to_stdout = args.json is not None and str(args.json) == "-"

    def log(msg: str) -> None:
        print(msg, file=sys.stderr if to_stdout else sys.stdout, flush=True)

    WORK_ROOT.mkdir(parents=True, exist_ok=True)
    out_dir = WORK_ROOT / "reports"
    out_dir.mkdir(exist_ok=True)
    bins = peer_bins(args.peers)
    load_before = os.getloadavg()
    argv_prefix, env_extra, args.sentra_version, snapshot_rules = sentra_at(args.sentra_at)
    args.sentra = (argv_prefix, env_extra)
    args.rules_dir = freeze_rules() if args.freeze_rules else snapshot_rules
    if args.sentra_at:
        log(f"sentra: {args.sentra_version} (exported to {snapshot_rules.parent if snapshot_rules else '?'})")
    args.variants = [
        (label, d if d is not None else filtered_rules(args.min_keyword, args.rules_dir)) for label, d in args.variants
    ]
    cases = prepare_repos(args, log)
    if args.only:
        keep = {n.strip() for n in args.only.split(",")}
        cases = [c for c in cases if c.name in keep]
    for case in cases:
        case.tools = build_tools(case, args, bins, out_dir)
    summaries = []
    t0 = time.time()
    rules = {"default": ruleset_info(args.rules_dir)}
    for label, d in args.variants:
        rules[label] = ruleset_info(d)
    log(f"sentra rules: {rules['default']['rules']} rules, version {rules['default']['version']}")
    for case in cases:
        measure_case(case, args, log)
        s = summarize(case, head_only=not args.all_refs)
        summaries.append(s)
        log("\n" + render(s))
        write_json(args, {"partial": True, "sentra_rules": rules, "repos": summaries})
        if args.keyword_stats:
            scope = ["--all"] if args.all_refs else ["HEAD"]
            s["keyword_selectivity"] = {}
            for label, d in [("default", args.rules_dir), *args.variants]:
                try:
                    s["keyword_selectivity"][label] = keyword_selectivity(case.path, scope, d)
                except Exception as exc:  # the rules may be mid-edit: report, go on
                    log(f"  prefilter ({label} rules): not measured: {exc}")
        for label, ks in s.get("keyword_selectivity", {}).items():
            top = ", ".join(f"{k!r} {n}" for k, n in ks["top_keywords_by_lines"][:8])
            log(
                f"  prefilter ({label} rules): {ks['with_keyword']}/{ks['added_lines']} added lines carry a keyword"
                f" ({ks['share']:.0%}); {ks['only_keywords_of_2_chars_or_less']} only through keywords of <=2 chars;"
                f" top: {top}"
            )
        log("")
    lines = targets(summaries)
    if lines:
        log("Targets (ratios; nothing asserted):")
        for ln in lines:
            log("  " + ln)
    for s in summaries:
        ref = REFERENCE.get(s["repo"])
        if ref:
            log(f"  issue's reference figures for {s['repo']}: " + ", ".join(f"{k} {v} s" for k, v in ref.items()))
    env_info = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "git": version_of(["git", "--version"]),
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "elapsed_s": round(time.time() - t0, 1),
        "runs": args.runs,
        "scope": "all refs" if args.all_refs else "HEAD",
        "recording": not args.no_record,
        "sentra": args.sentra_version,
        "rules_dir": str(args.rules_dir) if args.rules_dir else "default",
    }
    log(
        f"load average before/after: {load_before[0]:.1f} / {env_info['loadavg_after'][0]:.1f} on {os.cpu_count()} CPUs"
    )
    write_json(args, {"environment": env_info, "sentra_rules": rules, "repos": summaries, "targets": lines})
    return 0


def write_json(args: argparse.Namespace, doc: dict[str, Any]) -> None:
    if not args.json:
        return
    text = json.dumps(doc, indent=1, default=str) + "\n"
    if str(args.json) == "-":
        if not doc.get("partial"):
            sys.stdout.write(text)
    else:
        args.json.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
