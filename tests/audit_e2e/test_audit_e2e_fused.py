"""Crypto answered by the key actor, released by the audit commit: still one event per request.

In durable mode Encrypt, Decrypt and the GenerateDataKey operations are answered through a
``DeferredAudit`` (``kms_actors.ops._deferred``) instead of the router recording after the
answer. These tests count events per request id on every way such a request can end: an
event missing or recorded twice (by the hook and again by the router) fails them.
"""

from __future__ import annotations

import collections
import pathlib
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest

import kms_actors
from kms_actors import KmsError
from kms_actors.audit import AuditLog, open_audit_log
from kms_actors.domain.clock import FakeClock
from kms_actors.domain.principal import Caller
from kms_actors.errors import KMSInternalException
from kms_actors.ops._deferred import DeferredAudit
from kms_actors.runtime import Reply
from tests.audit.audit_support import random_signer
from tests.audit_e2e.audit_e2e_support import events

pytestmark = pytest.mark.anyio

NOBODY = "arn:aws:iam::111122223333:user/nobody"
CONTEXT = {"purpose": "fused"}
FAIL_WRITES = (
    "CREATE TRIGGER fail_writes BEFORE INSERT ON audit_records"
    " BEGIN SELECT RAISE(ABORT, 'disk is gone'); END"
)


class Requests:
    """Runs requests and remembers each one's request id and outcome (error code or None)."""

    def __init__(self) -> None:
        self.outcomes: dict[str, str | None] = {}

    async def run(self, call: Awaitable[dict[str, Any]]) -> dict[str, Any] | None:
        try:
            reply = await call
        except KmsError as error:
            assert error.request_id is not None
            self.outcomes[error.request_id] = error.code
            return None
        self.outcomes[reply["ResponseMetadata"]["RequestId"]] = None
        return reply


def count_paths(audit: AuditLog) -> collections.Counter[str]:
    """Count how events reach ``audit``: deferred (by the key actor) or recorded (router)."""
    paths: collections.Counter[str] = collections.Counter()
    record, record_deferred = audit.record, audit.record_deferred

    async def counted_record(item: Any) -> None:
        paths["recorded"] += 1
        await record(item)

    def counted_deferred(item: Any, deliver: Callable[[bool], None]) -> None:
        paths["deferred"] += 1
        record_deferred(item, deliver)

    audit.record = counted_record  # type: ignore[method-assign]
    audit.record_deferred = counted_deferred  # type: ignore[method-assign]
    return paths


def by_request(data_dir: pathlib.Path) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for event in events(data_dir):
        found[event["requestID"]].append(event)
    return found


async def exercise(kms: Any, requests: Requests) -> None:
    """Every way a fused request can end, once each."""
    run = requests.run
    key = (await kms.create_key())["KeyMetadata"]["KeyId"]
    disabled = (await kms.create_key())["KeyMetadata"]["KeyId"]
    blob = await run(kms.encrypt(KeyId=key, Plaintext=b"x", EncryptionContext=CONTEXT))
    assert blob is not None
    ciphertext = blob["CiphertextBlob"]
    await run(kms.decrypt(CiphertextBlob=ciphertext, EncryptionContext=CONTEXT))
    await run(kms.decrypt(CiphertextBlob=ciphertext, KeyId=key, EncryptionContext=CONTEXT))
    await run(kms.generate_data_key(KeyId=key, KeySpec="AES_256"))
    await run(kms.generate_data_key_without_plaintext(KeyId=key, NumberOfBytes=16))
    nobody = kms.as_caller(arn=NOBODY)
    await run(nobody.encrypt(KeyId=key, Plaintext=b"x"))  # AccessDenied, from the actor
    await run(nobody.decrypt(CiphertextBlob=ciphertext, EncryptionContext=CONTEXT))
    await run(kms.encrypt(KeyId=key, Plaintext=b"x", DryRun=True))
    await run(kms.generate_data_key(KeyId=key, NumberOfBytes=16, DryRun=True))
    await run(kms.encrypt(KeyId=key, Plaintext=b"x", EncryptionAlgorithm="RSAES_OAEP_SHA_1"))
    await run(kms.decrypt(CiphertextBlob=ciphertext, EncryptionContext={"wrong": "context"}))
    await kms.disable_key(KeyId=disabled)
    await run(kms.encrypt(KeyId=disabled, Plaintext=b"x"))
    await run(kms.encrypt(KeyId="alias/missing", Plaintext=b"x"))  # before the actor
    await run(kms.generate_data_key(KeyId=key))  # invalid: neither size nor spec
    await run(kms.decrypt(CiphertextBlob=b"\x01" + bytes(60)))  # names no known key


EXPECTED = [
    None,
    None,
    None,
    None,
    None,
    "AccessDeniedException",
    "AccessDeniedException",
    "DryRunOperationException",
    "DryRunOperationException",
    "InvalidKeyUsageException",
    "InvalidCiphertextException",
    "DisabledException",
    "NotFoundException",
    "ValidationException",
    "InvalidCiphertextException",
]


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_every_fused_request_leaves_exactly_one_event(tmp_path: pathlib.Path) -> None:
    data_dir = tmp_path / "data"
    requests = Requests()
    async with kms_actors.open_kms(data_dir) as kms:
        paths = count_paths(kms.service.audit)
        await exercise(kms, requests)
    assert list(requests.outcomes.values()) == EXPECTED
    stored = by_request(data_dir)
    for request_id, code in requests.outcomes.items():
        assert len(stored[request_id]) == 1, (request_id, code)
        assert stored[request_id][0].get("errorCode") == code
    # Twelve were answered by their key actor; the router recorded the three refused before
    # it, and the two CreateKey and the DisableKey.
    assert paths["deferred"] == 12
    assert paths["recorded"] == 3 + 3


@pytest.mark.parametrize(
    "overrides",
    [{"audit.durable": False}, {"hsm.inline_symmetric": False}],
    ids=["relaxed", "hsm-on-threads"],
)
async def test_without_durable_inline_crypto_the_router_records(
    tmp_path: pathlib.Path, overrides: dict[str, Any]
) -> None:
    data_dir = tmp_path / "data"
    requests = Requests()
    async with kms_actors.open_kms(data_dir, overrides=overrides) as kms:
        paths = count_paths(kms.service.audit)
        await exercise(kms, requests)
    assert list(requests.outcomes.values()) == EXPECTED
    stored = by_request(data_dir)
    assert all(len(stored[request_id]) == 1 for request_id in requests.outcomes)
    assert paths["deferred"] == 0


async def test_concurrent_fused_requests_each_leave_one_event(tmp_path: pathlib.Path) -> None:
    data_dir = tmp_path / "data"
    requests = Requests()
    async with kms_actors.open_kms(data_dir) as kms:
        key = (await kms.create_key())["KeyMetadata"]["KeyId"]
        nobody = kms.as_caller(arn=NOBODY)

        async def worker(number: int) -> None:
            for round_ in range(20):
                client = nobody if (number + round_) % 5 == 0 else kms
                reply = await requests.run(client.encrypt(KeyId=key, Plaintext=b"x"))
                if reply is not None:
                    await requests.run(kms.decrypt(CiphertextBlob=reply["CiphertextBlob"]))

        async with anyio.create_task_group() as tg:
            for number in range(16):
                tg.start_soon(worker, number)
    stored = by_request(data_dir)
    assert len(requests.outcomes) == 16 * 20 + 16 * 16
    for request_id, code in requests.outcomes.items():
        assert [e.get("errorCode") for e in stored[request_id]] == [code]


async def test_a_log_that_fails_writes_fails_the_answer_and_keeps_the_event(
    tmp_path: pathlib.Path,
) -> None:
    data_dir = tmp_path / "data"
    requests = Requests()
    async with kms_actors.open_kms(data_dir) as kms:
        audit = kms.service.audit
        key = (await kms.create_key())["KeyMetadata"]["KeyId"]
        await requests.run(kms.encrypt(KeyId=key, Plaintext=b"x"))
        await audit.store.execute_for_tests(FAIL_WRITES)
        failed = Requests()
        await failed.run(kms.encrypt(KeyId=key, Plaintext=b"x"))  # ran; its commit failed
        assert list(failed.outcomes.values()) == ["KMSInternalException"]
        assert not audit.healthy
        refused = Requests()
        await refused.run(kms.encrypt(KeyId=key, Plaintext=b"x"))  # refused before running
        assert list(refused.outcomes.values()) == ["KMSInternalException"]
        await audit.store.execute_for_tests("DROP TRIGGER fail_writes")
        with anyio.fail_after(20):
            while not audit.healthy:
                await anyio.sleep(0.01)
        await requests.run(kms.encrypt(KeyId=key, Plaintext=b"x"))
    assert list(requests.outcomes.values()) == [None, None]
    stored = by_request(data_dir)
    for request_id in [*requests.outcomes, *failed.outcomes]:
        assert len(stored[request_id]) == 1
    assert not any(request_id in stored for request_id in refused.outcomes)


def _caller() -> Caller:
    return Caller(account_id="111122223333", region="us-east-1", arn="arn:aws:iam::1:root")


async def test_the_hook_answers_at_once_when_the_log_turned_unhealthy(
    tmp_path: pathlib.Path,
) -> None:
    data_dir = tmp_path / "data"
    async with open_audit_log(data_dir, random_signer(), retry_interval=0.05) as audit:
        await audit.store.execute_for_tests(FAIL_WRITES)
        hook = DeferredAudit(audit, FakeClock(), "Encrypt", _caller(), {}, "failing")
        reply: Reply[Any] = Reply()
        hook(reply, "answer", None)
        with anyio.fail_after(20), pytest.raises(KMSInternalException):
            await reply.wait()  # the commit failed
        assert hook.recorded and not hook.claim()
        late = DeferredAudit(audit, FakeClock(), "Encrypt", _caller(), {}, "late")
        reply = Reply()
        late(reply, "answer", None)  # the log is known to fail: refused at once, kept
        assert reply.answered
        with pytest.raises(KMSInternalException):
            await reply.wait()
        await audit.store.execute_for_tests("DROP TRIGGER fail_writes")
        with anyio.fail_after(20):
            while not audit.healthy:
                await anyio.sleep(0.01)
        await audit.flush()
        records = await audit.store.query(limit=10, descending=False)
    assert len(records) == 2


async def test_a_request_that_ended_first_is_answered_without_a_second_event(
    tmp_path: pathlib.Path,
) -> None:
    async with open_audit_log(tmp_path / "data", random_signer()) as audit:
        paths = count_paths(audit)
        hook = DeferredAudit(audit, FakeClock(), "Encrypt", _caller(), {}, "cancelled")
        assert hook.claim()  # the router recorded it (the caller was cancelled)
        reply: Reply[Any] = Reply()
        hook(reply, "answer", None)
        assert await reply.wait() == "answer"
        assert paths["deferred"] == 0
