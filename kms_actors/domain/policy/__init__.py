"""IAM policy grammar and AWS's authorization logic for KMS keys.

``compile_policy`` parses and validates a key, identity or trust policy once, turning
actions, resources, principals and conditions into matchers; ``Policy.evaluate`` then
answers for one ``RequestContext`` in a few microseconds. ``decide`` combines a key policy
with the caller's identity policies as AWS does (explicit deny wins; a key policy that names
the account delegates to IAM; cross-account use needs both sides), and
``access_denied_message`` words the refusal as AWS does. ``lockout_check`` is the
PutKeyPolicy/CreateKey safety check and ``default_key_policy`` AWS's default policy text.

Modules: ``_context`` (request context, caller parsing), ``_match`` (wildcards, ARNs, policy
variables), ``_values`` and ``_conditions`` (condition operators), ``_principals``,
``_compile`` (validation), ``_policy`` (evaluation), ``_decide`` (the decision).
"""

from kms_actors.domain.policy._compile import VERSIONS, compile_policy
from kms_actors.domain.policy._conditions import ConditionSpec
from kms_actors.domain.policy._context import (
    CallerIdentity,
    ConditionValue,
    RequestContext,
    encryption_context_keys,
    identify,
)
from kms_actors.domain.policy._decide import (
    LOCKOUT_MESSAGE,
    Decision,
    Via,
    access_denied_message,
    decide,
    default_key_policy,
    lockout_check,
    resource_account,
)
from kms_actors.domain.policy._errors import INVALID_PRINCIPALS, KEY_POLICY_MAX_BYTES
from kms_actors.domain.policy._policy import (
    Assessment,
    Effect,
    Policy,
    PolicyKind,
    StatementSpec,
)

__all__ = [
    "INVALID_PRINCIPALS",
    "KEY_POLICY_MAX_BYTES",
    "LOCKOUT_MESSAGE",
    "VERSIONS",
    "Assessment",
    "CallerIdentity",
    "ConditionSpec",
    "ConditionValue",
    "Decision",
    "Effect",
    "Policy",
    "PolicyKind",
    "RequestContext",
    "StatementSpec",
    "Via",
    "access_denied_message",
    "compile_policy",
    "decide",
    "default_key_policy",
    "encryption_context_keys",
    "identify",
    "lockout_check",
    "resource_account",
]
