"""Composition root: the whole service in ONE task group.

Start-up order uses ``await tg.start(...)``: store -> HSM pool -> key supervisor and registry
-> deletion scheduler -> router. Shutdown is cancelling the root scope; every actor answers
what is still queued, then the pool and the store close.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator

import anyio

from kms_actors.audit import AuditLog, open_audit_log, service_event
from kms_actors.auth import Identity, Role, RoleStore, SigV4Verifier
from kms_actors.config import Settings, load_settings
from kms_actors.domain.clock import Clock, SystemClock
from kms_actors.domain.policy import compile_policy
from kms_actors.hsm import HsmPool, RootKey, checkpoint_signer, open_hsm_pool
from kms_actors.http import serve_http
from kms_actors.keys import DeletionScheduler, KeyDeps, KeyRegistry
from kms_actors.keys._commands import PurgeKey
from kms_actors.ops import Router, Services, usage
from kms_actors.runtime import Supervisor
from kms_actors.store import Store, open_store

log = logging.getLogger("kms_actors")


class Service:
    """A running kms_actors service: what the HTTP layer and the embedded client talk to."""

    def __init__(
        self,
        *,
        settings: Settings,
        store: Store,
        hsm: HsmPool,
        registry: KeyRegistry,
        scheduler: DeletionScheduler,
        router: Router,
        clock: Clock,
    ) -> None:
        self.settings = settings
        self.store = store
        self.hsm = hsm
        self.registry = registry
        self.scheduler = scheduler
        self.router = router
        self.clock = clock
        self.audit: AuditLog | None = None
        self.http_address: tuple[str, int] | None = None  # (host, port) when serving HTTP
        self.status: dict[str, object] = {"status": "starting", "service": "kms_actors"}


def load_root_key(settings: Settings) -> RootKey:
    """Return the root key from its environment variable, else its file (created on first start).

    Raises:
        ValueError: The variable or file holds no valid root key (one-line reason).
    """
    value = os.environ.get(settings.root_key.env) if settings.root_key.env else None
    if value:
        return RootKey.from_base64(value)
    return RootKey.load_or_create(settings.root_key_path)


def identity_store(settings: Settings) -> RoleStore:
    """Return the identities and roles the configuration declares, with compiled policies.

    The verifier and STS AssumeRole share this one store: sessions AssumeRole issues are
    added to it.
    """
    if settings.http.dev_mode:
        log.warning(
            "development mode is ON: any credentials are accepted and signatures are not "
            "checked; never expose this server"
        )
    return RoleStore(
        (
            Identity(
                access_key_id=i.access_key_id,
                secret_access_key=i.secret_access_key,
                account_id=i.account_id,
                arn=i.arn,
                session_token=i.session_token,
                user_id=i.user_id,
                policies=tuple(compile_policy(text, kind="identity") for text in i.policy_texts()),
            )
            for i in settings.identities
        ),
        roles=(
            Role(
                arn=r.arn,
                trust_policy=compile_policy(r.trust_policy, kind="trust"),
                policies=tuple(compile_policy(text, kind="identity") for text in r.policy_texts()),
                max_session_seconds=r.max_session_duration_seconds,
            )
            for r in settings.roles
        ),
        dev_mode=settings.http.dev_mode,
        default_account_id=settings.service.default_account_id,
    )


@contextlib.asynccontextmanager
async def open_service(
    settings: Settings | None = None, *, clock: Clock | None = None, http: bool = False
) -> AsyncIterator[Service]:
    """Start the service and yield it; leaving the block shuts it down cleanly.

    With ``http=True`` the HTTP API listens on ``http.host``/``http.port`` (0 picks a free
    port; see ``service.http_address``).
    """
    settings = settings or load_settings()
    clock = clock or SystemClock()
    root = load_root_key(settings)
    async with contextlib.AsyncExitStack() as stack:
        store = await stack.enter_async_context(open_store(settings.data_path))
        hsm = await stack.enter_async_context(
            open_hsm_pool(
                root, workers=settings.hsm.workers, inline_symmetric=settings.hsm.inline_symmetric
            )
        )
        audit: AuditLog | None = None
        if settings.audit.enabled:
            audit = await stack.enter_async_context(
                open_audit_log(
                    settings.data_path,
                    checkpoint_signer(root),
                    durable=settings.audit.durable,
                    clock=clock,
                    checkpoint_every=settings.audit.checkpoint_every,
                )
            )
        async with anyio.create_task_group() as tg:
            scheduler = DeletionScheduler(clock)
            deps = KeyDeps(store=store, hsm=hsm, clock=clock, timers=scheduler)
            supervisor = Supervisor(
                tg,
                max_restarts=settings.keys.max_restarts,
                within_seconds=settings.keys.restart_window_seconds,
                mailbox_size=settings.keys.mailbox_size,
            )
            registry = KeyRegistry(
                deps,
                supervisor,
                max_customer_keys=settings.keys.max_customer_keys,
                passivate_after=settings.keys.passivate_after_seconds,
            )
            await registry.start()
            await tg.start(registry.sweep_idle)
            for key_id, due in await store.keys.pending_deletions():
                scheduler.schedule(key_id, due)

            async def purge(key_id: str) -> object:
                deleted = await registry.command(PurgeKey(key_id))
                if deleted and audit is not None:
                    await audit.record(
                        service_event(
                            event_name="DeleteKey",
                            account_id=deleted.account_id,
                            region=deleted.region,
                            event_time=clock.now(),
                            resources=[deleted.arn],
                        )
                    )
                return deleted

            await tg.start(scheduler.run, purge)
            router = Router(Services(registry=registry, hsm=hsm, clock=clock), audit)
            if audit is not None:
                router.add_handlers(usage.handlers(audit))
            service = Service(
                settings=settings,
                store=store,
                hsm=hsm,
                registry=registry,
                scheduler=scheduler,
                router=router,
                clock=clock,
            )
            service.audit = audit
            # HTTP runs in its own scope so shutdown can stop it first: in-flight requests
            # finish against live actors, then the rest of the service is cancelled.
            http_scope = anyio.CancelScope()
            http_done = anyio.Event()
            if http:
                verifier = SigV4Verifier(identity_store(settings), now=clock.now)

                async def run_http(*, task_status: anyio.abc.TaskStatus[tuple[str, int]]) -> None:
                    try:
                        with http_scope:
                            await serve_http(
                                router,
                                verifier,
                                host=settings.http.host,
                                port=settings.http.port,
                                max_body_bytes=settings.http.max_body_bytes,
                                shutdown_timeout=settings.http.shutdown_timeout_seconds,
                                status=service.status,
                                task_status=task_status,
                            )
                    finally:
                        http_done.set()

                service.http_address = await tg.start(run_http)
            else:
                http_done.set()
            service.status["status"] = "ok"
            log.info("kms_actors service ready (data dir %s)", settings.data_path)
            try:
                yield service
            finally:
                http_scope.cancel()
                with anyio.CancelScope(shield=True):
                    await http_done.wait()
                tg.cancel_scope.cancel()
