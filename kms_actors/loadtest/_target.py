"""Where requests go: a KMS endpoint over HTTP (aiohttp + SigV4, JSON 1.1) or the embedded service.

Both give set-up calls (``call``: raises ``CallFailed``/``Unreachable``) and a hot-path
``Sender`` whose ``send`` returns None on success or the error code, and never raises for an
answer the endpoint gave. Request bodies are encoded once before the run; signatures are
cached per body for the second their ``X-Amz-Date`` names, so the generator spends its time
sending, not hashing.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Final, Protocol

import aiohttp
import msgspec

from kms_actors.auth import sign_headers
from kms_actors.errors import KmsError
from kms_actors.loadtest._options import Options, UsageError

JSON_11: Final = "application/x-amz-json-1.1"
USER_AGENT: Final = "kms-actors-loadtest"
_ANSWER: Final = msgspec.json.Decoder(dict[str, Any])


class Credentials(msgspec.Struct, frozen=True):
    """AWS credentials (never in reports; the repr hides the secret and the token)."""

    access_key_id: str
    secret_access_key: str
    session_token: str | None = None

    def __repr__(self) -> str:
        return f"Credentials(access_key_id={self.access_key_id!r}, ...)"


class CallFailed(Exception):
    """A set-up call the endpoint answered with an error."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message


class Unreachable(Exception):
    """A set-up call that got no answer (connection refused, DNS, timeout, ...)."""


class Sender(Protocol):
    """Sends prepared request ``slot`` and returns None on success or the error code."""

    async def send(self, slot: int) -> str | None: ...


class Target(Protocol):
    """A KMS endpoint for set-up calls and for building hot-path senders."""

    description: str

    async def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]: ...

    def sender(self, requests: Sequence[tuple[str, dict[str, Any]]]) -> Sender: ...


def error_code(raw: bytes, status: int) -> str:
    """Return the AWS error code of an error answer (``HTTP <status>`` when it has none)."""
    try:
        document = _ANSWER.decode(raw)
    except msgspec.DecodeError:
        return f"HTTP {status}"
    code = document.get("__type") or document.get("code") or document.get("Code")
    if not isinstance(code, str) or not code:
        return f"HTTP {status}"
    return code.rpartition("#")[2].partition(":")[0]


def resolve_credentials(profile: str | None) -> Credentials:
    """Return credentials from the AWS chain (botocore when installed, else AWS_* variables).

    Raises:
        UsageError: No credentials were found, or the profile is unusable.
    """
    try:
        import botocore.exceptions
        import botocore.session
    except ImportError:
        if profile:
            raise UsageError("--profile needs botocore installed (pip install botocore)") from None
        env = os.environ
        key, secret = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
        if key and secret:
            return Credentials(key, secret, env.get("AWS_SESSION_TOKEN") or None)
    else:
        try:
            found = botocore.session.Session(profile=profile).get_credentials()
            frozen = found.get_frozen_credentials() if found is not None else None
        except botocore.exceptions.BotoCoreError as error:
            raise UsageError(f"cannot load AWS credentials: {error}") from None
        if frozen is not None and frozen.access_key and frozen.secret_key:
            return Credentials(frozen.access_key, frozen.secret_key, frozen.token or None)
    raise UsageError(
        "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or use --profile"
    )


class HttpTarget:
    """A KMS endpoint over HTTP, on one aiohttp session."""

    def __init__(
        self, session: aiohttp.ClientSession, url: str, region: str, credentials: Credentials
    ) -> None:
        self._session = session
        self.url = url
        self.description = url
        self._region = region
        self._credentials = credentials

    def signed_headers(
        self, operation: str, body: bytes, now: float | None = None
    ) -> dict[str, str]:
        """Return the full headers of a signed JSON 1.1 request."""
        headers = {"Content-Type": JSON_11, "X-Amz-Target": f"TrentService.{operation}"}
        creds = self._credentials
        headers.update(
            sign_headers(
                method="POST",
                url=self.url,
                headers=headers,
                body=body,
                access_key_id=creds.access_key_id,
                secret_access_key=creds.secret_access_key,
                region=self._region,
                service="kms",
                session_token=creds.session_token,
                now=now,
            )
        )
        return headers

    async def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """Send one set-up request and return its decoded answer (blobs stay base64)."""
        body = msgspec.json.encode(params)
        headers = self.signed_headers(operation, body)
        try:
            async with self._session.post(self.url, data=body, headers=headers) as reply:
                raw, status = await reply.read(), reply.status
        except TimeoutError:
            raise Unreachable("no answer within --timeout") from None
        except aiohttp.ClientError as error:
            raise Unreachable(str(error) or type(error).__name__) from None
        if status != 200:
            try:
                message = str(_ANSWER.decode(raw).get("message") or "")
            except msgspec.DecodeError:
                message = raw[:200].decode("utf-8", "replace").strip()
            raise CallFailed(error_code(raw, status), message)
        return _ANSWER.decode(raw or b"{}")

    def sender(self, requests: Sequence[tuple[str, dict[str, Any]]]) -> HttpSender:
        """Return a hot-path sender of ``requests`` (operation, params) by index."""
        return HttpSender(self, [(op, msgspec.json.encode(params)) for op, params in requests])


class HttpSender:
    """Sends prepared bodies; signs each at most once per second."""

    def __init__(self, target: HttpTarget, bodies: list[tuple[str, bytes]]) -> None:
        self._target = target
        self._post = target._session.post
        self._url = target.url
        self._bodies = bodies
        self._signed: list[tuple[int, dict[str, str]]] = [(-1, {}) for _ in bodies]

    async def send(self, slot: int) -> str | None:
        """Send request ``slot``; return None on HTTP 200, else the error code."""
        operation, body = self._bodies[slot]
        second = int(time.time())
        signed_at, headers = self._signed[slot]
        if signed_at != second:
            headers = self._target.signed_headers(operation, body, now=float(second))
            self._signed[slot] = (second, headers)
        try:
            async with self._post(self._url, data=body, headers=headers) as reply:
                raw = await reply.read()
                status = reply.status
        except TimeoutError:
            return "Timeout"
        except aiohttp.ClientError as error:
            return type(error).__name__
        return None if status == 200 else error_code(raw, status)


@contextlib.asynccontextmanager
async def open_http_target(
    options: Options, credentials: Credentials, connections: int
) -> AsyncIterator[HttpTarget]:
    """Open an aiohttp session to ``options.endpoint`` with up to ``connections`` connections."""
    assert options.endpoint is not None
    connector = aiohttp.TCPConnector(limit=connections, limit_per_host=0, ttl_dns_cache=300)
    async with aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=options.timeout),
        headers={"User-Agent": USER_AGENT},
        auto_decompress=False,
    ) as session:
        yield HttpTarget(session, options.endpoint, options.region, credentials)


class EmbeddedTarget:
    """The service in this process, through the embedded client's boto3-shaped methods."""

    description = "embedded"

    def __init__(self, client: Any) -> None:
        self._client = client

    def _method(self, operation: str) -> Callable[..., Awaitable[dict[str, Any]]]:
        snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in operation).lstrip("_")
        method: Callable[..., Awaitable[dict[str, Any]]] = getattr(self._client, snake)
        return method

    async def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """Call one operation in-process and return its answer."""
        try:
            return await self._method(operation)(**params)
        except KmsError as error:
            raise CallFailed(error.code, error.message) from None

    def sender(self, requests: Sequence[tuple[str, dict[str, Any]]]) -> EmbeddedSender:
        """Return a hot-path sender of ``requests`` (operation, params) by index."""
        return EmbeddedSender([(self._method(op), params) for op, params in requests])


class EmbeddedSender:
    """Calls the embedded client's methods with prepared parameters."""

    def __init__(self, calls: list[tuple[Callable[..., Awaitable[Any]], dict[str, Any]]]) -> None:
        self._calls = calls

    async def send(self, slot: int) -> str | None:
        """Call request ``slot``; return None on success, else the error code."""
        method, params = self._calls[slot]
        try:
            await method(**params)
        except KmsError as error:
            return error.code
        return None


@contextlib.asynccontextmanager
async def open_embedded_target() -> AsyncIterator[EmbeddedTarget]:
    """Run the service in-process on a temporary data directory (removed afterwards)."""
    from kms_actors import open_kms  # here, not at the top: kms_actors imports the CLI's world

    with tempfile.TemporaryDirectory(prefix="kms-actors-loadtest-") as data_dir:
        async with open_kms(data_dir) as client:
            yield EmbeddedTarget(client)
