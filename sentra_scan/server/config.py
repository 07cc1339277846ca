"""The server's YAML configuration, validated at start-up (errors name the key)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sentra_scan.auth.verify import JwksCache, TokenError, TokenPolicy, check_url, https_fetch
from sentra_scan.errors import ConfigError
from sentra_scan.server.policy import RANK, ApiKeys, FailureLimiter, PathRules
from sentra_scan.server.storage import Backend, DirBackend, S3Backend

KEYS = {"provider", "data_dir", "storage", "members", "contexts", "role_prefixes", "allow_http_loopback", "limits"}


def _req(d: dict[str, Any], key: str, source: str, where: str) -> Any:
    if key not in d:
        raise ConfigError("missing", source=source, key=f"{where}.{key}" if where else key)
    return d[key]


def load_server_state(path: Path, *, dev_overlay: bool = False) -> Any:
    import yaml

    from sentra_scan.server.app import ServerState

    source = str(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read: {exc}", source=source) from None
    if not isinstance(data, dict):
        raise ConfigError("must be a mapping", source=source)
    unknown = set(data) - KEYS
    if unknown:
        raise ConfigError("unknown key", source=source, key=sorted(unknown)[0])
    provider = _req(data, "provider", source, "")
    allow_http = bool(data.get("allow_http_loopback", False))
    policy = TokenPolicy(
        issuer=str(_req(provider, "issuer", source, "provider")),
        audience=str(provider.get("audience", "authenticated")),
        role=provider.get("role", "authenticated"),
    )
    jwks_uri = str(provider.get("jwks_uri") or policy.issuer.rstrip("/") + "/.well-known/jwks.json")
    jwks = JwksCache(jwks_uri, https_fetch(allow_http))
    data_dir = Path(str(data.get("data_dir", "sentra-data")))
    if not data_dir.is_absolute():
        data_dir = path.parent / data_dir
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    storage = data.get("storage") or {"kind": "dir"}
    backend: Backend
    if storage.get("kind", "dir") == "dir":
        backend = DirBackend(data_dir)
    elif storage["kind"] == "s3":
        backend = S3Backend(
            str(_req(storage, "bucket", source, "storage")),
            prefix=str(storage.get("prefix", "sentra")),
            endpoint_url=storage.get("endpoint_url"),
        )
    elif storage["kind"] == "vault":
        from sentra_scan.vault import VaultBackend, VaultClient

        token = os.environ.get("VAULT_TOKEN", "")
        if not token:
            raise ConfigError("the vault backend needs VAULT_TOKEN in the environment", source=source, key="storage")
        address = str(_req(storage, "address", source, "storage"))
        try:  # the token goes with every request: never in clear over a network
            check_url(address, allow_http)
        except TokenError as exc:
            raise ConfigError(exc.message, source=source, key="storage.address") from None
        client = VaultClient(address, token=token, verify=storage.get("ca", True))
        backend = VaultBackend(client, str(storage.get("mount", "secret")), str(storage.get("prefix", "sentra")))
    else:
        raise ConfigError("must be dir, s3 or vault", source=source, key="storage.kind")
    members: dict[str, dict[str, str]] = {}
    for sub, projects in (data.get("members") or {}).items():
        for project, role in (projects or {}).items():
            if role not in RANK:
                raise ConfigError(f"unknown role {role!r}", source=source, key=f"members.{sub}.{project}")
            members.setdefault(str(sub), {})[str(project)] = role
    contexts = {str(k): tuple(v) for k, v in (data.get("contexts") or {"dev": ["dev/"], "prod": ["prod/"]}).items()}
    role_prefixes = {str(k): tuple(v) for k, v in (data.get("role_prefixes") or {}).items()}
    limits = data.get("limits") or {}
    return ServerState(
        policy=policy,
        jwks=jwks,
        backend=backend,
        members=members,
        rules=PathRules(contexts, role_prefixes),
        api_keys=ApiKeys(data_dir / "apikeys.json"),
        audit_path=data_dir / "audit.jsonl",
        limiter=FailureLimiter(**limits),
        dev_overlay=dev_overlay,
    )
