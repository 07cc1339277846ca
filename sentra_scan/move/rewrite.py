"""How a literal is rewritten in each kind of file: the file's language, the string
literal (or unquoted value) around a secret, the reference that replaces it, the import
that reference needs."""

from __future__ import annotations

import ast
import os
import re
from collections.abc import Callable
from dataclasses import dataclass

from sentra_scan.errors import UsageError

CODE = {"python", "js", "go", "ruby", "java"}
_EXT = {
    **dict.fromkeys((".py", ".pyw"), "python"),
    **dict.fromkeys((".js", ".mjs", ".cjs", ".jsx", ".ts", ".mts", ".cts", ".tsx"), "js"),
    ".go": "go",
    ".rb": "ruby",
    **dict.fromkeys((".java", ".kt", ".kts", ".groovy", ".scala"), "java"),
    **dict.fromkeys((".sh", ".bash", ".zsh", ".ksh"), "shell"),
    **dict.fromkeys((".yaml", ".yml"), "yaml"),
    ".json": "json",
    ".toml": "toml",
    **dict.fromkeys((".tf", ".tfvars", ".hcl"), "hcl"),
    ".env": "env",
}
_SHEBANG = {"python": "python", "node": "js", "ruby": "ruby", "sh": "shell", "bash": "shell", "zsh": "shell"}
# The comment that carries an inline `sentra:allow` (None: use the baseline instead).
COMMENT = {"python": "#", "ruby": "#", "shell": "#", "yaml": "#", "toml": "#", "env": "#", "hcl": "#"}
COMMENT.update(dict.fromkeys(("js", "go", "java"), "//"))


class MoveError(UsageError):
    """This finding cannot be moved automatically (the message says why; move it by hand)."""


def language(path: str, first_line: str = "") -> str:
    name = path.rsplit("/", 1)[-1]
    lower = name.lower()
    if lower.startswith(".env") or lower.endswith(".env"):
        return "env"
    if lower.startswith(("dockerfile", "containerfile")) or lower.endswith(".dockerfile"):
        return "docker"
    ext = os.path.splitext(lower)[1]
    if ext in _EXT:
        return _EXT[ext]
    if first_line.startswith("#!"):
        words = first_line[2:].replace("/", " ").split()
        for word in reversed(words):
            if word.rstrip("0123456789.") in _SHEBANG:
                return _SHEBANG[word.rstrip("0123456789.")]
    return "config"


@dataclass(frozen=True)
class Literal:
    start: int  # the span of the line to replace (quotes and string prefix included)
    end: int
    value: str
    quote: str  # "" for an unquoted value
    prefix: str = ""  # Python string prefix (r, b, f, …)


def _quotes(lang: str) -> str:
    return {"js": "'\"`", "go": '"`', "java": '"', "json": '"', "hcl": '"', "docker": "'\""}.get(lang, "'\"")


def _comment_at(line: str, i: int, lang: str) -> bool:
    if lang in ("js", "go", "java") and line.startswith("//", i):
        return True
    if COMMENT.get(lang) == "#" and line[i] == "#":
        return lang in ("python", "ruby", "toml", "hcl") or i == 0 or line[i - 1] in " \t"
    return False


def strings(line: str, lang: str) -> list[tuple[int, int, str]]:
    """The quoted strings of a line as (start, end, quote); end -1 when not closed here."""
    out: list[tuple[int, int, str]] = []
    i = 0
    while i < len(line):
        c = line[i]
        if _comment_at(line, i, lang):
            break
        token_start = i == 0 or line[i - 1] in " \t=:[{,(-"
        if c not in _quotes(lang) or (lang in ("yaml", "env") and not token_start):
            i += 1
            continue
        q = c * 3 if lang in ("python", "toml") and line.startswith(c * 3, i) else c
        escapes = not (q == "'" and lang in ("shell", "yaml", "env", "toml")) and q != "`" and len(q) == 1
        j = i + len(q)
        while j < len(line) and not (line.startswith(q, j) and not (lang == "yaml" and line.startswith("''", j))):
            j += 2 if (escapes and line[j] == "\\") or (lang == "yaml" and line.startswith("''", j)) else 1
        if j >= len(line):
            out.append((i, -1, q))
            break
        out.append((i, j + len(q), q))
        i = j + len(q)
    return out


def _unescape(raw: str, lit: str, lang: str, prefix: str) -> str:
    """The runtime value of a literal's content (escapes decoded where they mean something)."""
    if "\\" not in raw or "r" in prefix.lower() or lang not in ("python", "json", "js", "go", "java", "hcl"):
        return raw
    try:
        if lang == "python":
            value = ast.literal_eval(prefix + lit)
            return value.decode() if isinstance(value, bytes) else str(value)
        import json

        if lit[0] == "'":
            raw = raw.replace("\\'", "'").replace('"', '\\"')
        return str(json.loads(f'"{raw}"'))
    except (ValueError, SyntaxError, UnicodeDecodeError):
        raise MoveError("cannot decode the escapes in this string; move it by hand") from None


def find_literal(line: str, start: int, end: int, lang: str) -> Literal:
    """The string literal (or unquoted value) that holds line[start:end]."""
    for s, e, q in strings(line, lang):
        if s <= start and (e < 0 or end <= e):
            if e < 0:
                raise MoveError("the secret is in a string that goes on past this line; move it by hand")
            prefix = ""
            if lang == "python":
                m = re.search(r"(?<![\w])[rRbBuUfF]{1,2}$", line[:s])
                prefix = m.group(0) if m else ""
                if "f" in prefix.lower() and "{" in line[s:e]:
                    raise MoveError("the secret is in an f-string with expressions; move it by hand")
            raw = line[s + len(q) : e - len(q)]
            value = _unescape(raw, line[s:e], lang, prefix)
            return Literal(s - len(prefix), e, value, q, prefix)
        if s > start:
            break
    if lang in CODE:
        raise MoveError("the secret is not inside a string literal on this line; move it by hand")
    return _bare_value(line, start, end, lang)


def _bare_value(line: str, start: int, end: int, lang: str) -> Literal:
    """An unquoted value: `KEY=value` (.env, shell, Dockerfile), `key: value` (YAML)."""
    left = start
    stops = " \t=\"'" if lang in ("env", "shell", "docker") else " \t\"'[{,"
    m = re.match(r"\s*(?:export\s+|ENV\s+|ARG\s+)?[A-Za-z_][\w.]*\s*=", line)
    if lang in ("env", "shell", "docker") and m and m.end() <= start:
        left = m.end()
    else:
        while left > 0 and line[left - 1] not in stops:
            left -= 1
    right = end
    ends = " \t;\"'" + (",]}" if lang == "yaml" else "") + ("|&)" if lang == "shell" else "")
    while right < len(line) and line[right] not in ends:
        right += 1
    return Literal(left, right, line[left:right], "")


def reference(lang: str, name: str, lit: Literal) -> str:
    """What replaces the literal: an environment lookup in code, else a string reference."""
    if lang == "python":
        return f'os.environb[b"{name}"]' if "b" in lit.prefix.lower() else f'os.environ["{name}"]'
    code = {"js": "process.env.{}", "go": 'os.Getenv("{}")', "ruby": 'ENV.fetch("{}")', "java": 'System.getenv("{}")'}
    if lang in code:
        return code[lang].format(name)
    if lang == "shell":
        return f'"${{{name}}}"'
    if lang in ("env", "docker"):
        return f'"${{{name}}}"' if lit.quote == '"' else f"${{{name}}}"
    quote = lit.quote if lit.quote in ('"', "'") else '"' if lit.quote else ""
    return f"{quote}sentra://env/{name}{quote}"


# --- imports a reference needs ------------------------------------------------------------


def split_lines(text: str) -> list[str]:
    """Lines with their endings, split on \\n only (as git numbers them)."""
    parts = text.split("\n")
    return [p + "\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def _eol(text: str) -> str:
    return "\r\n" if "\r\n" in text else "\n"


def ensure_import(text: str, lang: str) -> str:
    """Add `import os` (Python) or the "os" package (Go) when the file lacks it."""
    lines = split_lines(text)
    eol = _eol(text)
    if lang == "python":
        if re.search(r"^import\s+(?:[\w.]+\s*,\s*)*os(?:\.[\w.]+)?\s*(?:,|#|$)", text, re.M):
            return text
        at = _python_import_line(text, lines)
        if at > 0 and not lines[at - 1].endswith(("\n", "\r")):
            lines[at - 1] += eol
        return "".join([*lines[:at], f"import os{eol}", *lines[at:]])
    if lang == "go" and not re.search(r'^\s*(?:import\s+)?(?:\w+\s+)?"os"\s*$', text, re.M):
        for i, line in enumerate(lines):
            if re.match(r"import\s*\(", line):
                return "".join([*lines[: i + 1], f'\t"os"{eol}', *lines[i + 1 :]])
        for i, line in enumerate(lines):
            if line.startswith("package "):
                return "".join([*lines[: i + 1], f'{eol}import "os"{eol}', *lines[i + 1 :]])
    return text


def _python_import_line(text: str, lines: list[str]) -> int:
    """After the module docstring and `from __future__` imports; else after the leading
    comments (shebang, encoding line)."""
    try:
        body = ast.parse(text).body
    except SyntaxError:
        body = []
    at = 0
    first = body[0] if body else None
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        at = first.end_lineno or 0
    for node in body[1:] if at else body:
        if not (isinstance(node, ast.ImportFrom) and node.module == "__future__"):
            break
        at = node.end_lineno or at
    if at == 0:
        while at < len(lines) and (not lines[at].strip() or lines[at].lstrip().startswith("#")):
            at += 1
    return at


def still_parses(lang: str, before: str, after: str) -> bool:
    """False when a rewrite broke a file that parsed before (Python, JSON, YAML, TOML)."""
    check = _PARSERS.get(lang)
    if check is None:
        return True
    try:
        check(before)
    except Exception:
        return True
    try:
        check(after)
    except Exception:
        return False
    return True


def _yaml(text: str) -> None:
    import yaml

    list(yaml.safe_load_all(text))


def _toml(text: str) -> None:
    import tomllib

    tomllib.loads(text)


def _json(text: str) -> None:
    import json

    json.loads(text)


_PARSERS: dict[str, Callable[[str], object]] = {"python": ast.parse, "json": _json, "yaml": _yaml, "toml": _toml}
