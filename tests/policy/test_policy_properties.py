"""Properties of evaluation that hold for any policy: Deny wins, Allow only adds, compiling is
deterministic and statement order is irrelevant."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import event, given
from hypothesis import strategies as st

from kms_actors.domain.policy import Policy, RequestContext, compile_policy, decide
from kms_actors.domain.policy._compile import _compile
from tests.policy._world import (
    ACCOUNT_OF,
    ACCT,
    ALICE,
    APP,
    APP_ROLE,
    BOB,
    CAROL,
    DAVE,
    KEY,
    OPS,
    OTHER,
    OTHER_ROOT,
    ROOT,
    ctx,
    document,
)

CALLERS = [ROOT, ALICE, BOB, APP, OPS, CAROL, DAVE, OTHER_ROOT]
ACTIONS = [
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncryptFrom",
    "kms:GenerateDataKey",
    "kms:DescribeKey",
    "kms:PutKeyPolicy",
    "kms:CreateGrant",
]
ACTION_PATTERNS = [
    *ACTIONS,
    "kms:*",
    "*",
    "kms:Encrypt*",
    "kms:ReEncrypt*",
    "kms:GenerateDataKey*",
    "kms:Describe*",
    "kms:?ecrypt",
]
PRINCIPALS: list[Any] = [
    "*",
    {"AWS": "*"},
    {"AWS": ACCT},
    {"AWS": OTHER},
    {"AWS": ROOT},
    {"AWS": ALICE},
    {"AWS": APP_ROLE},
    {"AWS": [CAROL, BOB]},
    {"AWS": OPS},
    {"Service": "s3.amazonaws.com"},
]
CONDITIONS: list[Any] = [
    {"StringEquals": {"kms:EncryptionContext:app": "billing"}},
    {"StringNotEquals": {"kms:CallerAccount": ACCT}},
    {"ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["app", "env"]}},
    {"ForAnyValue:StringLike": {"kms:EncryptionContextKeys": "a*"}},
    {"Null": {"kms:EncryptionContextKeys": "false"}},
    {"Bool": {"aws:SecureTransport": "true"}},
    {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
    {"StringLikeIfExists": {"kms:ViaService": "ec2.*"}},
]
RESOURCES = ["*", KEY, f"arn:aws:kms:*:{ACCT}:key/*", "arn:aws:kms:*:999999999999:key/*"]
KEYS: list[dict[str, Any]] = [
    {},
    {"kms:EncryptionContext:app": "billing", "kms:EncryptionContextKeys": ("app",)},
    {"aws:SecureTransport": True, "aws:SourceIp": "10.1.2.3"},
    {
        "kms:EncryptionContext:x": "y",
        "kms:EncryptionContextKeys": ("x",),
        "aws:SourceIp": "8.8.8.8",
    },
    {"kms:ViaService": "ec2.us-east-1.amazonaws.com", "aws:SecureTransport": False},
]


@st.composite
def statements(draw: st.DrawFn, *, effect: str | None = None, identity: bool = False) -> Any:
    statement: dict[str, Any] = {
        "Effect": effect or draw(st.sampled_from(["Allow", "Allow", "Allow", "Deny"])),
        draw(st.sampled_from(["Action", "Action", "NotAction"])): draw(
            st.lists(st.sampled_from(ACTION_PATTERNS), min_size=1, max_size=3)
        ),
        draw(st.sampled_from(["Resource", "Resource", "NotResource"])): draw(
            st.sampled_from(RESOURCES)
        ),
    }
    if not identity:
        principal = draw(st.sampled_from(["Principal", "Principal", "NotPrincipal"]))
        statement[principal] = draw(st.sampled_from(PRINCIPALS))
    conditions = draw(st.lists(st.sampled_from(CONDITIONS), max_size=2))
    if conditions:
        statement["Condition"] = {k: v for c in conditions for k, v in c.items()}
    return statement


contexts = st.builds(ctx, st.sampled_from(CALLERS), st.sampled_from(ACTIONS), st.sampled_from(KEYS))
ADMINISTRATOR = {"Effect": "Allow", "Action": "*", "Resource": "*"}
identity_sets = st.lists(
    st.lists(statements(identity=True) | st.just(ADMINISTRATOR), min_size=1, max_size=3),
    max_size=2,
)


def _key(items: list[Any]) -> Policy:
    return compile_policy(document(*items))


def _identities(sets: list[list[Any]]) -> list[Policy]:
    return [compile_policy(document(*items), kind="identity") for items in sets]


@given(
    allows=st.lists(statements(effect="Allow"), max_size=6),
    identity_allows=st.lists(
        st.lists(statements(effect="Allow", identity=True), min_size=1), max_size=2
    ),
    request=contexts,
    where=st.sampled_from(["key", "identity"]),
    spot=st.integers(min_value=0, max_value=6),
    data=st.data(),
)  # fmt: skip
def test_an_explicit_deny_always_wins(
    allows: list[Any],
    identity_allows: list[list[Any]],
    request: RequestContext,
    where: str,
    spot: int,
    data: st.DataObject,
) -> None:
    # A Deny that surely matches: the caller (by ARN, account or "*"), its action, any key.
    who = request.principal_arn
    deny: dict[str, Any] = {
        "Effect": "Deny",
        "Action": data.draw(
            st.sampled_from([request.action, "kms:*", "*", request.action.upper()])
        ),
        "Resource": data.draw(st.sampled_from(["*", KEY])),
    }
    if where == "key":
        deny["Principal"] = data.draw(
            st.sampled_from(["*", {"AWS": "*"}, {"AWS": who}, {"AWS": ACCOUNT_OF[who]}])
        )
        allows.insert(spot, deny)
    else:
        identity_allows.insert(min(spot, len(identity_allows)), [deny])
    key_policy = _key(allows) if allows else _key([{"Effect": "Allow", "Principal": "*",
                                                    "Action": "*", "Resource": "*"}])  # fmt: skip
    decision = decide(request, key_policy, _identities(identity_allows))
    assert not decision.allowed
    assert decision.via == "deny"
    assert (
        decision.reason
        == {
            "key": "with an explicit deny in a resource-based policy",
            "identity": "with an explicit deny in an identity-based policy",
        }[where]
    )


TRUSTS: list[Any] = [
    {"Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "kms:*", "Resource": "*"},
    {"Effect": "Allow", "Principal": {"AWS": [ACCT, OTHER]}, "Action": "*", "Resource": "*"},
]


@given(
    key_items=st.lists(statements(), min_size=1, max_size=5),
    trusts=st.lists(st.sampled_from(TRUSTS), max_size=1),
    identity_items=identity_sets,
    extra=statements(effect="Allow"),
    extra_identity=statements(effect="Allow", identity=True),
    request=contexts,
)
def test_adding_an_allow_never_turns_allow_into_deny(
    key_items: list[Any],
    trusts: list[Any],
    identity_items: list[list[Any]],
    extra: Any,
    extra_identity: Any,
    request: RequestContext,
) -> None:
    key_items = trusts + key_items
    before = decide(request, _key(key_items), _identities(identity_items))
    widened = [
        decide(request, _key([*key_items, extra]), _identities(identity_items)),
        decide(request, _key(key_items), _identities([*identity_items, [extra_identity]])),
    ]
    event(f"before: {before.via}")
    for after in widened:
        if before.allowed:
            assert after.allowed
        if before.via != "deny":
            assert after.via != "deny"


@given(
    items=st.lists(statements(), min_size=1, max_size=6), requests=st.lists(contexts, max_size=6)
)
def test_compiling_is_deterministic(items: list[Any], requests: list[RequestContext]) -> None:
    text = document(*items)
    first, second = _compile.__wrapped__(text, "key"), _compile.__wrapped__(text, "key")
    reformatted = compile_policy(json.dumps(json.loads(text), indent=2, sort_keys=True))
    assert first.statements == second.statements
    assert [s.principal for s in first.statements] == [s.principal for s in reformatted.statements]
    for request in requests:
        assert first.assess(request) == second.assess(request) == reformatted.assess(request)
        assert first.evaluate(request) == second.evaluate(request)


@given(
    items=st.lists(statements(), min_size=2, max_size=6),
    order=st.randoms(use_true_random=False),
    requests=st.lists(contexts, min_size=1, max_size=6),
)
def test_statement_order_does_not_matter(
    items: list[Any], order: Any, requests: list[RequestContext]
) -> None:
    shuffled = list(items)
    order.shuffle(shuffled)
    original, permuted = _key(items), _key(shuffled)
    for request in requests:
        assert original.assess(request) == permuted.assess(request)
