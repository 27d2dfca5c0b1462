"""Helpers shared by the engine tests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import anyio

from kms_actors import KmsError

ACCOUNT = "111122223333"
REGION = "us-east-1"
DAY = 86_400.0


def key_arn(key_id: str, *, account: str = ACCOUNT, region: str = REGION) -> str:
    """Return the ARN of a key of the default account and Region."""
    return f"arn:aws:kms:{region}:{account}:key/{key_id}"


def alias_arn(alias_name: str, *, account: str = ACCOUNT, region: str = REGION) -> str:
    """Return the ARN of an alias (``alias_name`` includes ``alias/``)."""
    return f"arn:aws:kms:{region}:{account}:{alias_name}"


async def error_of(call: Awaitable[Any]) -> KmsError:
    """Await ``call`` and return the KmsError it raised; fail if it succeeded."""
    try:
        result = await call
    except KmsError as error:
        return error
    raise AssertionError(f"expected a KmsError, the call returned {result!r}")


async def new_key(kms: Any, **params: Any) -> dict[str, Any]:
    """Create a key and return its KeyMetadata."""
    response = await kms.create_key(**params)
    metadata: dict[str, Any] = response["KeyMetadata"]
    return metadata


async def eventually(check: Callable[[], Awaitable[bool]], *, timeout: float = 5.0) -> None:
    """Poll ``check`` until it is true (background tasks need a moment); fail after ``timeout``."""
    with anyio.move_on_after(timeout):
        while not await check():
            await anyio.sleep(0.01)
        return
    raise AssertionError(f"condition not met within {timeout} s")


async def is_gone(kms: Any, key_id: str) -> bool:
    """Say whether DescribeKey answers NotFoundException for ``key_id``."""
    try:
        await kms.describe_key(KeyId=key_id)
    except KmsError as error:
        if error.code == "NotFoundException":
            return True
        raise
    return False


def without_metadata(response: dict[str, Any]) -> dict[str, Any]:
    """Return a response without its ResponseMetadata (request ids differ per call)."""
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


async def error_codes(kms: Any, calls: Iterable[tuple[str, dict[str, Any]]]) -> list[str]:
    """Make each call (client method name, parameters) and return the error code each raised."""
    return [(await error_of(getattr(kms, method)(**params))).code for method, params in calls]
