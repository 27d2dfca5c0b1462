"""[[roles]] in the configuration: loaded into the identity store, or one line naming the fault."""

from __future__ import annotations

import json
import pathlib

import pytest

from kms_actors.auth import RoleStore
from kms_actors.config import ConfigError, Settings, load_settings
from kms_actors.service import identity_store

TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "111122223333"}, "Action": "sts:AssumeRole"}
        ],
    }
)
POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}],
    }
)
ARN = "arn:aws:iam::111122223333:role/app"


def _load(tmp_path: pathlib.Path, *roles: dict[str, object]) -> Settings:
    lines = []
    for role in roles:
        lines.append("[[roles]]")
        lines.extend(f"{name} = {json.dumps(value)}" for name, value in role.items())
    path = tmp_path / "kms.toml"
    path.write_text("\n".join(lines) + "\n")
    return load_settings(path, env={})


def _role(**changes: object) -> dict[str, object]:
    return {"arn": ARN, "trust_policy": TRUST, **changes}


def test_roles_are_loaded_with_compiled_policies(tmp_path: pathlib.Path) -> None:
    policy_file = tmp_path / "reader.json"
    policy_file.write_text(POLICY)
    settings = _load(
        tmp_path,
        _role(policies=[POLICY], max_session_duration_seconds=43200),
        _role(
            arn="arn:aws:iam::111122223333:role/team/a.b/reader", policy_files=[str(policy_file)]
        ),
    )
    store = identity_store(settings)
    assert isinstance(store, RoleStore)
    app = store.roles[ARN]
    assert (app.name, app.account_id, app.max_session_seconds) == ("app", "111122223333", 43200)
    assert app.trust_policy.kind == "trust" and [p.kind for p in app.policies] == ["identity"]
    reader = store.roles["arn:aws:iam::111122223333:role/team/a.b/reader"]
    assert reader.name == "reader" and reader.max_session_seconds == 3600
    assert [p.text for p in reader.policies] == [POLICY]
    assert reader.role_id.startswith("AROA") and reader.role_id != app.role_id


def test_no_roles_by_default(tmp_path: pathlib.Path) -> None:
    settings = _load(tmp_path)
    assert settings.roles == []


@pytest.mark.parametrize(
    ("role", "message"),
    [
        (
            _role(arn="arn:aws:iam::111122223333:user/app"),
            "roles[0].arn: must be a role ARN, arn:aws:iam::<12-digit account>:role/"
            "<optional path/><name>, not 'arn:aws:iam::111122223333:user/app'",
        ),
        (_role(arn="arn:aws:iam::1111:role/app"), "roles[0].arn: must be a role ARN"),
        (_role(arn=ARN + "/"), "roles[0].arn: must be a role ARN"),
        (_role(arn=f"arn:aws:iam::111122223333:role/{'n' * 65}"), "roles[0].arn: must be a role"),
        (_role(trust_policy="{not json"), "roles[0].trust_policy: "),
        (
            _role(trust_policy=POLICY),  # no Principal: an identity policy, not a trust policy
            "roles[0].trust_policy: ",
        ),
        (
            _role(max_session_duration_seconds=899),
            "roles[0].max_session_duration_seconds: 899 is not between 900 and 43200",
        ),
        (
            _role(max_session_duration_seconds=43201),
            "roles[0].max_session_duration_seconds: 43201 is not between 900 and 43200",
        ),
        (_role(max_session_duration_seconds="an hour"), "roles[0].max_session_duration_seconds"),
        (_role(policies=['{"Statement": 3}']), "roles[0].policies[0]: "),
        (_role(policy_files=["/nonexistent/p.json"]), "roles[0].policy_files[0]: no file"),
        (_role(trust="x"), "roles[0]: Object contains unknown field `trust`"),
        ({"arn": ARN}, "roles[0]: Object missing required field `trust_policy`"),
    ],
)
def test_bad_role_settings(tmp_path: pathlib.Path, role: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, role)
    text = str(caught.value)
    assert text.startswith("invalid setting ") and message in text, text
    assert "\n" not in text


def test_role_names_are_unique_per_account_whatever_the_path(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ConfigError, match=r"^invalid setting roles\[1\]\.arn: duplicate role"):
        _load(tmp_path, _role(), _role(arn="arn:aws:iam::111122223333:role/team/App"))
    # The same name in another account is another role.
    _load(tmp_path, _role(), _role(arn="arn:aws:iam::444455556666:role/app"))
