"""Cryptographic operations: Encrypt, Decrypt, ReEncrypt, data keys, GenerateRandom.

The key actor admits a request (authorization, state, material) and the crypto runs in the
HSM pool, so a hot key's mailbox is never held while bytes are being encrypted. Encrypt,
Decrypt and the two GenerateDataKey operations are each split into the admission and a
``finish`` (checks, crypto, response). When the router has set a deferral hook (durable audit)
and the HSM runs symmetric crypto inline, ``finish`` runs inside the key actor (``AdmitAnd``):
it cannot yield there, so it holds the mailbox no longer than the admission, and the actor's
answer is then the whole response, released by the audit log once the request's event is
committed; the caller is suspended once per request instead of twice. Otherwise the caller
asks for the admission (``Admit``) and runs ``finish`` itself, as before.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from kms_actors.domain.principal import Caller
from kms_actors.errors import (
    CustomKeyStoreNotFoundException,
    IncorrectKeyException,
    InvalidCiphertextException,
    InvalidKeyUsageException,
    NotFoundException,
    ValidationException,
)
from kms_actors.hsm import INVALID_CIPHERTEXT
from kms_actors.keys.messages import Admission, Admit, AdmitAnd, Auth, Authorized, KeyMessage
from kms_actors.keys.registry import REQUEST_AUDIT
from kms_actors.ops._context import (
    Handler,
    Services,
    check_identity_permission,
    dry_run_check,
    given,
    or_default,
)
from kms_actors.wire import shapes as w

SYMMETRIC = "SYMMETRIC_DEFAULT"
_DATA_KEY_BYTES = {"AES_256": 32, "AES_128": 16}


def _check_algorithm(algorithm: Any, key_arn: str) -> None:
    if given(algorithm) and algorithm != SYMMETRIC:
        raise InvalidKeyUsageException(
            f"The encryption algorithm {algorithm} is not supported by key {key_arn}."
        )


def _material_hex(admission: Admission) -> str:
    return bytes(admission.material.material_id).hex()


def _auth(caller: Caller, operation: str, context: Any, grant_tokens: Any) -> Auth:
    return Auth(
        caller=caller,
        operation=operation,
        encryption_context=or_default(context, None),
        grant_tokens=tuple(or_default(grant_tokens, ())),
    )


Finish = Callable[[Admission], Awaitable[Any]]


def _in_actor(s: Services) -> bool:
    """Say whether to finish the request inside the key actor (see the module docstring)."""
    audit = REQUEST_AUDIT.get()
    return audit is not None and audit.deferral is not None and bool(s.hsm.inline)


async def _admit(
    s: Services, caller: Caller, key_id: str, operation: str, context: Any, grant_tokens: Any
) -> Admission:
    auth = _auth(caller, operation, context, grant_tokens)
    admission: Admission = await s.registry.ask(caller, key_id, Admit(operation), auth=auth)
    return admission


def _blob_command(
    auth: Auth, material_id: bytes, finish: Finish | None, *, by_blob: bool
) -> KeyMessage:
    if finish is None:
        return Admit(auth.operation, material_id)
    return AdmitAnd(auth.operation, material_id, finish, by_blob=by_blob)


async def _admit_blob(
    s: Services,
    caller: Caller,
    blob: bytes,
    key_id: Any,
    auth: Auth,
    finish: Finish | None = None,
) -> Any:
    """Find, authorize and admit the key material a ciphertext blob names (no trial decryption).

    Returns the Admission; with ``finish``, the key actor runs it and this returns its answer.

    Raises:
        InvalidCiphertextException: The blob is malformed or names no key the caller can use.
        IncorrectKeyException: ``key_id`` names another key than the blob's.
        AccessDeniedException: The key's policy (or a grant) does not allow the caller.
    """
    material_id = s.hsm.blob_material_id(blob)
    owner = await s.registry.find_material(material_id)
    if owner is None:
        raise InvalidCiphertextException(INVALID_CIPHERTEXT)
    registry = s.registry
    if given(key_id):
        ref = registry.parse(caller, key_id)
        named = await registry.resolve(caller, ref, cross_account=True)
        if named != owner:
            raise IncorrectKeyException(
                "The key ID in the request does not identify a CMK that can perform this operation."
            )
        command = _blob_command(auth, material_id, finish, by_blob=False)
        return await registry.ask_key(ref, owner, Authorized(auth, command))
    command = _blob_command(auth, material_id, finish, by_blob=True)
    try:
        return await registry.ask_owner(caller, owner, Authorized(auth, command))
    except NotFoundException:
        # A blob of another Region (or a key deleted meanwhile): reveal nothing.
        raise InvalidCiphertextException(INVALID_CIPHERTEXT) from None


async def encrypt(s: Services, caller: Caller, req: w.EncryptRequest) -> w.EncryptResponse:
    """Encrypt up to 4096 bytes under a KMS key.

    Raises:
        NotFoundException, DisabledException, KMSInvalidStateException, KeyUnavailableException,
        InvalidKeyUsageException, DryRunOperationException: As AWS.
    """
    auth = _auth(caller, "Encrypt", req.encryption_context, req.grant_tokens)
    if _in_actor(s):
        finish = functools.partial(_finish_encrypt, s, req)
        command = AdmitAnd("Encrypt", None, finish)
        response: w.EncryptResponse = await s.registry.ask(caller, req.key_id, command, auth=auth)
        return response
    admission = await s.registry.ask(caller, req.key_id, Admit("Encrypt"), auth=auth)
    return await _finish_encrypt(s, req, admission)


async def _finish_encrypt(
    s: Services, req: w.EncryptRequest, admission: Admission
) -> w.EncryptResponse:
    _check_algorithm(req.encryption_algorithm, admission.key.arn)
    dry_run_check(req)
    blob = await s.hsm.encrypt(
        admission.material, req.plaintext, or_default(req.encryption_context, None)
    )
    return w.EncryptResponse(
        ciphertext_blob=blob, key_id=admission.key.arn, encryption_algorithm=SYMMETRIC
    )


def _require_blob(req: Any) -> bytes:
    blob = or_default(req.ciphertext_blob, None)
    if blob is None:
        raise ValidationException(
            "1 validation error detected: Value null at 'ciphertextBlob' failed to satisfy "
            "constraint: Member must not be null"
        )
    return bytes(blob)


async def decrypt(s: Services, caller: Caller, req: w.DecryptRequest) -> w.DecryptResponse:
    """Decrypt a blob; KeyId is optional for symmetric keys.

    Raises:
        InvalidCiphertextException: Tampered, truncated or foreign blob, or wrong context.
        IncorrectKeyException: KeyId names another key than the blob's.
        NotFoundException, DisabledException, KMSInvalidStateException: As AWS.
    """
    blob = _require_blob(req)
    auth = _auth(caller, "Decrypt", req.encryption_context, req.grant_tokens)
    if _in_actor(s):
        finish = functools.partial(_finish_decrypt, s, req, blob)
        response: w.DecryptResponse = await _admit_blob(s, caller, blob, req.key_id, auth, finish)
        return response
    admission: Admission = await _admit_blob(s, caller, blob, req.key_id, auth)
    return await _finish_decrypt(s, req, blob, admission)


async def _finish_decrypt(
    s: Services, req: w.DecryptRequest, blob: bytes, admission: Admission
) -> w.DecryptResponse:
    _check_algorithm(req.encryption_algorithm, admission.key.arn)
    dry_run_check(req)
    plaintext = await s.hsm.decrypt(
        admission.material, blob, or_default(req.encryption_context, None)
    )
    return w.DecryptResponse(
        key_id=admission.key.arn,
        plaintext=plaintext,
        encryption_algorithm=SYMMETRIC,
        key_material_id=_material_hex(admission),
    )


async def re_encrypt(s: Services, caller: Caller, req: w.ReEncryptRequest) -> w.ReEncryptResponse:
    """Decrypt under the source key and encrypt under the destination, never returning plaintext.

    Raises:
        InvalidCiphertextException, IncorrectKeyException, NotFoundException, DisabledException,
        KMSInvalidStateException, InvalidKeyUsageException: As AWS.
    """
    blob = _require_blob(req)
    source_auth = _auth(caller, "ReEncryptFrom", req.source_encryption_context, req.grant_tokens)
    source: Admission = await _admit_blob(s, caller, blob, req.source_key_id, source_auth)
    _check_algorithm(req.source_encryption_algorithm, source.key.arn)
    destination = await _admit(
        s,
        caller,
        req.destination_key_id,
        "ReEncryptTo",
        req.destination_encryption_context,
        req.grant_tokens,
    )
    _check_algorithm(req.destination_encryption_algorithm, destination.key.arn)
    dry_run_check(req)
    plaintext = await s.hsm.decrypt(
        source.material, blob, or_default(req.source_encryption_context, None)
    )
    new_blob = await s.hsm.encrypt(
        destination.material, plaintext, or_default(req.destination_encryption_context, None)
    )
    return w.ReEncryptResponse(
        ciphertext_blob=new_blob,
        source_key_id=source.key.arn,
        key_id=destination.key.arn,
        source_encryption_algorithm=SYMMETRIC,
        destination_encryption_algorithm=SYMMETRIC,
        source_key_material_id=_material_hex(source),
        destination_key_material_id=_material_hex(destination),
    )


def _data_key_size(req: Any) -> int:
    """Return the data key size from exactly one of NumberOfBytes and KeySpec.

    Raises:
        ValidationException: Both or neither were given.
    """
    has_bytes, has_spec = given(req.number_of_bytes), given(req.key_spec)
    if has_bytes == has_spec:
        raise ValidationException("Please specify either number of bytes or key spec.")
    if has_bytes:
        return int(req.number_of_bytes)
    return _DATA_KEY_BYTES[req.key_spec]


async def generate_data_key(
    s: Services, caller: Caller, req: w.GenerateDataKeyRequest
) -> w.GenerateDataKeyResponse:
    """Return a fresh data key in plaintext and wrapped under the KMS key; nothing is stored.

    Raises:
        ValidationException: Both or neither of NumberOfBytes and KeySpec.
        NotFoundException, DisabledException, KMSInvalidStateException: As AWS.
    """
    size = _data_key_size(req)
    if given(req.recipient):
        raise ValidationException("Recipient is not supported by this service yet.")
    auth = _auth(caller, "GenerateDataKey", req.encryption_context, req.grant_tokens)
    if _in_actor(s):
        command = AdmitAnd(auth.operation, None, functools.partial(_finish_data_key, s, req, size))
        response: w.GenerateDataKeyResponse = await s.registry.ask(
            caller, req.key_id, command, auth=auth
        )
        return response
    admission = await s.registry.ask(caller, req.key_id, Admit(auth.operation), auth=auth)
    return await _finish_data_key(s, req, size, admission)


async def _finish_data_key(
    s: Services, req: w.GenerateDataKeyRequest, size: int, admission: Admission
) -> w.GenerateDataKeyResponse:
    dry_run_check(req)
    plaintext, blob = await s.hsm.generate_data_key(
        admission.material, size, or_default(req.encryption_context, None)
    )
    return w.GenerateDataKeyResponse(
        ciphertext_blob=blob,
        plaintext=plaintext,
        key_id=admission.key.arn,
        key_material_id=_material_hex(admission),
    )


async def generate_data_key_without_plaintext(
    s: Services, caller: Caller, req: w.GenerateDataKeyWithoutPlaintextRequest
) -> w.GenerateDataKeyWithoutPlaintextResponse:
    """Return a fresh data key wrapped under the KMS key only.

    Raises:
        ValidationException: Both or neither of NumberOfBytes and KeySpec.
        NotFoundException, DisabledException, KMSInvalidStateException: As AWS.
    """
    size = _data_key_size(req)
    operation = "GenerateDataKeyWithoutPlaintext"
    auth = _auth(caller, operation, req.encryption_context, req.grant_tokens)
    if _in_actor(s):
        finish = functools.partial(_finish_wrapped_data_key, s, req, size)
        response: w.GenerateDataKeyWithoutPlaintextResponse = await s.registry.ask(
            caller, req.key_id, AdmitAnd(operation, None, finish), auth=auth
        )
        return response
    admission = await s.registry.ask(caller, req.key_id, Admit(operation), auth=auth)
    return await _finish_wrapped_data_key(s, req, size, admission)


async def _finish_wrapped_data_key(
    s: Services, req: w.GenerateDataKeyWithoutPlaintextRequest, size: int, admission: Admission
) -> w.GenerateDataKeyWithoutPlaintextResponse:
    dry_run_check(req)
    _plaintext, blob = await s.hsm.generate_data_key(
        admission.material, size, or_default(req.encryption_context, None)
    )
    return w.GenerateDataKeyWithoutPlaintextResponse(
        ciphertext_blob=blob, key_id=admission.key.arn, key_material_id=_material_hex(admission)
    )


async def generate_random(
    s: Services, caller: Caller, req: w.GenerateRandomRequest
) -> w.GenerateRandomResponse:
    """Return 1-1024 random bytes.

    Raises:
        ValidationException: NumberOfBytes missing.
        CustomKeyStoreNotFoundException: A custom key store was named.
    """
    check_identity_permission(caller, "GenerateRandom")
    if not given(req.number_of_bytes):
        raise ValidationException(
            "1 validation error detected: Value null at 'numberOfBytes' failed to satisfy "
            "constraint: Member must not be null"
        )
    if given(req.custom_key_store_id):
        raise CustomKeyStoreNotFoundException(
            f"Custom key store {req.custom_key_store_id} does not exist."
        )
    if given(req.recipient):
        raise ValidationException("Recipient is not supported by this service yet.")
    return w.GenerateRandomResponse(plaintext=await s.hsm.random(req.number_of_bytes))


HANDLERS: dict[str, Handler] = {
    "Encrypt": encrypt,
    "Decrypt": decrypt,
    "ReEncrypt": re_encrypt,
    "GenerateDataKey": generate_data_key,
    "GenerateDataKeyWithoutPlaintext": generate_data_key_without_plaintext,
    "GenerateRandom": generate_random,
}
