"""Shared values and builders for the audit tests."""

from __future__ import annotations

import base64
import os
from typing import Any

from kms_actors.audit import AuditEvent, api_call_event
from kms_actors.domain.principal import Caller
from kms_actors.errors import KmsError
from kms_actors.hsm import CheckpointSigner, RootKey, checkpoint_signer

ACCOUNT = "111122223333"
OTHER_ACCOUNT = "444455556666"
REGION = "us-west-2"
KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{KEY_ID}"
OTHER_KEY_ID = "0987dcba-09fe-87dc-65ba-ab0987654321"
OTHER_KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{OTHER_KEY_ID}"
ALICE = f"arn:aws:iam::{ACCOUNT}:user/Alice"
BOB = f"arn:aws:iam::{ACCOUNT}:user/Bob"
START = 1_800_000_000.0


def random_signer() -> CheckpointSigner:
    """Return a checkpoint signer under a fresh random root key."""
    return checkpoint_signer(RootKey.from_base64(base64.b64encode(os.urandom(32)).decode()))


def caller(
    arn: str = ALICE, *, account_id: str = ACCOUNT, access_key_id: str = "AKIAALICE"
) -> Caller:
    """Return a caller as the HTTP layer would describe it."""
    return Caller(
        account_id=account_id,
        region=REGION,
        arn=arn,
        access_key_id=access_key_id,
        source_ip="192.0.2.0",
        user_agent="aws-cli/2.15",
    )


def event(
    number: int = 0,
    *,
    operation: str = "Encrypt",
    who: Caller | None = None,
    key_arn: str | None = KEY_ARN,
    params: dict[str, Any] | None = None,
    error: KmsError | None = None,
    at: float | None = None,
) -> AuditEvent:
    """Return an API call event; ``number`` spaces events one second apart from START."""
    return api_call_event(
        operation=operation,
        caller=who or caller(),
        params=params if params is not None else {"KeyId": key_arn or "", "Plaintext": b"x"},
        event_time=at if at is not None else START + number,
        request_id=f"request-{number}",
        resources=[key_arn] if key_arn else [],
        error=error,
    )
