"""`sentra serve`: the optional server (install with `pip install 'sentra-scan[server]'`)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import click

from sentra_scan.cli.common import guarded
from sentra_scan.errors import ExitCode, UsageError


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_tls(cert: Path, key: Path) -> None:
    """The certificate and key load and belong together (said before start-up, not as a crash)."""
    import ssl

    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(str(cert), str(key))
    except (ssl.SSLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc.strerror or str(exc)
        raise UsageError(
            f"cannot use --tls-cert {cert} with --tls-key {key}: {reason}",
            hint="a PEM certificate chain and the PEM private key that matches it",
        ) from None


@click.command()
@click.option("--config", "config_path", type=click.Path(path_type=Path, dir_okay=False, exists=True), required=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8600, show_default=True)
@click.option("--tls-cert", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--tls-key", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--behind-proxy", is_flag=True, help="A TLS-terminating reverse proxy is in front (non-loopback bind).")
@click.option("--dev-overlay", is_flag=True, help="Enable /api/v1/local/ (development only).")
def serve(
    config_path: Path,
    host: str,
    port: int,
    tls_cert: Path | None,
    tls_key: Path | None,
    behind_proxy: bool,
    dev_overlay: bool,
) -> int:
    """Serve ciphertext storage for a team (binds to 127.0.0.1 unless told otherwise)."""

    def go() -> int:
        if (tls_cert is None) != (tls_key is None):
            raise UsageError("--tls-cert and --tls-key go together", hint="pass the certificate chain and its key")
        if tls_cert is not None and tls_key is not None:
            _check_tls(tls_cert, tls_key)
        if not _loopback(host) and not (tls_cert and tls_key) and not behind_proxy:
            raise UsageError(
                f"refusing to serve plain HTTP on {host}",
                hint="bind 127.0.0.1 behind a TLS-terminating proxy (--behind-proxy) or pass --tls-cert/--tls-key",
            )
        try:
            import uvicorn

            from sentra_scan.server.app import create_app
            from sentra_scan.server.config import load_server_state
        except ImportError:
            raise UsageError("the server is an extra: pip install 'sentra-scan[server]'") from None
        app = create_app(load_server_state(config_path, dev_overlay=dev_overlay))
        uvicorn.run(
            app,
            host=host,
            port=port,
            ssl_certfile=str(tls_cert) if tls_cert else None,
            ssl_keyfile=str(tls_key) if tls_key else None,
            proxy_headers=behind_proxy,
            access_log=False,
            log_level="warning",
        )
        return int(ExitCode.OK)

    return guarded(go)


def register(group: click.Group) -> None:
    group.add_command(serve)
