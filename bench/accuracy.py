"""Detection accuracy on the leaky-repo corpus, Sentra beside the peers, in one run.

Clones `../shared/corpora/leaky-repo.bundle` (Plazmaz/leaky-repo, every secret fake) into a
temporary directory and runs every tool on that clone in its native modes:

    sentra         `sentra scan . --format json --all-occurrences` (working tree) and
                   `sentra audit --all-occurrences --format json --no-record` (every commit)
    gitleaks       `gitleaks dir .` and `gitleaks git .` (8.30, default rules)
    betterleaks    `betterleaks fs .` and `betterleaks git .` (default rules)
    detect-secrets `detect-secrets scan` (working tree; it has no history mode)

Scoring follows the corpus's own key (`.leaky-meta/secrets.csv`) and `.leaky-meta/benchmark.py`:
per listed file, a tool's distinct finding lines count up to the file's total (risk +
informative), anything beyond counts as a false positive, and findings in files not listed
are ignored. A history finding counts at the line of the tip's file that holds the same
value (the nearest one if several do); one whose value is no longer in the file is listed as
"history only" and not scored (the key describes the tip). A multi-line block (a private key)
is one unit: any finding inside it finds it once.

Two views: all 175 key lines (the benchmark's own count) and the 96 risk lines. The key
gives counts, not lines; the risk view places them with the labels the corpus's files carry
(their "# Risk" / "# Informative" comments and the comments in secrets.csv). Where a file's
labels disagree with its CSV row (six files: the two FileZilla files, .env, .esmtprc,
deployment-config.json, .ftpconfig), the risk count falls back to the benchmark's rule: the
file's key lines found, up to its risk count.

A third view counts Sentra's account context too: the lines a finding names as its record's
user, host, database or remote directory, or as the record's own times and use count
(`context` in the JSON report), count as found, and those the key does not list count beyond
it. They are not findings (they never fail a scan); peers report none, so their figures are
the same in that view. The first two views ignore context.

    .venv/bin/python bench/accuracy.py [--bundle PATH] [--peers /tmp/peers] [--tools sentra,gitleaks,...]
                                       [--per-file] [--json FILE] [--keep DIR]

Peers come from /work/shared/tools/peers-setup.sh; a missing one is "not installed". Nothing is
asserted: this is a measurement (tests/test_corpus.py holds the thresholds on generated data).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, VENV_BIN, clean_env, table, tool_version

DEFAULT_BUNDLE = ROOT.parent / "shared" / "corpora" / "leaky-repo.bundle"
DEFAULT_PEERS = Path(os.environ.get("SENTRA_PEERS", "/tmp/peers"))
ALL_TOOLS = ("sentra", "gitleaks", "betterleaks", "detect-secrets")

# ---------------------------------------------------------------------------------------------
# The line-level key. A unit is a line number or an inclusive (first, last) block. Files whose
# labels agree with their CSV row list (risk units, informative units); the six whose labels
# disagree list None for risk and all their key units as informative.

Unit = int | tuple[int, int]
LOGIN_INFO = [n + 16 * k for k in range(4) for n in (6, 15, 16, 17, 18)]
LINE_KEY: dict[str, tuple[list[Unit] | None, list[Unit]]] = {
    ".bash_profile": ([12, 20, 21, 22, 23, 24], [11, 18, 19, 25, 26]),
    ".bashrc": ([105, 106, 109], [104, 107, 108]),
    ".docker/.dockercfg": ([4, 8], [3, 7]),
    ".docker/config.json": ([5, 9], [4, 8]),
    ".mozilla/firefox/logins.json": ([11, 12, 27, 28, 43, 44, 59, 60], LOGIN_INFO),
    ".ssh/id_rsa": ([(1, 27)], []),
    ".ssh/id_rsa.pub": ([], [1]),
    "cloud/.credentials": ([4, 7], [3, 6]),
    "cloud/.s3cfg": ([1], [2, 4]),
    "cloud/.tugboat": ([4], [3, 6]),
    "cloud/heroku.json": ([4], [3]),
    "db/dump.sql": (list(range(32, 42)), []),
    "db/mongoid.yml": ([4], []),
    "etc/shadow": ([20], []),
    "filezilla/recentservers.xml": (None, [6, 11, 13, 23, 28, 30]),  # labels: 2 risk, 4 informative
    "filezilla/filezilla.xml": (None, [6, 11, 13]),  # labels: 1 risk, 2 informative
    "high-entropy-misc.txt": ([], [1, 2]),
    "misc-keys/cert-key.pem": ([(1, 28)], []),
    "misc-keys/putty-example.ppk": ([(11, 26)], [(4, 10)]),
    "proftpdpasswd": ([1], []),
    "web/ruby/config/master.key": ([1], []),
    "web/ruby/secrets.yml": ([14, 17, 22], []),
    "web/var/www/.env": (None, [5, 8, 10, 12, 14, 21, 23, 28, 31, 33]),  # labels: 4 risk, 6 informative
    ".npmrc": ([7, 9], [5]),
    "web/var/www/public_html/wp-config.php": ([20, 33, 35, 37, 39, 41, 43, 45, 47], [16, 18, 22]),
    "web/var/www/public_html/.htpasswd": ([1], []),
    ".git-credentials": ([1], []),
    "db/robomongo.json": ([14, 22, 27], [13, 18, 21, 26]),
    "web/js/salesforce.js": ([7], []),
    ".netrc": ([1, 2], []),
    "hub": ([4], [3]),
    "config": ([10], [3, 5, 8]),
    "db/.pgpass": ([2], []),
    "ventrilo_srv.ini": ([7, 8], []),
    "web/var/www/public_html/config.php": ([11], [4, 7, 9]),
    "db/dbeaver-data-sources.xml": ([4], []),
    ".esmtprc": (None, [2, 3, 4]),  # labels: 1 risk (password), 2 informative
    "web/django/settings.py": ([24], []),
    "deployment-config.json": (None, [3, 4, 5, 7]),  # labels: 1 risk, 3 informative
    ".ftpconfig": (None, [3, 5, 6, 8, 12]),  # labels: 2 risk, 3 informative
    ".remote-sync.json": ([17], [9, 16]),
    ".vscode/sftp.json": ([6], [3, 4, 5]),
    "sftp-config.json": ([15], [13, 14, 18]),
    ".idea/WebServers.xml": ([6], [5]),
}


@dataclass(frozen=True)
class KeyFile:
    path: str
    risk: int
    informative: int
    risk_units: list[Unit] | None
    units: list[Unit]

    @property
    def total(self) -> int:
        return self.risk + self.informative


def _span(unit: Unit) -> tuple[int, int]:
    return (unit, unit) if isinstance(unit, int) else unit


def load_key(clone: Path) -> dict[str, KeyFile]:
    """secrets.csv's counts joined with LINE_KEY; the two must agree."""
    rows = [
        line
        for line in (clone / ".leaky-meta" / "secrets.csv").read_text("utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    key: dict[str, KeyFile] = {}
    for name, risk, info in csv.reader(rows):
        risk_units, info_units = LINE_KEY[name]
        units = (risk_units or []) + info_units
        if len(units) != int(risk) + int(info) or (risk_units is not None and len(risk_units) != int(risk)):
            raise SystemExit(f"line key for {name} disagrees with secrets.csv ({risk},{info})")
        key[name] = KeyFile(name, int(risk), int(info), risk_units, units)
    if set(key) != set(LINE_KEY):
        raise SystemExit(f"line key and secrets.csv list different files: {sorted(set(key) ^ set(LINE_KEY))}")
    return key


# ---------------------------------------------------------------------------------------------
# Findings


@dataclass(frozen=True)
class Hit:
    path: str
    line: int
    value: str | None  # the secret, when the tool reports it or it can be read back
    commit: str | None  # None: found in the working tree
    context: bool = False  # an account context line of a finding (Sentra), not a finding


@dataclass
class ToolResult:
    name: str
    version: str = ""
    missing: str = ""
    modes: list[str] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _run(argv: list[str], cwd: Path, env: dict[str, str], out: Path | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=600)
    if out is not None and not out.exists():
        raise RuntimeError(f"{' '.join(argv[:3])}: no report (exit {proc.returncode}): {proc.stderr.strip()[-300:]}")
    return proc


def _norm(path: str, clone: Path) -> str:
    if path.startswith(str(clone) + "/"):
        path = path[len(str(clone)) + 1 :]
    return path.removeprefix("./")


def _blob_line(clone: Path, commit: str, path: str, line: int, cache: dict[tuple[str, str], list[str]]) -> str:
    lines = cache.get((commit, path))
    if lines is None:
        proc = subprocess.run(["git", "show", f"{commit}:{path}"], cwd=clone, capture_output=True, check=False)
        lines = proc.stdout.decode("utf-8", "replace").split("\n") if proc.returncode == 0 else []
        cache[(commit, path)] = lines
    return lines[line - 1] if 0 < line <= len(lines) else ""


def run_sentra(clone: Path, work: Path) -> ToolResult:
    exe = VENV_BIN / "sentra"
    res = ToolResult("sentra", tool_version([str(exe), "--version"]).split()[-1])
    env = clean_env({"SENTRA_CACHE_DIR": str(work / "sentra-cache"), "HOME": str(work / "home")})
    (work / "home").mkdir(exist_ok=True)
    tree, hist = work / "sentra-scan.json", work / "sentra-audit.json"
    _run([str(exe), "scan", ".", "--format", "json", "--all-occurrences", "-o", str(tree)], clone, env, tree)
    _run([str(exe), "audit", "--all-occurrences", "--format", "json", "--no-record", "-o", str(hist)], clone, env, hist)
    res.modes = ["scan (tree)", "audit (history)"]
    for f in json.loads(tree.read_text())["findings"]:
        res.hits.append(Hit(f["path"], f["line"], None, None))
        res.hits.extend(Hit(f["path"], c["line"], None, None, context=True) for c in f.get("context", ()))
    blobs: dict[tuple[str, str], list[str]] = {}
    for f in json.loads(hist.read_text())["findings"]:
        commit = f["commit"]["id"] if isinstance(f["commit"], dict) else f["commit"]
        # The report masks the secret; read it back from the blob at the reported columns.
        text = _blob_line(clone, commit, f["path"], f["line"], blobs)
        value = text[f["column"] - 1 : f["end_column"] - 1] or None
        res.hits.append(Hit(f["path"], f["line"], value, commit))
        # Context values are in clear (never secrets): placed at the tip like a finding's value.
        res.hits.extend(Hit(f["path"], c["line"], c["value"], commit, context=True) for c in f.get("context", ()))
    return res


def _leaks_hits(report: Path, clone: Path, *, history: bool) -> list[Hit]:
    data = json.loads(report.read_text() or "[]")
    out = []
    if isinstance(data, dict):  # betterleaks: {"findings": [{"match": ..., "location": ...}]}
        for f in data.get("findings") or []:
            loc, attrs = f["location"], f.get("attributes") or {}
            commit = attrs.get("git.sha") if history else None
            out.append(Hit(_norm(loc["path"], clone), loc["start_line"], f["match"].get("value"), commit))
    else:  # gitleaks: [{"File", "StartLine", "Secret", "Commit"}]
        for f in data:
            commit = f.get("Commit") if history else None
            out.append(Hit(_norm(f["File"], clone), f["StartLine"], f.get("Secret"), commit or None))
    return out


def run_gitleaks_like(name: str, exe: Path | None, clone: Path, work: Path) -> ToolResult:
    if exe is None:
        return ToolResult(name, missing="not installed")
    res = ToolResult(name, tool_version([str(exe), "version"]))
    env = clean_env({"HOME": str(work / "home")})
    (work / "home").mkdir(exist_ok=True)
    tree_mode = "dir" if name == "gitleaks" else "fs"
    for mode, history in ((tree_mode, False), ("git", True)):
        report = work / f"{name}-{mode}.json"
        if name == "gitleaks":
            argv = [
                str(exe),
                mode,
                ".",
                "-f",
                "json",
                "-r",
                str(report),
                "--no-banner",
                "-l",
                "error",
                "--exit-code",
                "0",
            ]
        else:
            argv = [str(exe), mode, ".", "-o", str(report), "-s", "-l", "error", "--exit-code", "0"]
        try:
            _run(argv, clone, env, report)
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            res.errors.append(str(exc))
            continue
        res.modes.append(f"{mode} ({'history' if history else 'tree'})")
        res.hits.extend(_leaks_hits(report, clone, history=history))
    return res


def run_detect_secrets(exe: Path | None, clone: Path, work: Path) -> ToolResult:
    if exe is None:
        return ToolResult("detect-secrets", missing="not installed")
    res = ToolResult("detect-secrets", tool_version([str(exe), "--version"]))
    env = clean_env({"HOME": str(work / "home")})
    proc = _run([str(exe), "scan"], clone, env)
    res.modes = ["scan (tree; no history mode)"]
    try:
        results = json.loads(proc.stdout)["results"]
    except (ValueError, KeyError):
        res.errors.append(f"detect-secrets scan: unreadable output (exit {proc.returncode})")
        return res
    for path, items in results.items():
        res.hits.extend(Hit(_norm(path, clone), item["line_number"], None, None) for item in items)
    return res


# ---------------------------------------------------------------------------------------------
# Scoring


@dataclass
class FileScore:
    path: str
    total: int
    risk_total: int
    lines: int = 0  # distinct units/lines found
    found: int = 0
    risk_found: int = 0
    fp: int = 0
    history_only: int = 0


@dataclass
class Score:
    tool: str
    files: dict[str, FileScore]
    ignored: int  # findings in files the key does not list

    def totals(self) -> dict[str, int]:
        fs = self.files.values()
        return {
            "found": sum(f.found for f in fs),
            "total": sum(f.total for f in fs),
            "risk_found": sum(f.risk_found for f in fs),
            "risk_total": sum(f.risk_total for f in fs),
            "false_positives": sum(f.fp for f in fs),
            "files_covered": sum(1 for f in fs if f.lines),
            "files": len(self.files),
            "history_only": sum(f.history_only for f in fs),
            "ignored": self.ignored,
        }


def _tip_line(lines: list[str], hit: Hit) -> int | None:
    """The tip line holding a history finding's value, nearest its old line."""
    if not hit.value:
        return None
    needle = hit.value.split("\n", 1)[0].strip()
    if not needle:
        return None
    where = [i + 1 for i, text in enumerate(lines) if needle in text]
    return min(where, key=lambda n: (abs(n - hit.line), n)) if where else None


def score(result: ToolResult, key: dict[str, KeyFile], clone: Path, *, context: bool = False) -> Score:
    """The tool's score; with `context`, Sentra's account context lines (the user and host of a
    reported credential) count as found lines too, and those outside the key as beyond it."""
    tips: dict[str, list[str]] = {}
    per_file: dict[str, set[int]] = {name: set() for name in key}
    history_only: dict[str, set[str]] = {name: set() for name in key}
    ignored = 0
    for hit in result.hits:
        if hit.context and not context:
            continue
        if hit.path not in key:
            ignored += 1
            continue
        if hit.commit is None:
            per_file[hit.path].add(hit.line)
            continue
        if hit.path not in tips:
            tips[hit.path] = (clone / hit.path).read_text("utf-8", "replace").split("\n")
        line = _tip_line(tips[hit.path], hit)
        if line is None:
            history_only[hit.path].add(hit.value or f"{hit.commit}:{hit.line}")
        else:
            per_file[hit.path].add(line)
    files = {}
    for name, kf in key.items():
        fs = FileScore(name, kf.total, kf.risk, history_only=len(history_only[name]))
        hit_units: set[int] = set()
        outside = 0
        for line in per_file[name]:
            idx = next((i for i, u in enumerate(kf.units) if _span(u)[0] <= line <= _span(u)[1]), None)
            if idx is None:
                outside += 1
            else:
                hit_units.add(idx)
        fs.lines = len(hit_units) + outside
        fs.found = min(fs.lines, kf.total)
        fs.fp = max(0, fs.lines - kf.total)
        if kf.risk_units is None:  # labels disagree with the CSV: the benchmark's count
            fs.risk_found = min(kf.risk, len(hit_units))
        else:
            fs.risk_found = sum(1 for i in hit_units if i < len(kf.risk_units))
        files[name] = fs
    return Score(result.name, files, ignored)


# ---------------------------------------------------------------------------------------------
# Output


def _pct(a: int, b: int) -> str:
    return f"{100 * a / b:.0f}%" if b else "-"


def summary_table(results: list[ToolResult], scores: dict[str, Score], with_context: dict[str, Score]) -> str:
    rows: list[list[object]] = []
    for r in results:
        if r.missing:
            rows.append([r.name, "not installed", "", "", "", "", "", "", "", "", ""])
            continue
        t, c = scores[r.name].totals(), with_context[r.name].totals()
        rows.append(
            [
                f"{r.name} {r.version}".strip(),
                f"{t['risk_found']}/{t['risk_total']} ({_pct(t['risk_found'], t['risk_total'])})",
                f"{t['found']}/{t['total']} ({_pct(t['found'], t['total'])})",
                t["false_positives"],
                f"{t['files_covered']}/{t['files']}",
                t["history_only"],
                t["ignored"],
                f"{c['risk_found']}/{c['risk_total']} ({_pct(c['risk_found'], c['risk_total'])})",
                f"{c['found']}/{c['total']} ({_pct(c['found'], c['total'])})",
                c["false_positives"],
                ", ".join(r.modes) + (f"; errors: {len(r.errors)}" if r.errors else ""),
            ]
        )
    headers = ["tool", "risk lines", "all lines", "beyond key", "files", "history only", "off-key"]
    headers += ["risk w/ context", "all w/ context", "beyond key w/ context", "modes"]
    note = (
        "w/ context: account context lines (the user, host, database, remote directory and record times of a"
        " reported credential)\n  counted as found too; they are not findings (they never fail a scan); outside"
        " the key they count as beyond it. Peers report no context."
    )
    return table(headers, rows, "lrrrrrrrrrl") + "\n" + note


def per_file_table(
    key: dict[str, KeyFile], results: list[ToolResult], scores: dict[str, Score], with_context: dict[str, Score]
) -> str:
    present = [r for r in results if not r.missing]
    columns = [(r.name, scores[r.name]) for r in present]
    if "sentra" in with_context:
        columns.insert(1 if columns and columns[0][0] == "sentra" else 0, ("sentra w/ context", with_context["sentra"]))
    headers = ["file", "key (risk+inf)"] + [name for name, _ in columns]
    rows: list[list[object]] = []
    for name, kf in sorted(key.items()):
        row: list[object] = [name, f"{kf.total} ({kf.risk}+{kf.informative})"]
        for _, sc in columns:
            fs = sc.files[name]
            cell = f"{fs.found} r{fs.risk_found}"
            if fs.fp:
                cell += f" +{fs.fp}"
            row.append(cell)
        rows.append(row)
    note = "cells: lines found (up to the file's total), r = risk lines found, +N = findings beyond the key"
    note += "\n       (w/ context: + lines beyond the key include account context lines the key does not list)"
    return table(headers, rows, "lr" + "r" * len(columns)) + "\n" + note


def missed(key: dict[str, KeyFile], score_: Score) -> list[str]:
    """The files where a tool found fewer risk lines than the key holds (for the README)."""
    out = []
    for name, kf in sorted(key.items()):
        fs = score_.files[name]
        if fs.risk_found < kf.risk:
            out.append(f"{name}: {fs.risk_found}/{kf.risk} risk")
    return out


# ---------------------------------------------------------------------------------------------


def _exe(*cands: Path) -> Path | None:
    return next((c for c in cands if c.is_file() and os.access(c, os.X_OK)), None)


def main(argv: Iterable[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", type=Path, default=DEFAULT_BUNDLE)
    ap.add_argument("--peers", type=Path, default=DEFAULT_PEERS)
    ap.add_argument("--tools", default=",".join(ALL_TOOLS), help=f"comma-separated subset of {','.join(ALL_TOOLS)}")
    ap.add_argument("--per-file", action="store_true", help="also print the per-file table")
    ap.add_argument("--missed", action="store_true", help="list Sentra's files with risk lines not found")
    ap.add_argument("--json", type=Path, default=None, help="write the scores here ('-' for stdout)")
    ap.add_argument("--keep", type=Path, default=None, help="work here and keep the clone and the reports")
    args = ap.parse_args(list(argv) if argv is not None else None)
    tools = [t for t in args.tools.split(",") if t]
    unknown = set(tools) - set(ALL_TOOLS)
    if unknown:
        ap.error(f"unknown tools: {', '.join(sorted(unknown))}")
    if not args.bundle.is_file():
        ap.error(f"no bundle at {args.bundle}")

    work = args.keep or Path(tempfile.mkdtemp(prefix="sentra-accuracy-"))
    work.mkdir(parents=True, exist_ok=True)
    clone = work / "leaky-repo"
    try:
        if clone.exists():
            shutil.rmtree(clone)
        subprocess.run(["git", "clone", "-q", str(args.bundle), str(clone)], env=clean_env(), check=True)
        key = load_key(clone)
        runners: dict[str, Callable[[], ToolResult]] = {
            "sentra": lambda: run_sentra(clone, work),
            "gitleaks": lambda: run_gitleaks_like(
                "gitleaks", _exe(args.peers / "bin" / "gitleaks", args.peers / "venv" / "bin" / "gitleaks"), clone, work
            ),
            "betterleaks": lambda: run_gitleaks_like(
                "betterleaks", _exe(args.peers / "bin" / "betterleaks"), clone, work
            ),
            "detect-secrets": lambda: run_detect_secrets(
                _exe(args.peers / "venv" / "bin" / "detect-secrets"), clone, work
            ),
        }
        results = [runners[t]() for t in tools]
        scores = {r.name: score(r, key, clone) for r in results if not r.missing}
        with_context = {r.name: score(r, key, clone, context=True) for r in results if not r.missing}
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)

    print(f"leaky-repo ({args.bundle.name}): {len(key)} files in the key, ", end="")
    print(f"{sum(k.risk for k in key.values())} risk + {sum(k.informative for k in key.values())} informative lines")
    print()
    print(summary_table(results, scores, with_context))
    for r in results:
        for err in r.errors:
            print(f"  {r.name}: {err}")
    if args.per_file:
        print()
        print(per_file_table(key, results, scores, with_context))
    if args.missed and "sentra" in scores:
        print()
        print("sentra, risk lines not found:")
        for line in missed(key, scores["sentra"]):
            print(f"  {line}")
    if args.json:
        data: dict[str, Any] = {
            "tools": {
                r.name: {"version": r.version, "missing": r.missing, "modes": r.modes, "errors": r.errors}
                | ({"totals": scores[r.name].totals()} if r.name in scores else {})
                | ({"totals_with_context": with_context[r.name].totals()} if r.name in scores else {})
                | ({"files": {n: vars(f) for n, f in scores[r.name].files.items()}} if r.name in scores else {})
                for r in results
            }
        }
        text = json.dumps(data, indent=2)
        if str(args.json) == "-":
            print(text)
        else:
            args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
