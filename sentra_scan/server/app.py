"""`sentra serve`: a small ASGI service holding ciphertext for teams.

Explicit endpoints per resource, no generic passthrough:

    GET    /api/v1/health
    GET    /api/v1/projects/{project}/secrets                  list paths and versions
    GET    /api/v1/projects/{project}/secrets/{path}           one entry's ciphertext
    PUT    /api/v1/projects/{project}/secrets/{path}           {ciphertext, meta, version}
    DELETE /api/v1/projects/{project}/secrets/{path}?version=N
    GET    /api/v1/projects/{project}/audit
    GET    /api/v1/projects/{project}/api-keys
    POST   /api/v1/projects/{project}/api-keys                 {name, role, prefixes}
    DELETE /api/v1/projects/{project}/api-keys/{id}
    *      /api/v1/local/...                                   only with --dev-overlay

Every request's bearer token is verified exactly as the client verifies it (JWKS, algorithm
allow-list, strict iss/aud/exp/sub/role); machines use API keys. Secret endpoints need an
`X-Sentra-Context` header (dev, prod, ...) and path rules apply on top of roles. Every
mutation is appended to the audit log (JSON lines, never a value).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sentra_scan.auth.verify import JwksCache, TokenError, TokenPolicy, verify_token
from sentra_scan.server.policy import RANK, ApiKeys, FailureLimiter, PathRules, Principal
from sentra_scan.server.storage import Backend, Conflict, check_name

log = logging.getLogger("sentra.server")
MAX_BODY = 256 * 1024


@dataclass
class ServerState:
    policy: TokenPolicy
    jwks: JwksCache
    backend: Backend
    members: dict[str, dict[str, str]]  # sub -> {project: role}
    rules: PathRules
    api_keys: ApiKeys
    audit_path: Path
    limiter: FailureLimiter
    dev_overlay: bool = False

    def __post_init__(self) -> None:
        self._audit_lock = threading.Lock()

    def audit(self, **record: Any) -> None:
        record = {"time": round(time.time(), 3), **record}
        line = json.dumps(record, sort_keys=True)
        with self._audit_lock:
            fd = os.open(self.audit_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as fh:
                fh.write(line + "\n")
        log.info(line)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers={"Cache-Control": "no-store"})


Handler = Callable[[Request, ServerState, Principal], Awaitable[Response]]


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _authenticate(request: Request, state: ServerState) -> Principal | None:
    header = request.headers.get("authorization", "")
    scheme, _, credential = header.partition(" ")
    credential = credential.strip()
    if scheme.lower() == "bearer" and credential:
        claims = verify_token(credential, state.policy, state.jwks)
        return Principal(claims.subject, dict(state.members.get(claims.subject, {})))
    if scheme.lower() == "apikey" and credential:
        return state.api_keys.authenticate(credential)
    return None


def endpoint(permission: str | None) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """Authentication, the failure limiter and the permission check, around a handler."""

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def route(request: Request) -> Response:
            state: ServerState = request.app.state.sentra
            client = _client(request)
            if state.limiter.blocked(client):
                return _error(429, "too many failed requests; try again later")
            try:  # in a thread: a JWKS refetch or the key file must not block the event loop
                principal = await asyncio.to_thread(_authenticate, request, state)
            except TokenError as exc:
                principal = None
                reason = exc.message
            else:
                reason = "missing or unknown credentials"
            if principal is None:
                await asyncio.sleep(state.limiter.fail(client))
                state.audit(action="auth-failed", client=client, reason=reason, path=request.url.path)
                return _error(401, f"unauthorized: {reason}")
            project = request.path_params.get("project", "")
            if project:
                try:
                    check_name(project, "x/y")
                except ValueError:
                    return _error(400, "invalid project name")
            if permission is not None and not principal.can(project, permission):
                await asyncio.sleep(state.limiter.fail(client))
                state.audit(action="denied", subject=principal.subject, project=project, permission=permission)
                return _error(403, f"forbidden: {permission} needs a role that has it")
            return await handler(request, state, principal)

        return route

    return wrap


def _entry_path_allowed(request: Request, state: ServerState, principal: Principal, path: str) -> bool:
    project = request.path_params["project"]
    role = principal.role(project) or "viewer"
    return state.rules.allows(request.headers.get("x-sentra-context"), role, path, principal.prefixes)


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


@endpoint("secrets:list")
async def list_secrets(request: Request, state: ServerState, principal: Principal) -> Response:
    project = request.path_params["project"]
    entries = await asyncio.to_thread(state.backend.list, project)
    visible = [{"path": p, "version": v} for p, v in entries if _entry_path_allowed(request, state, principal, p)]
    return JSONResponse({"entries": visible})


def _path(request: Request) -> str | None:
    path = str(request.path_params["path"])
    try:
        check_name(request.path_params["project"], path)
    except ValueError:
        return None
    return path


@endpoint("secrets:get")
async def get_secret(request: Request, state: ServerState, principal: Principal) -> Response:
    path = _path(request)
    if path is None:
        return _error(400, "invalid entry path")
    if not _entry_path_allowed(request, state, principal, path):
        return _error(403, "forbidden: path not allowed in this context")
    entry = await asyncio.to_thread(state.backend.get, request.path_params["project"], path)
    if entry is None:
        return _error(404, "no such entry")
    return JSONResponse({"path": path, "version": entry.version, "ciphertext": entry.ciphertext, "meta": entry.meta})


@endpoint("secrets:put")
async def put_secret(request: Request, state: ServerState, principal: Principal) -> Response:
    path = _path(request)
    if path is None:
        return _error(400, "invalid entry path")
    if not _entry_path_allowed(request, state, principal, path):
        return _error(403, "forbidden: path not allowed in this context")
    body = await request.body()
    if len(body) > MAX_BODY:
        return _error(413, "entry too large")
    try:
        doc = json.loads(body)
        ciphertext = doc["ciphertext"]
        base64.b64decode(ciphertext, validate=True)
        expected = int(doc.get("version", 0))
        meta = doc.get("meta", {})
        if not isinstance(meta, dict) or len(json.dumps(meta)) > 4096:
            raise ValueError("meta")
    except (ValueError, KeyError, TypeError, binascii.Error):
        return _error(400, "body must be JSON {ciphertext: base64, version: int, meta: object}")
    project = request.path_params["project"]
    try:
        version = await asyncio.to_thread(state.backend.put, project, path, ciphertext, meta, expected)
    except Conflict as exc:
        return JSONResponse({"error": "version conflict", "current": exc.current}, status_code=409)
    state.audit(action="put", subject=principal.subject, project=project, path=path, version=version)
    return JSONResponse({"path": path, "version": version})


@endpoint("secrets:delete")
async def delete_secret(request: Request, state: ServerState, principal: Principal) -> Response:
    path = _path(request)
    if path is None:
        return _error(400, "invalid entry path")
    if not _entry_path_allowed(request, state, principal, path):
        return _error(403, "forbidden: path not allowed in this context")
    try:
        expected = int(request.query_params.get("version", ""))
    except ValueError:
        return _error(400, "?version=N is required")
    project = request.path_params["project"]
    try:
        await asyncio.to_thread(state.backend.delete, project, path, expected)
    except Conflict as exc:
        return JSONResponse({"error": "version conflict", "current": exc.current}, status_code=409)
    state.audit(action="delete", subject=principal.subject, project=project, path=path, version=expected)
    return Response(status_code=204)


@endpoint("audit:read")
async def read_audit(request: Request, state: ServerState, principal: Principal) -> Response:
    project = request.path_params["project"]
    records = []
    if state.audit_path.exists():
        for line in state.audit_path.read_text(encoding="utf-8").splitlines()[-1000:]:
            rec = json.loads(line)
            if rec.get("project") == project:
                records.append(rec)
    return JSONResponse({"records": records})


@endpoint("apikeys:manage")
async def list_keys(request: Request, state: ServerState, principal: Principal) -> Response:
    return JSONResponse({"keys": state.api_keys.list(request.path_params["project"])})


@endpoint("apikeys:manage")
async def create_key(request: Request, state: ServerState, principal: Principal) -> Response:
    project = request.path_params["project"]
    try:
        doc = json.loads(await request.body())
        name = str(doc["name"])
        role = str(doc.get("role", "viewer"))
        prefixes = doc.get("prefixes", [])
        if not isinstance(prefixes, list) or not all(isinstance(p, str) and p for p in prefixes):
            raise TypeError("prefixes must be a list of non-empty strings")
    except (ValueError, KeyError, TypeError):
        return _error(400, "body must be JSON {name, role, prefixes: [non-empty strings]}")
    own = principal.role(project) or "viewer"
    if role not in RANK or RANK[role] > RANK[own]:
        return _error(403, "forbidden: a key cannot have more rights than its creator")
    if principal.prefixes is not None and not (prefixes and all(p.startswith(principal.prefixes) for p in prefixes)):
        return _error(403, "forbidden: a key cannot reach paths its creator cannot")
    key_id, key = state.api_keys.create(project, name, role, prefixes, principal.subject)
    state.audit(action="apikey-create", subject=principal.subject, project=project, key=key_id, role=role)
    return JSONResponse({"id": key_id, "key": key, "note": "shown once; store it in your CI's secret store"}, 201)


@endpoint("apikeys:manage")
async def revoke_key(request: Request, state: ServerState, principal: Principal) -> Response:
    project = request.path_params["project"]
    if not state.api_keys.revoke(project, request.path_params["key_id"]):
        return _error(404, "no such key")
    state.audit(action="apikey-revoke", subject=principal.subject, project=project, key=request.path_params["key_id"])
    return Response(status_code=204)


@endpoint(None)
async def local_whoami(request: Request, state: ServerState, principal: Principal) -> Response:
    return JSONResponse({"subject": principal.subject, "roles": principal.project_roles})


async def local_disabled(request: Request) -> Response:
    return _error(404, "the development overlay is disabled (sentra serve --dev-overlay)")


def create_app(state: ServerState) -> Starlette:
    p = "/api/v1/projects/{project}"
    routes = [
        Route("/api/v1/health", health, methods=["GET"]),
        Route(f"{p}/secrets", list_secrets, methods=["GET"]),
        Route(f"{p}/secrets/{{path:path}}", get_secret, methods=["GET"]),
        Route(f"{p}/secrets/{{path:path}}", put_secret, methods=["PUT"]),
        Route(f"{p}/secrets/{{path:path}}", delete_secret, methods=["DELETE"]),
        Route(f"{p}/audit", read_audit, methods=["GET"]),
        Route(f"{p}/api-keys", list_keys, methods=["GET"]),
        Route(f"{p}/api-keys", create_key, methods=["POST"]),
        Route(f"{p}/api-keys/{{key_id}}", revoke_key, methods=["DELETE"]),
    ]
    if state.dev_overlay:
        routes.append(Route("/api/v1/local/whoami", local_whoami, methods=["GET"]))
    else:
        routes.append(Route("/api/v1/local/{rest:path}", local_disabled))
    app = Starlette(routes=routes)
    app.state.sentra = state
    return app
