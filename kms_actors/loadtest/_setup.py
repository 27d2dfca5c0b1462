"""Set-up and clean-up: check the endpoint, create keys and ciphertexts, delete them afterwards.

The first call doubles as the reachability and credentials check, and one call of every
operation of the mix is sent before the run, so a key the caller may not use is one clear
``UsageError`` line instead of a run full of AccessDeniedException.
"""

from __future__ import annotations

import base64
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from typing import Any, Final

import anyio
import msgspec

from kms_actors.loadtest._model import THROTTLE_CODES
from kms_actors.loadtest._options import MAX_RANDOM, Options, UsageError
from kms_actors.loadtest._target import CallFailed, Target, Unreachable

PENDING_WINDOW_DAYS: Final = 7  # the shortest deletion window KMS allows
_AUTH_CODES: Final = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "IncompleteSignatureException",
        "InvalidClientTokenId",
        "MissingAuthenticationTokenException",
        "ExpiredTokenException",
        "SignatureDoesNotMatch",
    }
)
_SETUP_RETRIES: Final = 5


class KeySlot(msgspec.Struct, frozen=True):
    """A key the run uses, with a ciphertext under it when the mix decrypts."""

    key_id: str
    ciphertext: bytes | None = None


class Plan(msgspec.Struct, kw_only=True):
    """What set-up prepared: the keys, the plaintext, and which keys it created."""

    keys: list[KeySlot]
    payload: bytes
    created: list[str] = msgspec.field(default_factory=list)
    deleted: int = 0


def request_params(
    op: str, key: KeySlot | None, options: Options, payload: bytes
) -> dict[str, Any]:
    """Return the parameters (boto3-shaped: blobs as bytes) of one request of ``op``."""
    context = {"EncryptionContext": options.context} if options.context else {}
    key_id = key.key_id if key is not None else ""
    match op:
        case "Encrypt":
            return {"KeyId": key_id, "Plaintext": payload, **context}
        case "Decrypt":
            assert key is not None and key.ciphertext is not None
            return {"CiphertextBlob": key.ciphertext, "KeyId": key_id, **context}
        case "ReEncrypt":
            assert key is not None and key.ciphertext is not None
            contexts: dict[str, Any] = (
                {
                    "SourceEncryptionContext": options.context,
                    "DestinationEncryptionContext": options.context,
                }
                if options.context
                else {}
            )
            return {
                "CiphertextBlob": key.ciphertext,
                "SourceKeyId": key_id,
                "DestinationKeyId": key_id,
                **contexts,
            }
        case "GenerateDataKey" | "GenerateDataKeyWithoutPlaintext":
            return {"KeyId": key_id, "KeySpec": "AES_256", **context}
        case "GenerateRandom":
            return {"NumberOfBytes": min(options.payload_size, MAX_RANDOM)}
        case "DescribeKey":
            return {"KeyId": key_id}
    raise AssertionError(op)


def request_table(
    plan: Plan, options: Options
) -> tuple[list[tuple[str, dict[str, Any]]], dict[str, list[int]]]:
    """Return every distinct request of the run and, per operation, the indexes of its requests."""
    requests: list[tuple[str, dict[str, Any]]] = []
    slots: dict[str, list[int]] = {}
    for op in options.mix:
        keys: list[KeySlot | None] = [None] if op == "GenerateRandom" else list(plan.keys)
        for key in keys:
            slots.setdefault(op, []).append(len(requests))
            requests.append((op, request_params(op, key, options, plan.payload)))
    return requests, slots


async def setup_call(
    target: Target, op: str, params: dict[str, Any], key: str | None = None
) -> dict[str, Any]:
    """Make one set-up call, retrying throttles; turn every failure into one UsageError line.

    Raises:
        UsageError: The endpoint is unreachable, refuses the credentials or the key, or fails.
    """
    for attempt in range(_SETUP_RETRIES + 1):
        try:
            return await target.call(op, params)
        except Unreachable as error:
            raise UsageError(f"cannot reach {target.description}: {error}") from None
        except CallFailed as error:
            if error.code in THROTTLE_CODES and attempt < _SETUP_RETRIES:
                await anyio.sleep(0.2 * 2**attempt)
                continue
            if error.code in _AUTH_CODES:
                raise UsageError(
                    f"{target.description} rejected the credentials: {error}"
                ) from None
            if key is not None:
                raise UsageError(f"key {key} cannot be used for {op}: {error}") from None
            raise UsageError(f"set-up call {op} failed: {error}") from None
    raise AssertionError("unreachable")


def _blob(value: object) -> bytes:
    # The HTTP target answers blobs in base64 text, the embedded one in bytes.
    return base64.b64decode(value) if isinstance(value, str) else bytes(value)  # type: ignore[call-overload]


async def _existing_key(target: Target, key_id: str, options: Options) -> None:
    answer = await setup_call(target, "DescribeKey", {"KeyId": key_id}, key_id)
    state = answer.get("KeyMetadata", {}).get("KeyState", "Enabled")
    if state != "Enabled" and set(options.mix) - {"DescribeKey", "GenerateRandom"}:
        raise UsageError(f"key {key_id} cannot be used: its state is {state}")


async def _create_key(target: Target, plan: Plan) -> str:
    description = f"kms-actors loadtest (pid {os.getpid()}); deleted after the run"
    # Shielded: a CreateKey cancelled in flight (Ctrl-C) would leave a key nobody deletes.
    with anyio.CancelScope(shield=True):
        answer = await setup_call(target, "CreateKey", {"Description": description})
        key_id = str(answer["KeyMetadata"]["KeyId"])
        plan.created.append(key_id)
    return key_id


async def _prepare(target: Target, options: Options, plan: Plan) -> None:
    key_ids: list[str] = []
    if options.needs_keys:
        for key_id in options.key_ids:
            await _existing_key(target, key_id, options)
            key_ids.append(key_id)
        while len(key_ids) < options.keys:
            key_ids.append(await _create_key(target, plan))
    for key_id in key_ids:
        ciphertext = None
        if options.needs_ciphertexts:
            params = request_params("Encrypt", KeySlot(key_id), options, plan.payload)
            answer = await setup_call(target, "Encrypt", params, key_id)
            ciphertext = _blob(answer["CiphertextBlob"])
        plan.keys.append(KeySlot(key_id, ciphertext))
    first = plan.keys[0] if plan.keys else None
    for op in options.mix:  # one probe of each operation, so a refusal fails fast
        key = None if op == "GenerateRandom" else first
        params = request_params(op, key, options, plan.payload)
        await setup_call(target, op, params, key.key_id if key is not None else None)


async def _delete_keys(target: Target, plan: Plan) -> None:
    for key_id in plan.created:
        params = {"KeyId": key_id, "PendingWindowInDays": PENDING_WINDOW_DAYS}
        try:
            await target.call("ScheduleKeyDeletion", params)
            plan.deleted += 1
        except (CallFailed, Unreachable) as error:
            sys.stderr.write(
                f"kms-actors loadtest: warning: key {key_id} was not scheduled for deletion: "
                f"{error}\n"
            )


@contextlib.asynccontextmanager
async def prepared(target: Target, options: Options) -> AsyncIterator[Plan]:
    """Prepare the run's keys and ciphertexts; schedule created keys for deletion on exit.

    Clean-up runs however the block ends (error, cancellation, Ctrl-C), shielded and bounded.

    Raises:
        UsageError: A set-up call failed (see ``setup_call``).
    """
    plan = Plan(keys=[], payload=os.urandom(options.payload_size))
    try:
        await _prepare(target, options, plan)
        yield plan
    finally:
        with anyio.CancelScope(shield=True), anyio.move_on_after(60):
            await _delete_keys(target, plan)
