"""kms_actors: a self-hosted key management service that speaks the AWS KMS API.

How it is built: ``service`` composes a store (SQLite), an HSM pool (all crypto, the root of
trust), one supervised actor per KMS key with a registry in front, and a router that both the
HTTP API and the embedded client enter through. ``open_kms`` gives the embedded async client.

The names below are imported when first used, so that a process that needs one corner of the
package (the audit writer process, a CLI command) does not pay for importing all of it.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kms_actors.client import KmsClient
    from kms_actors.config import ConfigError, Settings, load_settings
    from kms_actors.domain.clock import Clock, FakeClock, SystemClock
    from kms_actors.domain.principal import Caller
    from kms_actors.errors import KmsError
    from kms_actors.service import Service, open_service

__version__ = "0.1.0"

_LAZY = {
    "Caller": "kms_actors.domain.principal",
    "Clock": "kms_actors.domain.clock",
    "ConfigError": "kms_actors.config",
    "FakeClock": "kms_actors.domain.clock",
    "KmsClient": "kms_actors.client",
    "KmsError": "kms_actors.errors",
    "Service": "kms_actors.service",
    "Settings": "kms_actors.config",
    "SystemClock": "kms_actors.domain.clock",
    "load_settings": "kms_actors.config",
    "open_service": "kms_actors.service",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'kms_actors' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


@contextlib.asynccontextmanager
async def open_kms(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    config: str | os.PathLike[str] | None = None,
    settings: Settings | None = None,
    overrides: Mapping[str, Any] | None = None,
    account_id: str | None = None,
    region: str | None = None,
    principal_arn: str | None = None,
    clock: Clock | None = None,
) -> AsyncIterator[KmsClient]:
    """Run the service in-process and yield a boto3-shaped async KMS client.

    ``async with open_kms("./data") as kms: await kms.encrypt(KeyId="alias/app", Plaintext=b"x")``

    The client acts as ``principal_arn`` (default: the account root) of ``account_id`` in
    ``region`` (defaults from the settings); ``client.as_caller(...)`` gives other identities.
    """
    from kms_actors.client import KmsClient
    from kms_actors.config import load_settings
    from kms_actors.domain.principal import Caller
    from kms_actors.service import open_service

    if settings is None:
        extra = dict(overrides or {})
        if data_dir is not None:
            extra["service.data_dir"] = os.fspath(data_dir)
        settings = load_settings(config, overrides=extra)
    async with open_service(settings, clock=clock) as service:
        account = account_id or settings.service.default_account_id
        partition = settings.service.partition
        caller = Caller(
            account_id=account,
            region=region or settings.service.default_region,
            arn=principal_arn or f"arn:{partition}:iam::{account}:root",
            partition=partition,
            user_agent="kms_actors-embedded",
        )
        client = KmsClient(service.router, caller)
        client.service = service
        yield client


__all__ = [
    "Caller",
    "Clock",
    "ConfigError",
    "FakeClock",
    "KmsClient",
    "KmsError",
    "Service",
    "Settings",
    "SystemClock",
    "__version__",
    "load_settings",
    "open_kms",
    "open_service",
]
