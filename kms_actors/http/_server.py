"""Run the HTTP app inside the service's task group (AppRunner + TCPSite, not run_app)."""

from __future__ import annotations

import logging
from typing import Any

import anyio
from aiohttp import web

from kms_actors.auth import SigV4Verifier
from kms_actors.http._app import build_app
from kms_actors.ops import Router

log = logging.getLogger("kms_actors.http")


async def serve_http(
    router: Router,
    verifier: SigV4Verifier,
    *,
    host: str,
    port: int,
    max_body_bytes: int,
    shutdown_timeout: float,
    status: dict[str, Any],
    task_status: anyio.abc.TaskStatus[tuple[str, int]] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until cancelled; report the bound (host, port) once listening.

    On cancellation the listener closes first, in-flight requests get ``shutdown_timeout``
    seconds to finish, then the function returns (the caller then closes the store).
    """
    app = build_app(router, verifier, max_body_bytes=max_body_bytes, status=status)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, backlog=1024)
        await site.start()
        bound = runner.addresses[0]
        address = (str(bound[0]), int(bound[1]))
        log.info("listening on http://%s:%d", *address)
        status["status"] = "ok"
        task_status.started(address)
        await anyio.sleep_forever()
    finally:
        status["status"] = "stopping"
        with anyio.CancelScope(shield=True):
            await runner.cleanup()
