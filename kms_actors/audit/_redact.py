"""What an audit event keeps of a request and its response: an allowlist per operation.

The lists follow AWS's CloudTrail log entries for KMS (developer guide, "Examples of AWS KMS
log entries"): key ids, encryption context, algorithms, key specs, byte counts, grant fields,
alias names, descriptions, deletion windows, tags, policy names (and the policy document for
PutKeyPolicy, which CloudTrail records). Never recorded, whatever the operation: plaintext,
ciphertext blobs, messages, signatures, MACs, public keys sent in, data keys, imported key
material, import tokens, grant tokens, key store passwords and proxy credentials.

Anything not on an operation's list is dropped, and a kept parameter is kept only if it has
the expected plain shape: a string, number or boolean, a list of strings, a string-to-string
map, or the nested tag and constraint shapes. ``bytes`` never pass, so a blob sent under an
allowed name (say, as ``KeyId``) is dropped too.
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

# CloudTrail marks these readOnly: true (its examples show Encrypt, Decrypt, ReEncrypt,
# GenerateDataKey*, GenerateRandom and every Describe/Get/List as read-only).
READ_ONLY_OPERATIONS = frozenset(
    {
        "Decapsulate",
        "Decrypt",
        "DeriveSharedSecret",
        "DescribeCustomKeyStores",
        "DescribeKey",
        "Encapsulate",
        "Encrypt",
        "GenerateDataKey",
        "GenerateDataKeyPair",
        "GenerateDataKeyPairWithoutPlaintext",
        "GenerateDataKeyWithoutPlaintext",
        "GenerateMac",
        "GenerateRandom",
        "GetKeyLastUsage",
        "GetKeyPolicy",
        "GetKeyRotationStatus",
        "GetParametersForImport",
        "GetPublicKey",
        "ListAliases",
        "ListGrants",
        "ListKeyPolicies",
        "ListKeyRotations",
        "ListKeys",
        "ListResourceTags",
        "ListRetirableGrants",
        "ReEncrypt",
        "Sign",
        "Verify",
        "VerifyMac",
    }
)

_KEY = ("KeyId",)
_PAGE = ("Limit", "Marker")
_CONTEXT = ("KeyId", "EncryptionContext")
_XKS = (
    "XksProxyUriEndpoint",
    "XksProxyUriPath",
    "XksProxyVpcEndpointServiceName",
    "XksProxyVpcEndpointServiceOwner",
    "XksProxyConnectivity",
)

_REQUEST: dict[str, tuple[str, ...]] = {
    "CancelKeyDeletion": _KEY,
    "ConnectCustomKeyStore": ("CustomKeyStoreId",),
    "CreateAlias": ("AliasName", "TargetKeyId"),
    "CreateCustomKeyStore": (
        "CustomKeyStoreName",
        "CloudHsmClusterId",
        "CustomKeyStoreType",
        *_XKS,
    ),
    "CreateGrant": (
        *_KEY,
        "GranteePrincipal",
        "RetiringPrincipal",
        "Operations",
        "Constraints",
        "Name",
        "GranteeServicePrincipal",
        "RetiringServicePrincipal",
    ),
    "CreateKey": (
        "Description",
        "KeyUsage",
        "KeySpec",
        "CustomerMasterKeySpec",
        "Origin",
        "CustomKeyStoreId",
        "BypassPolicyLockoutSafetyCheck",
        "MultiRegion",
        "XksKeyId",
        "Tags",
        "Policy",
    ),
    "Decapsulate": (*_KEY, "EncapsulationAlgorithm"),
    "Decrypt": (*_CONTEXT, "EncryptionAlgorithm"),
    "DeleteAlias": ("AliasName",),
    "DeleteCustomKeyStore": ("CustomKeyStoreId",),
    "DeleteImportedKeyMaterial": (*_KEY, "KeyMaterialId"),
    "DeriveSharedSecret": (*_KEY, "KeyAgreementAlgorithm"),
    "DescribeCustomKeyStores": ("CustomKeyStoreId", "CustomKeyStoreName", *_PAGE),
    "DescribeKey": _KEY,
    "DisableKey": _KEY,
    "DisableKeyRotation": _KEY,
    "DisconnectCustomKeyStore": ("CustomKeyStoreId",),
    "EnableKey": _KEY,
    "EnableKeyRotation": (*_KEY, "RotationPeriodInDays"),
    "Encapsulate": (*_KEY, "EncapsulationAlgorithm"),
    "Encrypt": (*_CONTEXT, "EncryptionAlgorithm"),
    "GenerateDataKey": (*_CONTEXT, "KeySpec", "NumberOfBytes"),
    "GenerateDataKeyPair": (*_CONTEXT, "KeyPairSpec"),
    "GenerateDataKeyPairWithoutPlaintext": (*_CONTEXT, "KeyPairSpec"),
    "GenerateDataKeyWithoutPlaintext": (*_CONTEXT, "KeySpec", "NumberOfBytes"),
    "GenerateMac": (*_KEY, "MacAlgorithm"),
    "GenerateRandom": (),  # CloudTrail records requestParameters: null
    "GetKeyLastUsage": _KEY,
    "GetKeyPolicy": (*_KEY, "PolicyName"),
    "GetKeyRotationStatus": _KEY,
    "GetParametersForImport": (*_KEY, "WrappingAlgorithm", "WrappingKeySpec"),
    "GetPublicKey": _KEY,
    "ImportKeyMaterial": (
        *_KEY,
        "ValidTo",
        "ExpirationModel",
        "ImportType",
        "KeyMaterialDescription",
        "KeyMaterialId",
    ),
    "ListAliases": (*_KEY, *_PAGE),
    "ListGrants": (*_KEY, "GrantId", "GranteePrincipal", "GranteeServicePrincipal", *_PAGE),
    "ListKeyPolicies": (*_KEY, *_PAGE),
    "ListKeyRotations": (*_KEY, "IncludeKeyMaterial", *_PAGE),
    "ListKeys": (*_PAGE, "ResourceOwners"),
    "ListResourceTags": (*_KEY, *_PAGE),
    "ListRetirableGrants": ("RetiringPrincipal", "RetiringServicePrincipal", *_PAGE),
    "PutKeyPolicy": (*_KEY, "PolicyName", "Policy", "BypassPolicyLockoutSafetyCheck"),
    "ReEncrypt": (
        "SourceKeyId",
        "SourceEncryptionContext",
        "SourceEncryptionAlgorithm",
        "DestinationKeyId",
        "DestinationEncryptionContext",
        "DestinationEncryptionAlgorithm",
    ),
    "ReplicateKey": (
        *_KEY,
        "ReplicaRegion",
        "Description",
        "BypassPolicyLockoutSafetyCheck",
        "Tags",
        "Policy",
    ),
    "RetireGrant": (*_KEY, "GrantId"),
    "RevokeGrant": (*_KEY, "GrantId"),
    "RotateKeyOnDemand": _KEY,
    "ScheduleKeyDeletion": (*_KEY, "PendingWindowInDays"),
    "Sign": (*_KEY, "SigningAlgorithm", "MessageType"),
    "TagResource": (*_KEY, "Tags"),
    "UntagResource": (*_KEY, "TagKeys"),
    "UpdateAlias": ("AliasName", "TargetKeyId"),
    "UpdateCustomKeyStore": (
        "CustomKeyStoreId",
        "NewCustomKeyStoreName",
        "CloudHsmClusterId",
        *_XKS,
    ),
    "UpdateKeyDescription": (*_KEY, "Description"),
    "UpdatePrimaryRegion": (*_KEY, "PrimaryRegion"),
    "Verify": (*_KEY, "SigningAlgorithm", "MessageType"),
    "VerifyMac": (*_KEY, "MacAlgorithm"),
}
_ANY_OPERATION = ("DryRun",)

_RESPONSE: dict[str, tuple[str, ...]] = {
    "CancelKeyDeletion": ("KeyId",),
    "CreateCustomKeyStore": ("CustomKeyStoreId",),
    "CreateGrant": ("GrantId",),  # never the GrantToken
    "CreateKey": ("KeyMetadata",),
    "DeleteImportedKeyMaterial": ("KeyId", "KeyMaterialId"),
    "ImportKeyMaterial": ("KeyId", "KeyMaterialId"),
    "ReplicateKey": ("ReplicaKeyMetadata",),
    "RotateKeyOnDemand": ("KeyId",),
    "ScheduleKeyDeletion": ("KeyId", "KeyState", "DeletionDate", "PendingWindowInDays"),
}

_DROP = object()
_MAX_DEPTH = 4
_SCALARS = (str, bool, int, float)


def camel(name: str) -> str:
    """Return CloudTrail's name for a wire member: ``KeyId`` -> ``keyId``.

    Names opening with an acronym stay as they are (``AWSAccountId``), as CloudTrail has them.
    """
    return name if name[:2].isupper() else name[:1].lower() + name[1:]


def _scalar(value: object) -> object:
    if isinstance(value, _SCALARS) or value is None:
        return value
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    return _DROP


def _string_map(value: object) -> object:
    if type(value) is not dict and not isinstance(value, Mapping):
        return _DROP
    for k, v in value.items():
        if not isinstance(k, str) or not isinstance(v, str):
            return _DROP
    return dict(value)


def _tags(value: object) -> object:
    if not isinstance(value, list | tuple):
        return _DROP
    tags = []
    for tag in value:
        if not isinstance(tag, Mapping):
            return _DROP
        key, val = tag.get("TagKey"), tag.get("TagValue")
        if not isinstance(key, str) or not isinstance(val, str):
            return _DROP
        tags.append({"tagKey": key, "tagValue": val})
    return tags


def _constraints(value: object) -> object:
    if not isinstance(value, Mapping):
        return _DROP
    kept: dict[str, object] = {}
    for name in ("EncryptionContextSubset", "EncryptionContextEquals"):
        if name in value and (context := _string_map(value[name])) is not _DROP:
            kept[camel(name)] = context
    if isinstance(value.get("SourceArn"), str):
        kept["sourceArn"] = value["SourceArn"]
    return kept


def _plain(value: object, depth: int = 0) -> object:
    """Keep JSON-plain data (scalars, lists, string-keyed maps); drop bytes and the rest."""
    if isinstance(value, list | tuple):
        if depth >= _MAX_DEPTH:
            return _DROP
        items = [_plain(item, depth + 1) for item in value]
        return [item for item in items if item is not _DROP]
    if isinstance(value, Mapping):
        if depth >= _MAX_DEPTH or not all(isinstance(k, str) for k in value):
            return _DROP
        members = {camel(k): _plain(v, depth + 1) for k, v in value.items()}
        return {k: v for k, v in members.items() if v is not _DROP}
    return _scalar(value)


def _value(value: object) -> object:
    if isinstance(value, list | tuple):
        return list(value) if all(isinstance(v, str) for v in value) else _DROP
    return _scalar(value)


def _cleaner(name: str) -> Callable[[object], object]:
    if name.endswith("EncryptionContext"):
        return _string_map
    if name == "Tags":
        return _tags
    if name == "Constraints":
        return _constraints
    return _value


# Per operation: each allowed member's wire name, CloudTrail name, the check it must pass,
# and whether a plain scalar passes that check unchanged (then it is kept without calling it:
# this is on the path of every Encrypt and Decrypt in durable mode).
_Entry = tuple[str, str, Callable[[object], object], bool]
_Plan = tuple[_Entry, ...]
_PLAIN_SCALARS = frozenset({str, bool, int, float})


def _plan(names: tuple[str, ...]) -> _Plan:
    return tuple(_entry(name, _cleaner(name)) for name in (*names, *_ANY_OPERATION))


def _entry(name: str, clean: Callable[[object], object]) -> _Entry:
    return name, camel(name), clean, clean is _value


_PLANS = {operation: _plan(names) for operation, names in _REQUEST.items()}
_UNKNOWN_PLAN = _plan(_KEY)


def redact_request(
    operation: str, params: Mapping[str, Any] | msgspec.Struct
) -> dict[str, Any] | None:
    """Return CloudTrail's ``requestParameters`` for a request: the allowlisted members only.

    ``params`` are the request's members by wire name, or the decoded request itself (a
    struct whose fields encode under the wire names): then only the allowlisted members are
    read, so nothing else of it (a plaintext, say) is ever converted or copied.
    Member names become CloudTrail's camelCase (``EncryptionContext`` -> ``encryptionContext``,
    tags as ``{"tagKey", "tagValue"}``). Unknown operations keep only ``keyId``. Returns None
    (CloudTrail's ``null``) when nothing is kept.
    """
    if isinstance(params, msgspec.Struct):
        return _redact_struct(operation, params)
    kept: dict[str, Any] = {}
    for name, cloudtrail_name, clean, scalar_passes in _PLANS.get(operation, _UNKNOWN_PLAN):
        if name in params:
            value = params[name]
            if scalar_passes and type(value) in _PLAIN_SCALARS:
                kept[cloudtrail_name] = value  # what ``_value`` returns for it
            elif (value := clean(value)) is not _DROP:
                kept[cloudtrail_name] = value
    return kept or None


# Per operation and request struct: a ``_Plan`` naming each member by its attribute.
_StructPlan = _Plan


@functools.cache
def _struct_plan(operation: str, struct: type[msgspec.Struct]) -> _StructPlan:
    """Return the plan of ``operation`` for requests decoded as ``struct`` (one per pair)."""
    attributes = {field.encode_name: field.name for field in msgspec.structs.fields(struct)}
    return tuple(
        (attributes[name], cloudtrail_name, clean, scalar_passes)
        for name, cloudtrail_name, clean, scalar_passes in _PLANS.get(operation, _UNKNOWN_PLAN)
        if name in attributes
    )


def _redact_struct(operation: str, request: msgspec.Struct) -> dict[str, Any] | None:
    """``redact_request`` of a decoded request: reads only the allowlisted members, once."""
    kept: dict[str, Any] = {}
    for attribute, cloudtrail_name, clean, scalar_passes in _struct_plan(operation, type(request)):
        value = getattr(request, attribute)
        if value is msgspec.UNSET:
            continue
        if scalar_passes and type(value) in _PLAIN_SCALARS:
            kept[cloudtrail_name] = value  # what ``_value`` returns for it
            continue
        if isinstance(value, msgspec.Struct | list):
            value = msgspec.to_builtins(value)  # tags, grant constraints: small, and rare
        value = clean(value)
        if value is not _DROP:
            kept[cloudtrail_name] = value
    return kept or None


def redact_response(
    operation: str, response: Mapping[str, Any], key_arn: str | None = None
) -> dict[str, Any] | None:
    """Return CloudTrail's ``responseElements`` for a successful mutating request.

    Keeps the allowlisted members (key metadata, grant id, deletion date ...; never a grant
    token, ciphertext or key material) and, as CloudTrail does since December 2022, the
    affected key's ARN as ``keyId``. Returns None when nothing is kept.
    """
    kept: dict[str, Any] = {}
    for name in _RESPONSE.get(operation, ()):
        if name in response and (value := _plain(response[name])) is not _DROP:
            kept[camel(name)] = value
    if key_arn is not None:
        kept.setdefault("keyId", key_arn)
    return kept or None
