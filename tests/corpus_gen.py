"""A labelled corpus, generated at test time from a fixed seed: realistic fake secrets for
every rule and hard negatives for every filter, each in a file of its own.

Positives come from each rule's own `match` example templates (no token is ever written to
the repository), placed two ways:

- native: the example in a file at its own path, between a few ordinary lines of that file's
  language (comments and code), so that a rule must find it inside a real file;
- transplanted: for single-line examples of rules that run on every path, the same kind of
  value bound to the same name, spelled the local way, in 20 languages and formats (CONTEXTS:
  Python, JavaScript, Go, Java, C#, Kotlin, Ruby, PHP, shell, .env, YAML, docker-compose,
  GitHub Actions, JSON, TOML, Terraform, .properties...), the way the secret would also be
  written; and a bare token format inside a line of minified code.

The label of a positive is where the template's holes landed (the random material), widened
to the whole token around them: a finding counts when it overlaps it. A sample whose holes
span several lines (a private key) counts a finding on any of its lines.

Negatives, where any finding is a false positive:

- masked examples: every rule's match templates with each hole filled with x's (what
  documentation and `.env.example` files hold);
- placeholders and references: YOUR_KEY, xxxx, <token>, ${VAR}, {{ var }}, %(x)s,
  os.environ[...], process.env.X, changeme, the AWS documentation keys;
- placeholder words (admin, dummy-pass, password) in code, documentation and example files
  (.env.example, wp-config-sample.php, docs/), and templates in credential files (.pgpass,
  .netrc, FileZilla, DBeaver, .env, shell profiles), where the words would be kept;
- shapes that are not secrets: lock-file integrity hashes, UUIDs, git SHAs, hex colours,
  base64 data: images, minified code, public keys and certificates;
- ordinary code around every sample.

Weak credentials are positives too: placeholder words in a credential file (.pgpass,
FileZilla, DBeaver...), which its rule reports as it is, or in a .env, a shell profile or
wp-config.php, reported at severity low (the rules' `placeholders` switch).

A rule's `no-match` examples are negatives for that rule only (other rules may match them:
`sentra rules test` holds the same contract).
"""

from __future__ import annotations

import base64
import random
import re
import string
from collections.abc import Iterator
from dataclasses import dataclass, field

from sentra_scan.ruleset import Rule
from sentra_scan.ruleset.examples import expand

SEED = "sentra-corpus-v1"
_HOLE = re.compile(r"\{\{(.*?)\}\}")
# Characters that end a token (the label widens a hole up to these).
_STOP_RIGHT = frozenset(" \t\n\"'`<>()[]{},;|\\")
_STOP_LEFT = _STOP_RIGHT | frozenset("=")


@dataclass(frozen=True)
class Span:
    line: int  # 1-based line in the file
    start: int  # 0-based columns, end exclusive
    end: int


@dataclass(frozen=True)
class Sample:
    """One file of the corpus and what it holds."""

    path: str
    text: str
    kind: str  # "native", "transplant", "masked", "negative", "no-match"
    rule_id: str | None  # the rule the sample was made for (None: a filter's hard negative)
    label: tuple[Span, ...] = ()  # where the secret is (positives only)
    region: tuple[int, int] = (0, 0)  # first and last line of the sample's own text (positives)
    multiline: bool = False
    note: str = ""  # the context or the filter it exercises

    @property
    def positive(self) -> bool:
        return self.kind in ("native", "transplant")


@dataclass
class Expanded:
    text: str
    holes: list[tuple[int, int]] = field(default_factory=list)  # offsets in text


def expand_spans(template: str, seed: str, fill: str | None = None) -> Expanded:
    """Expand a template hole by hole, keeping where each hole's text landed. With `fill`,
    every hole becomes that character repeated to the hole's length instead."""
    out = Expanded("")
    parts: list[str] = []
    pos = 0
    for k, m in enumerate(_HOLE.finditer(template)):
        parts.append(template[pos : m.start()])
        value = expand(m.group(0), f"{seed}/{k}")
        if fill is not None:
            value = fill * len(value)
        start = sum(len(p) for p in parts)
        parts.append(value)
        out.holes.append((start, start + len(value)))
        pos = m.end()
    parts.append(template[pos:])
    out.text = "".join(parts)
    return out


def _widen(text: str, start: int, end: int) -> tuple[int, int]:
    while start > 0 and text[start - 1] not in _STOP_LEFT:
        start -= 1
    while end < len(text) and text[end] not in _STOP_RIGHT:
        end += 1
    return start, end


def _offset_to_span(text: str, start: int, end: int, first_line: int) -> Span:
    line_start = text.rfind("\n", 0, start) + 1
    line = text.count("\n", 0, start)
    line_end = text.find("\n", start)
    line_end = len(text) if line_end < 0 else line_end
    return Span(first_line + line, start - line_start, min(end, line_end) - line_start)


# ---------------------------------------------------------------------------------------------
# Ordinary lines around the samples


_WORDS = ("order", "item", "price", "total", "user", "name", "index", "report", "invoice", "layout", "chart", "batch")
_VERBS = ("load", "parse", "build", "render", "update", "merge", "format", "filter", "resolve", "sort")


def _filler(ext: str, rng: random.Random, n: int) -> list[str]:
    """`n` ordinary lines in the language of `ext`, or [] when the format takes none."""
    out: list[str] = []
    for _ in range(n):
        a, b, v = rng.choice(_WORDS), rng.choice(_WORDS), rng.choice(_VERBS)
        num = rng.randint(1, 999)
        line = {
            "py": rng.choice([f"# {v} the {a} for each {b}", f"{a}_{b} = {v}_{a}({b}, limit={num})"]),
            "js": rng.choice([f"// {v} the {a}", f"const {a}{b.title()} = {v}{a.title()}({b}, {num});"]),
            "ts": rng.choice([f"// {v} the {a}", f"export const {a}Count: number = {num};"]),
            "go": rng.choice([f"// {v} the {a}", f"\t{a}{b.title()} := {v}{a.title()}({b}, {num})"]),
            "java": rng.choice([f"    // {v} the {a}", f"    int {a}{b.title()} = {v}{a.title()}({num});"]),
            "rb": rng.choice([f"# {v} the {a}", f"{a}_{b} = {v}_{a}({b}, {num})"]),
            "php": rng.choice([f"// {v} the {a}", f"${a}_{b} = {v}_{a}(${b}, {num});"]),
            "sh": rng.choice([f"# {v} the {a}", f'{a.upper()}_{b.upper()}="{a}-{num}"']),
            "yaml": rng.choice([f"# {v} the {a}", f"{a}_{b}: {num}"]),
            "toml": rng.choice([f"# {v} the {a}", f"{a}_{b} = {num}"]),
            "ini": rng.choice([f"; {v} the {a}", f"{a}_{b} = {num}"]),
            "properties": rng.choice([f"# {v} the {a}", f"app.{a}.{b}={num}"]),
            "env": rng.choice([f"# {v} the {a}", f"{a.upper()}_{b.upper()}={num}"]),
            "tf": rng.choice([f"# {v} the {a}", f'  {a}_{b} = "{a}-{num}"']),
        }.get(ext)
        if line is None:
            return []
        out.append(line)
    return out


_EXT_ALIASES = {
    "yml": "yaml",
    "mjs": "js",
    "cjs": "js",
    "tsx": "ts",
    "jsx": "js",
    "bash": "sh",
    "zsh": "sh",
    "cfg": "ini",
    "conf": "ini",
}


def _ext_of(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    if name == ".env" or name.startswith(".env.") or name.endswith(".env"):
        return "env"
    ext = name.rsplit(".", 1)[-1] if "." in name.lstrip(".") else ""
    return _EXT_ALIASES.get(ext, ext)


def _wrap(path: str, body: str, rng: random.Random) -> tuple[str, int]:
    """The body between ordinary lines of its language; returns the text and the body's first line."""
    ext = _ext_of(path)
    before = _filler(ext, rng, rng.randint(1, 4))
    after = _filler(ext, rng, rng.randint(1, 4))
    if ext in ("yaml", "ini", "toml", "properties", "env"):
        before = [line for line in before if line.lstrip()[:1] in "#;"]  # keep the document's structure
        after = []
    if not before and not after:
        return body, 1
    tail = "\n".join(after)
    text = "\n".join(before) + "\n" + body.rstrip("\n") + "\n" + (tail + "\n" if tail else "")
    return text, len(before) + 1


# ---------------------------------------------------------------------------------------------
# Positives


@dataclass(frozen=True)
class Context:
    name: str
    path: str
    line: str  # format fields: {name} {value}
    quoted: bool  # the value sits in double quotes (else bare)
    name_style: str  # "key" (as written), "ident", "env" (UPPER_SNAKE), "snake", "camel", "pascal"


CONTEXTS = (
    Context("python", "app/{stem}.py", '{name} = "{value}"', True, "ident"),
    Context(
        "python-dict",
        "app/{stem}_conf.py",
        'CONFIG = {{\n    "{name}": "{value}",\n    "timeout": 30,\n}}',
        True,
        "key",
    ),
    Context("javascript", "web/src/{stem}.js", 'const {name} = "{value}";', True, "ident"),
    Context("js-object", "web/src/{stem}.config.ts", "export default {{\n  {name}: '{value}',\n}};", True, "camel"),
    Context("go", "internal/{stem}/config.go", 'const {name} = "{value}"', True, "ident"),
    Context("java", "src/main/java/com/acme/{Stem}.java", '    static final String {name} = "{value}";', True, "ident"),
    Context("csharp", "src/Acme/{Stem}.cs", '        private const string {name} = "{value}";', True, "pascal"),
    Context("kotlin", "app/src/main/kotlin/{Stem}.kt", 'val {name} = "{value}"', True, "camel"),
    Context("ruby", "config/initializers/{stem}.rb", "{name} = '{value}'", True, "env"),
    Context("php", "src/{stem}.php", "<?php\n${name} = '{value}';", True, "ident"),
    Context("shell", "scripts/{stem}.sh", 'export {name}="{value}"', True, "env"),
    Context("dotenv", "deploy/.env.{stem}", "{name}={value}", False, "env"),
    Context("yaml", "config/{stem}.yaml", "{name}: {value}", False, "key"),
    Context("yaml-quoted", "config/{stem}.yml", 'settings:\n  {name}: "{value}"', True, "key"),
    Context(
        "compose",
        "docker-compose.{stem}.yml",
        "services:\n  app:\n    environment:\n      {name}: {value}",
        False,
        "env",
    ),
    Context("actions", ".github/workflows/{stem}.yml", "env:\n  {name}: {value}", False, "env"),
    Context("json", "config/{stem}.json", '{{\n  "{name}": "{value}",\n  "region": "eu-west-1"\n}}', True, "key"),
    Context("toml", "config/{stem}.toml", '{name} = "{value}"', True, "key"),
    Context("terraform", "infra/{stem}.tf", 'locals {{\n  {name} = "{value}"\n}}', True, "snake"),
    Context("properties", "src/main/resources/{stem}.properties", "{name}={value}", False, "key"),
)
_NAME_BEFORE = re.compile(
    r"""(?:^|[\s({,])(?:export[ \t]+|const[ \t]+|let[ \t]+|var[ \t]+|\$)?["']?(?P<name>[A-Za-z_][\w.-]*)["'\]]*"""
    r"""[ \t]*(?:=>|:=|=|:)[ \t]*(?:[rbuRBU]{1,2}(?=["']))?["'`]?$"""
)


def _name_style(name: str, style: str) -> str:
    """The name as the context spells names: as written, an identifier, UPPER_SNAKE, snake,
    camelCase or PascalCase (dbPass -> DB_PASS -> db_pass -> dbPass -> DbPass)."""
    if style == "key":
        return name
    if style == "ident":
        return re.sub(r"[^A-Za-z0-9_]", "_", name)
    words = [w for w in re.split(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])", name) if w]
    if style == "env":
        return "_".join(w.upper() for w in words)
    if style == "snake":
        return "_".join(w.lower() for w in words)
    pascal = "".join(w[:1].upper() + w[1:].lower() for w in words)
    return pascal if style == "pascal" else pascal[:1].lower() + pascal[1:]


def _value_fits(value: str, ctx: Context) -> bool:
    if any(c in value for c in '"\\\n') or ("'" in ctx.line and "'" in value) or ("$" in value and "php" in ctx.name):
        return False
    if ctx.quoted:
        return True
    return not (any(c in value for c in " \t#'") or value[:1] in "&*!|>%@`{[-?:,")


def _transplant_source(rule: Rule, template: str) -> tuple[str, bool] | None:
    """For a single-line example, the name its value is bound to and whether the value is a
    bare token (then the name is the rule's env name); None when the example is neither
    `name = value` nor a bare token, or the rule is about a line format (anchored at a line
    or file start: /etc/shadow lines, .pgpass entries), which has no other way to be written."""
    if "\n" in template.strip("\n") or not _HOLE.search(template):
        return None
    if "(?m)^" in rule.pattern or "(?mi)^" in rule.pattern or rule.pattern.startswith(("^", "\\A")):
        return None
    exp = expand_spans(template.strip("\n"), "probe")
    holes = exp.holes
    start, end = _widen(exp.text, holes[0][0], holes[-1][1])
    if any(not (start <= s and e <= end) for s, e in holes):
        return None  # holes in separate tokens: not one value
    prefix = exp.text[:start]
    if not prefix.strip() and not exp.text[end:].strip(" \t;,\"'"):
        return rule.env or "API_TOKEN", True
    m = _NAME_BEFORE.search(prefix)
    return (m.group("name"), False) if m else None


def positives(rule: Rule) -> Iterator[Sample]:
    for i, example in enumerate(rule.examples.match):
        seed = f"{SEED}/{rule.id}/{i}"
        exp = expand_spans(example.text, seed)
        body, first = _wrap(example.path, exp.text, random.Random(seed))
        label = tuple(_offset_to_span(exp.text, *_widen(exp.text, s, e), first) for s, e in exp.holes)
        last = first + exp.text.rstrip("\n").count("\n")
        multiline = len({sp.line for sp in label}) > 1
        yield Sample(example.path, body, "native", rule.id, label, (first, last), multiline, "own path")
        if rule.paths_include:
            continue
        source = _transplant_source(rule, example.text)
        if source is None:
            continue
        yield from _transplants(rule, *source, seed, example.text.strip("\n"))


def _transplants(rule: Rule, name: str, bare: bool, seed: str, template: str) -> Iterator[Sample]:
    stem = re.sub(r"[^a-z0-9]+", "_", rule.id.lower())
    for ctx in CONTEXTS:
        tseed = f"{seed}/{ctx.name}"
        texp = expand_spans(template, tseed)
        vstart, vend = _widen(texp.text, texp.holes[0][0], texp.holes[-1][1])
        value = texp.text[vstart:vend]
        if not _value_fits(value, ctx):
            continue
        path = ctx.path.format(stem=stem, Stem=stem.title().replace("_", ""))
        line = ctx.line.format(name=_name_style(name, ctx.name_style), value=value)
        body, _ = _wrap(path, line, random.Random(tseed))
        at = body.index(value)
        span = _offset_to_span(body, at, at + len(value), 1)
        yield Sample(path, body, "transplant", rule.id, (span,), (span.line, span.line), False, ctx.name)
    # Minified code: the long-line filter silences generic rules there, never a rule for a
    # token format of its own (a bare token: the value alone says what it is).
    if bare and not rule.generic:
        texp = expand_spans(template, f"{seed}/minified")
        vstart, vend = _widen(texp.text, texp.holes[0][0], texp.holes[-1][1])
        value = texp.text[vstart:vend]
        if '"' not in value and "\\" not in value:
            rng = random.Random(f"{seed}/minified")
            line = _minified(rng) + f'var {_name_style(name, "ident")}="{value}";' + _minified(rng)
            at = line.index(value)
            yield Sample(
                "web/dist/app.min.js",
                line + "\n",
                "transplant",
                rule.id,
                (Span(1, at, at + len(value)),),
                (1, 1),
                False,
                "minified",
            )


# ---------------------------------------------------------------------------------------------
# Negatives


def masked(rule: Rule) -> Iterator[Sample]:
    """The rule's match examples with every hole x'd out, as a `.example` file would hold them."""
    for i, example in enumerate(rule.examples.match):
        exp = expand_spans(example.text, f"{SEED}/{rule.id}/{i}", fill="x")
        yield Sample(example.path, exp.text, "masked", rule.id, note="holes x'd out")


def no_match(rule: Rule) -> Iterator[Sample]:
    for i, example in enumerate(rule.examples.no_match):
        text = expand(example.text, f"{SEED}/{rule.id}/no-match/{i}")
        yield Sample(example.path, text, "no-match", rule.id, note="the rule's no-match example")


def _b64(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.ascii_letters + string.digits + "+/") for _ in range(n))


def _hex(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def _uuid(rng: random.Random) -> str:
    h = _hex(rng, 32)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


def _pem(rng: random.Random, label: str, lines: int) -> str:
    body = "\n".join(_b64(rng, 64) for _ in range(lines)) + "\n" + _b64(rng, 20) + "=="
    return f"-----BEGIN {label}-----\n{body}\n-----END {label}-----\n"


_PLACEHOLDERS = (
    ("app/settings.py", 'API_KEY = "YOUR_API_KEY"'),
    ("app/settings.py", 'STRIPE_SECRET_KEY = "sk_live_' + "x" * 24 + '"'),
    ("app/settings.py", 'password = "<password>"'),
    ("app/settings.py", "SECRET_KEY = os.environ['DJANGO_SECRET_KEY']"),
    ("app/settings.py", 'DB_PASSWORD = os.environ.get("DB_PASSWORD", "")'),
    ("app/db.py", 'dsn = "postgresql://%(user)s:%(password)s@%(host)s/app"'),
    ("app/db.py", 'password = "%(db_password)s"'),
    ("web/src/api.js", "const apiToken = process.env.API_TOKEN;"),
    ("web/src/api.js", "const token = `${process.env.GITHUB_TOKEN}`;"),
    ("web/src/api.ts", 'const secret: string = "<YOUR_CLIENT_SECRET>";'),
    ("deploy/values.yaml", "password: {{ .Values.db.password }}"),
    ("deploy/values.yaml", 'apiKey: "{{ api_key }}"'),
    ("deploy/app.yaml", "token: ${TOKEN}"),
    ("deploy/app.yaml", "client_secret: changeme"),
    ("deploy/.env.example", "DB_PASSWORD=changeme\nAPI_TOKEN=your_token_here\nSECRET_KEY=xxxxxxxxxxxxxxxx"),
    ("deploy/.env.example", "STRIPE_KEY=<stripe-key>\nAWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY}"),
    ("docs/aws.md", "aws_access_key_id = AKIAIOSFODNN7EXAMPLE"),
    ("docs/aws.md", "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    (
        ".aws/credentials",
        "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\n"
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
    ),
    ("config/app.ini", "[db]\npassword = ********\n"),
    ("config/app.properties", "spring.datasource.password=${DB_PASSWORD}"),
    ("src/main/java/Conf.java", '    String pw = System.getenv("DB_PASSWORD");'),
    ("cmd/app/main.go", '\ttoken := os.Getenv("API_TOKEN")'),
    ("lib/app.rb", "SECRET = ENV['APP_SECRET']"),
    ("README.md", "export GITHUB_TOKEN=ghp_" + "x" * 36),
    ("README.md", "Authorization: Bearer <token>"),
    ("scripts/deploy.sh", 'curl -u "$USER:$API_TOKEN" https://api.acme.io/v1/deploy'),
    ("config/settings.toml", 'token = "[API_TOKEN]"'),
    ("config/settings.toml", 'password = "dummy-password"'),
    ("tests/fixtures.py", 'FAKE_TOKEN = "fake-token-for-tests"'),
)


# Placeholder words where they stay examples: code, documentation and example files.
_EXAMPLE_WORDS = (
    ("deploy/.env.example", "DB_PASSWORD=admin\nREDIS_PASSWORD=dummy-pass\nHEROKU_API_KEY=sampleHerokuKey"),
    ("web/.env.sample", "MAIL_PASSWORD=password\nAPP_SECRET=changeme"),
    ("public_html/wp-config-sample.php", "define( 'DB_USER', 'admin' );\ndefine( 'DB_PASSWORD', 'admin' );"),
    ("docs/setup.md", "    export RDS_PASSWORD='dummy-pass'\n    IRC_PASS=irc_pass\n    *:*:*:postgres:password"),
    ("docs/.pgpass", "localhost:5432:app:postgres:password"),
    ("examples/filezilla/sitemanager.xml", "<User>root</User>\n<Pass>ExamplePass123</Pass>"),
    ("examples/dotfiles/.bash_profile", "export RDS_PASSWORD='dummy-pass'\nexport HEROKU_API_KEY='sampleHerokuKey'"),
    ("docs/.netrc", "machine ftp.acme.io login admin password admin"),
    ("app/settings.py", 'DB_PASSWORD = "admin"\nRDS_PASSWORD = "dummy-pass"\nHEROKU_API_KEY = "sampleHerokuKey"'),
    ("web/src/db.js", "const password = 'changeme';\nconst apiKey = 'sampleApiKey';"),
    ("cmd/app/main.go", '\tpassword := "password"\n\tircPass := "irc_pass"'),
    ("config/app.yaml", "database:\n  password: dummy-pass\n  admin_password: admin"),
)
# Templates in the files whose rules keep placeholder words: still no value.
_CREDENTIAL_FILE_TEMPLATES = (
    (".pgpass", "*:*:*:postgres:${PGPASSWORD}\nlocalhost:5432:app:app:YOUR_PASSWORD"),
    (".netrc", "machine api.acme.io login ci password <token>"),
    (".esmtprc", 'username "me@acme.io"\npassword "YOUR_PASSWORD"'),
    ("filezilla/sitemanager.xml", '<Pass>********</Pass>\n<Pass encoding="base64" />'),
    (".dbeaver/data-sources.xml", '<connection host="db" user="app" password="{{ db_password }}"/>'),
    (".env", "DB_PASSWORD=${VAULT_DB_PASSWORD}\nMAIL_PASSWORD=null\nREDIS_PASSWORD=<redis-password>"),
    (".bash_profile", 'export GITHUB_TOKEN=$(gh auth token)\nexport NPM_TOKEN=xxxxxxxxxxxx\nexport API_KEY="$RO_KEY"'),
    ("config", "IRC_PASS=<irc-password>\nIRC_TOKEN=%IRC_TOKEN%"),
    (
        "public_html/wp-config.php",
        "define('DB_PASSWORD', 'password_here');\ndefine('AUTH_KEY', 'put your unique phrase here');",
    ),
)
# Weak credentials: (path, text, the value, the rule that reports it).
WEAK_CREDENTIALS = (
    (
        "db/.pgpass",
        "#hostname:port:database:username:password\nlocalhost:5432:db:root:password",
        "password",
        "pgpass-password",
    ),
    (
        "db/dbeaver-data-sources.xml",
        '<connection host="localhost" port="1521" user="user" password="password"/>',
        "password",
        "dbeaver-data-source-password",
    ),
    (
        ".esmtprc",
        'hostname smtp.acme.io:587\nusername "me@acme.io"\npassword "password"',
        "password",
        "mail-client-password",
    ),
    ("filezilla/filezilla.xml", "<User>root</User>\n<Pass>ExamplePas123</Pass>", "ExamplePas123", "filezilla-password"),
    (".netrc", "machine ftp.acme.io login admin password admin", "admin", "netrc-password"),
    (".env", "DB_USERNAME=root\nDB_PASSWORD=admin", "admin", "dotenv-secret"),
    (".bash_profile", "export RDS_PASSWORD='dummy-pass'", "dummy-pass", "shell-profile-secret"),
    (".bash_profile", "export HEROKU_API_KEY='sampleHerokuKey'", "sampleHerokuKey", "shell-profile-secret"),
    ("config", "IRC_NICK=nick\nIRC_PASS=irc_pass", "irc_pass", "shell-profile-secret"),
    ("public_html/wp-config.php", "define( 'DB_PASSWORD', 'admin' );", "admin", "wordpress-config-secret"),
)


def weak_credentials() -> Iterator[Sample]:
    for path, text, value, rule_id in WEAK_CREDENTIALS:
        at = text.rindex(value)
        span = _offset_to_span(text, at, at + len(value), 1)
        yield Sample(path, text + "\n", "native", rule_id, (span,), (span.line, span.line), note="weak credential")


def filter_negatives(rng: random.Random) -> Iterator[Sample]:
    """Hard negatives, one family per filter."""
    for path, text in _PLACEHOLDERS:
        yield Sample(path, text + "\n", "negative", None, note="placeholder or reference")
    for path, text in _EXAMPLE_WORDS:
        yield Sample(path, text + "\n", "negative", None, note="placeholder word in code, docs or an example")
    for path, text in _CREDENTIAL_FILE_TEMPLATES:
        yield Sample(path, text + "\n", "negative", None, note="template in a credential file")
    for k in range(6):
        b64 = _b64(rng, 86)
        yield Sample(
            "package-lock.json",
            f'    "node_modules/left-pad-{k}": {{\n      "version": "1.3.{k}",\n'
            f'      "resolved": "https://registry.npmjs.org/left-pad/-/left-pad-1.3.{k}.tgz",\n'
            f'      "integrity": "sha512-{b64}=="\n    }},\n',
            "negative",
            None,
            note="lock-file integrity hash",
        )
        yield Sample(
            "yarn.lock",
            f'lodash@^4.17.{k}:\n  version "4.17.{k}"\n  resolved "https://registry.yarnpkg.com/lodash/-/lodash-4.17.{k}.tgz"\n'
            f"  integrity sha512-{_b64(rng, 86)}==\n",
            "negative",
            None,
            note="lock-file integrity hash",
        )
        yield Sample(
            "pnpm-lock.yaml",
            f"  /react@18.2.{k}:\n    resolution: {{integrity: sha512-{_b64(rng, 86)}==}}\n",
            "negative",
            None,
            note="lock-file integrity hash",
        )
        yield Sample(
            "web/index.html",
            f'<script src="https://cdn.acme.io/app-{k}.js" integrity="sha384-{_b64(rng, 64)}" crossorigin></script>\n',
            "negative",
            None,
            note="subresource integrity hash",
        )
        yield Sample(
            "poetry.lock",
            f'files = [\n    {{file = "pkg-{k}.whl", hash = "sha256:{_hex(rng, 64)}"}},\n]\n',
            "negative",
            None,
            note="lock-file hash",
        )
        yield Sample(
            "go.sum", f"github.com/acme/lib v1.{k}.0 h1:{_b64(rng, 43)}=\n", "negative", None, note="go.sum hash"
        )
        yield Sample(
            "app/models.py", f'token = "{_uuid(rng)}"\nrequest_id = "{_uuid(rng)}"\n', "negative", None, note="UUID"
        )
        yield Sample(
            "config/app.json", f'{{"id": "{_uuid(rng)}", "secret_id": "{_uuid(rng)}"}}\n', "negative", None, note="UUID"
        )
        yield Sample(
            ".pre-commit-config.yaml",
            f"repos:\n  - repo: https://github.com/acme/hooks\n    rev: {_hex(rng, 40)}\n",
            "negative",
            None,
            note="git SHA",
        )
        yield Sample(
            "app/version.py",
            f'secret = "{_hex(rng, 40)}"\ncommit_sha = "{_hex(rng, 40)}"\n',
            "negative",
            None,
            note="git SHA",
        )
        yield Sample(
            "web/theme.js",
            f'const tokenColor = "#{_hex(rng, 6)}";\nconst secretBg = "#{_hex(rng, 8)}";\n',
            "negative",
            None,
            note="hex colour",
        )
        yield Sample(
            "web/theme.css", f":root {{ --password-border: #{_hex(rng, 6)}; }}\n", "negative", None, note="hex colour"
        )
        png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(rng.randrange(256) for _ in range(600))).decode()
        yield Sample(
            "web/logo.css",
            f".logo {{ background: url(data:image/png;base64,{png}); }}\n",
            "negative",
            None,
            note="base64 data: image",
        )
        svg = base64.b64encode(
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{k + 16}"><path d="M0 0h{k}v{k}z"/></svg>'.encode()
        ).decode()
        yield Sample(
            "web/icons.js",
            f'export const icon{k} = "data:image/svg+xml;base64,{svg}";\n',
            "negative",
            None,
            note="base64 data: image",
        )
        yield Sample("web/vendor.min.js", _minified(rng) + "\n", "negative", None, note="minified code")
        yield Sample(
            ".ssh/id_ed25519.pub",
            f"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{_b64(rng, 43)} dev@laptop\n",
            "negative",
            None,
            note="public key",
        )
        yield Sample(
            ".ssh/authorized_keys",
            f"ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ{_b64(rng, 340)} deploy@ci\n",
            "negative",
            None,
            note="public key",
        )
        yield Sample("certs/server.crt", _pem(rng, "CERTIFICATE", 18), "negative", None, note="certificate")
        yield Sample("keys/signing.pub.pem", _pem(rng, "PUBLIC KEY", 6), "negative", None, note="public key")
        yield Sample("keys/rsa.pub.pem", _pem(rng, "RSA PUBLIC KEY", 5), "negative", None, note="public key")
        yield Sample(
            "app/jwks.py",
            f'PUBLIC_KEY = """{_pem(rng, "PUBLIC KEY", 6)}"""\n',
            "negative",
            None,
            note="public key in code",
        )
        yield Sample(
            "keys/release.asc",
            "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n"
            + "\n".join(_b64(rng, 64) for _ in range(8))
            + "\n=Ab12\n-----END PGP PUBLIC KEY BLOCK-----\n",
            "negative",
            None,
            note="public key",
        )


def _minified(rng: random.Random) -> str:
    """One line of bundled JavaScript, over 1,000 characters, with the secret-sounding
    property names a UI bundle has (token:..., password:...) and random-looking ids."""
    parts = []
    while sum(len(p) for p in parts) < 1500:
        a = "".join(rng.choice(string.ascii_letters) for _ in range(rng.randint(1, 3)))
        choice = rng.randrange(6)
        if choice == 0:
            parts.append(f'{a}.token="{_b64(rng, 16).replace("+", "x").replace("/", "y")}"')
        elif choice == 1:
            parts.append(
                f'{{password:"{"".join(rng.choice(string.ascii_letters + string.digits) for _ in range(12))}"}}'
            )
        elif choice == 2:
            parts.append(f"function {a}(e,t){{return e+t*{rng.randint(1, 99)}}}")
        elif choice == 3:
            parts.append(f'var {a}="{_hex(rng, 20)}"')
        elif choice == 4:
            parts.append(f'{a}.secret=r("{_b64(rng, 12).replace("+", "q").replace("/", "z")}")')
        else:
            parts.append(f"{a}.push({rng.randint(0, 9999)})")
    return ";".join(parts) + ";"


def generate(rules: list[Rule], seed: str = SEED) -> list[Sample]:
    """The whole corpus, deterministic for a given rule set and seed."""
    rng = random.Random(seed)
    out: list[Sample] = []
    for rule in rules:
        out.extend(positives(rule))
        out.extend(masked(rule))
        out.extend(no_match(rule))
    out.extend(weak_credentials())
    out.extend(filter_negatives(rng))
    return out
