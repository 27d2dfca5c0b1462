"""Key policy operations: GetKeyPolicy, PutKeyPolicy, ListKeyPolicies."""

from __future__ import annotations

from kms_actors.domain.policy import compile_policy
from kms_actors.domain.principal import Caller
from kms_actors.errors import NotFoundException
from kms_actors.keys import messages as m
from kms_actors.ops._context import Handler, Services, auth, or_default
from kms_actors.wire import shapes as w

DEFAULT = "default"


def _check_name(name: object) -> None:
    """Every key has exactly one policy, named "default".

    Raises:
        NotFoundException: Another policy name was given.
    """
    if or_default(name, DEFAULT) != DEFAULT:
        raise NotFoundException("No such policy exists")


async def get_key_policy(
    s: Services, caller: Caller, req: w.GetKeyPolicyRequest
) -> w.GetKeyPolicyResponse:
    """GetKeyPolicy.

    Raises:
        NotFoundException: No such key, or a policy name other than "default".
        AccessDeniedException: The caller may not read the policy.
    """
    _check_name(req.policy_name)
    text: str = await s.registry.ask(
        caller, req.key_id, m.GetPolicy(), auth=auth(caller, "GetKeyPolicy")
    )
    return w.GetKeyPolicyResponse(policy=text, policy_name=DEFAULT)


async def put_key_policy(
    s: Services, caller: Caller, req: w.PutKeyPolicyRequest
) -> w.PutKeyPolicyResponse:
    """PutKeyPolicy: takes effect for every request admitted after it returns.

    Raises:
        MalformedPolicyDocumentException: The policy is malformed, or would lock the caller
            out (unless BypassPolicyLockoutSafetyCheck).
        LimitExceededException: The policy is larger than 32 KB.
        NotFoundException, KMSInvalidStateException, AccessDeniedException: As AWS.
    """
    _check_name(req.policy_name)
    compile_policy(req.policy)  # malformed policies fail before the key is asked
    bypass = req.bypass_policy_lockout_safety_check is True
    await s.registry.ask(
        caller, req.key_id, m.PutPolicy(req.policy, bypass), auth=auth(caller, "PutKeyPolicy")
    )
    return w.PutKeyPolicyResponse()


async def list_key_policies(
    s: Services, caller: Caller, req: w.ListKeyPoliciesRequest
) -> w.ListKeyPoliciesResponse:
    """ListKeyPolicies: always ["default"].

    Raises:
        NotFoundException, AccessDeniedException: As AWS.
    """
    await s.registry.ask(caller, req.key_id, m.Describe(), auth=auth(caller, "ListKeyPolicies"))
    return w.ListKeyPoliciesResponse(policy_names=[DEFAULT], truncated=False)


HANDLERS: dict[str, Handler] = {
    "GetKeyPolicy": get_key_policy,
    "PutKeyPolicy": put_key_policy,
    "ListKeyPolicies": list_key_policies,
}
