"""Cryptographic operations: Encrypt, Decrypt, ReEncrypt, data keys, GenerateRandom.

The key actor only admits a request (state, material); the crypto runs in the HSM pool, so a
hot key's mailbox is never held while bytes are being encrypted.
"""

from __future__ import annotations

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
from kms_actors.keys.messages import Admission, Admit, Auth, Authorized
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


async def _admit(
    s: Services, caller: Caller, key_id: str, operation: str, context: Any, grant_tokens: Any
) -> Admission:
    auth = _auth(caller, operation, context, grant_tokens)
    admission: Admission = await s.registry.ask(caller, key_id, Admit(operation), auth=auth)
    return admission


async def _admit_blob(
    s: Services,
    caller: Caller,
    blob: bytes,
    key_id: Any,
    operation: str,
    context: Any,
    grant_tokens: Any,
) -> Admission:
    """Find, authorize and admit the key material a ciphertext blob names (no trial decryption).

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
    auth = _auth(caller, operation, context, grant_tokens)
    if given(key_id):
        ref = registry.parse(caller, key_id)
        named = await registry.resolve(caller, ref, cross_account=True)
        if named != owner:
            raise IncorrectKeyException(
                "The key ID in the request does not identify a CMK that can perform this operation."
            )
        admission: Admission = await registry.ask_key(
            ref, owner, Authorized(auth, Admit(operation, material_id))
        )
        return admission
    try:
        admission = await registry.ask_owner(
            caller, owner, Authorized(auth, Admit(operation, material_id))
        )
    except NotFoundException:
        # A blob of another Region (or a key deleted meanwhile): reveal nothing.
        raise InvalidCiphertextException(INVALID_CIPHERTEXT) from None
    return admission


async def encrypt(s: Services, caller: Caller, req: w.EncryptRequest) -> w.EncryptResponse:
    """Encrypt up to 4096 bytes under a KMS key.

    Raises:
        NotFoundException, DisabledException, KMSInvalidStateException, KeyUnavailableException,
        InvalidKeyUsageException, DryRunOperationException: As AWS.
    """
    admission = await _admit(
        s, caller, req.key_id, "Encrypt", req.encryption_context, req.grant_tokens
    )
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
    admission = await _admit_blob(
        s, caller, blob, req.key_id, "Decrypt", req.encryption_context, req.grant_tokens
    )
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
    source = await _admit_blob(
        s,
        caller,
        blob,
        req.source_key_id,
        "ReEncryptFrom",
        req.source_encryption_context,
        req.grant_tokens,
    )
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
    admission = await _admit(
        s, caller, req.key_id, "GenerateDataKey", req.encryption_context, req.grant_tokens
    )
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
    admission = await _admit(
        s,
        caller,
        req.key_id,
        "GenerateDataKeyWithoutPlaintext",
        req.encryption_context,
        req.grant_tokens,
    )
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
