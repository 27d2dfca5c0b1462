"""Settings: msgspec Structs loaded from a TOML file, then ``KMS_ACTORS_*`` environment variables.

Every setting ``section.name`` can be overridden by ``KMS_ACTORS_SECTION_NAME`` (e.g.
``KMS_ACTORS_KEYS_MAX_CUSTOMER_KEYS=5``). A bad value stops start-up with ConfigError, a
one-line message naming the setting.
"""

from __future__ import annotations

import os
import pathlib
import re
import tomllib
from collections.abc import Mapping
from typing import Any, Final

import msgspec

from kms_actors.domain.policy import compile_policy
from kms_actors.errors import KmsError

ENV_PREFIX = "KMS_ACTORS_"
DEFAULT_CONFIG = pathlib.Path(__file__).resolve().parent.parent / "config" / "kms.toml"


class ConfigError(ValueError):
    """A setting is missing, of the wrong type or out of range."""


class _Section(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    pass


class ServiceSettings(_Section):
    """Where the service keeps its data and whom it answers as by default."""

    data_dir: str = "./kms-data"
    default_account_id: str = "111122223333"
    default_region: str = "us-east-1"
    partition: str = "aws"


class HttpSettings(_Section):
    """The HTTP server."""

    host: str = "127.0.0.1"
    port: int = 4599
    max_body_bytes: int = 1_048_576  # larger requests get 413 RequestEntityTooLargeException
    shutdown_timeout_seconds: float = 10.0  # in-flight requests may finish within this
    # Development mode: accept ANY credentials without checking signatures (account taken from a
    # 12-digit access key id, else service.default_account_id). Never use it in production.
    dev_mode: bool = False


class IdentitySettings(_Section):
    """One principal allowed to sign requests (an IAM user, role or account root)."""

    access_key_id: str
    secret_access_key: str
    account_id: str
    arn: str
    session_token: str | None = None
    user_id: str = ""
    # IAM identity policies of this principal: inline JSON texts and/or JSON files.
    policies: list[str] = msgspec.field(default_factory=list)
    policy_files: list[str] = msgspec.field(default_factory=list)

    def policy_texts(self) -> list[str]:
        """Return the inline policies, then the files' contents."""
        texts = list(self.policies)
        for name in self.policy_files:
            texts.append(pathlib.Path(name).expanduser().read_text())
        return texts


class RoleSettings(_Section):
    """One IAM role principals may assume with sts:AssumeRole."""

    arn: str  # arn:aws:iam::<account>:role/<path/><name>
    # Who may assume the role: an IAM trust policy (with Principal) allowing sts:AssumeRole.
    trust_policy: str
    # IAM identity policies of the role's sessions: inline JSON texts and/or JSON files.
    policies: list[str] = msgspec.field(default_factory=list)
    policy_files: list[str] = msgspec.field(default_factory=list)
    max_session_duration_seconds: int = 3600  # the longest DurationSeconds AssumeRole accepts

    def policy_texts(self) -> list[str]:
        """Return the inline policies, then the files' contents."""
        texts = list(self.policies)
        for name in self.policy_files:
            texts.append(pathlib.Path(name).expanduser().read_text())
        return texts


class RootKeySettings(_Section):
    """The root of trust: every key material at rest is wrapped under this key."""

    file: str = ""  # default: <data_dir>/root.key, created 0600 on first start
    env: str = "KMS_ACTORS_ROOT_KEY"  # if this variable is set, its base64 value is the root key


class HsmSettings(_Section):
    """The HSM pool that runs all crypto."""

    workers: int = 2
    inline_symmetric: bool = True  # run cheap symmetric jobs inline instead of a thread hop


class AuditSettings(_Section):
    """The audit trail (its own SQLite file, audit.sqlite3, in the data directory)."""

    enabled: bool = True
    # Durable: a response is sent only after its event is committed (group commit keeps this
    # cheap). False records asynchronously: faster, but a crash can lose the last events.
    durable: bool = True
    checkpoint_every: int = 1000  # records between signed checkpoints


class KeySettings(_Section):
    """Key actors and quotas."""

    max_customer_keys: int = 1000  # per account and Region; AWS managed keys do not count
    passivate_after_seconds: float = 300.0
    mailbox_size: int = 1024
    max_restarts: int = 3
    restart_window_seconds: float = 60.0


class Settings(_Section):
    """All settings."""

    service: ServiceSettings = msgspec.field(default_factory=ServiceSettings)
    http: HttpSettings = msgspec.field(default_factory=HttpSettings)
    root_key: RootKeySettings = msgspec.field(default_factory=RootKeySettings)
    hsm: HsmSettings = msgspec.field(default_factory=HsmSettings)
    keys: KeySettings = msgspec.field(default_factory=KeySettings)
    audit: AuditSettings = msgspec.field(default_factory=AuditSettings)
    identities: list[IdentitySettings] = msgspec.field(default_factory=list)
    roles: list[RoleSettings] = msgspec.field(default_factory=list)

    @property
    def data_path(self) -> pathlib.Path:
        """Return the data directory as a path."""
        return pathlib.Path(self.service.data_dir).expanduser()

    @property
    def root_key_path(self) -> pathlib.Path:
        """Return the root key file's path."""
        if self.root_key.file:
            return pathlib.Path(self.root_key.file).expanduser()
        return self.data_path / "root.key"


_RULES: Mapping[str, tuple[float, float]] = {
    "http.port": (0, 65535),
    "http.max_body_bytes": (1024, 1 << 30),
    "http.shutdown_timeout_seconds": (0, 3600),
    "hsm.workers": (1, 256),
    "keys.max_customer_keys": (1, 10_000_000),
    "keys.passivate_after_seconds": (0.01, 10**9),
    "keys.mailbox_size": (1, 10**6),
    "audit.checkpoint_every": (1, 10**9),
    "keys.max_restarts": (0, 10**6),
    "keys.restart_window_seconds": (0.001, 10**9),
}


def load_settings(
    path: str | os.PathLike[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Load settings from ``path`` (default: config/kms.toml when present), env and overrides.

    ``overrides`` maps ``"section.name"`` to a value and wins over everything else.

    Raises:
        ConfigError: A setting is unknown or invalid (one line naming it).
    """
    raw: dict[str, Any] = {}
    file = pathlib.Path(path) if path is not None else DEFAULT_CONFIG
    if path is not None or file.exists():
        try:
            raw = tomllib.loads(file.read_text())
        except OSError as error:
            raise ConfigError(f"cannot read config file {file}: {error.strerror}") from None
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"config file {file} is not valid TOML: {error}") from None
    env = os.environ if env is None else env
    for section, fields in _setting_names().items():
        for name in fields:
            value = env.get(f"{ENV_PREFIX}{section}_{name}".upper())
            if value is not None:
                raw.setdefault(section, {})[name] = value
    for dotted, value in (overrides or {}).items():
        section, _, name = dotted.partition(".")
        raw.setdefault(section, {})[name] = value
    try:
        settings = msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as error:
        raise ConfigError(f"invalid setting {_setting_of(str(error))}") from None
    _check_ranges(settings)
    _check_identities(settings)
    _check_roles(settings)
    return settings


def _setting_names() -> dict[str, tuple[str, ...]]:
    names: dict[str, tuple[str, ...]] = {}
    for section in Settings.__struct_fields__:
        if section in ("identities", "roles"):
            continue  # lists of tables: set in the file, not by environment variables
        section_type = Settings.__annotations__[section]
        cls = globals()[section_type] if isinstance(section_type, str) else section_type
        names[section] = cls.__struct_fields__
    return names


def _setting_of(message: str) -> str:
    """Turn msgspec's "... - at `$.keys.max_customer_keys`" into "keys.max_customer_keys: ..."."""
    text, sep, where = message.rpartition(" - at `$.")
    if not sep:
        return message
    return f"{where.rstrip('`')}: {text}"


def _check_ranges(settings: Settings) -> None:
    for dotted, (low, high) in _RULES.items():
        section, name = dotted.split(".")
        value = getattr(getattr(settings, section), name)
        if not low <= value <= high:
            raise ConfigError(
                f"invalid setting {dotted}: {value} is not between {low:g} and {high:g}"
            )


def _check_identities(settings: Settings) -> None:
    seen: set[str] = set()
    for index, identity in enumerate(settings.identities):
        where = f"identities[{index}]"
        if identity.access_key_id in seen:
            raise ConfigError(
                f"invalid setting {where}.access_key_id: duplicate {identity.access_key_id}"
            )
        seen.add(identity.access_key_id)
        if not (len(identity.account_id) == 12 and identity.account_id.isdigit()):
            raise ConfigError(f"invalid setting {where}.account_id: must be 12 digits")
        if not identity.arn.startswith("arn:") or f":{identity.account_id}:" not in identity.arn:
            raise ConfigError(
                f"invalid setting {where}.arn: must be an ARN in account {identity.account_id}"
            )
        _check_policies(where, identity.policies, identity.policy_files)


# IAM's rules: a name of up to 64 characters, a path of up to 512 (its leading "/" included).
_ROLE_ARN: Final = re.compile(
    r"arn:aws[a-z-]*:iam::(?P<account>\d{12}):role/(?P<path>(?:[\w+=,.@-]+/)*)"
    r"(?P<name>[\w+=,.@-]{1,64})",
    re.ASCII,
)
_SESSION_SECONDS: Final = (900, 43_200)


def _check_roles(settings: Settings) -> None:
    seen: set[tuple[str, str]] = set()
    for index, role in enumerate(settings.roles):
        where = f"roles[{index}]"
        match = _ROLE_ARN.fullmatch(role.arn)
        if match is None or len(match["path"]) > 511:
            raise ConfigError(
                f"invalid setting {where}.arn: must be a role ARN, "
                f"arn:aws:iam::<12-digit account>:role/<optional path/><name>, not {role.arn!r}"
            )
        # IAM role names are unique per account whatever their path, and case-insensitive.
        name = (match["account"], match["name"].lower())
        if name in seen:
            raise ConfigError(f"invalid setting {where}.arn: duplicate role {role.arn}")
        seen.add(name)
        try:
            compile_policy(role.trust_policy, kind="trust")
        except KmsError as error:
            raise ConfigError(f"invalid setting {where}.trust_policy: {error.message}") from None
        low, high = _SESSION_SECONDS
        if not low <= role.max_session_duration_seconds <= high:
            raise ConfigError(
                f"invalid setting {where}.max_session_duration_seconds: "
                f"{role.max_session_duration_seconds} is not between {low} and {high}"
            )
        _check_policies(where, role.policies, role.policy_files)


def _check_policies(where: str, inline: list[str], files: list[str]) -> None:
    texts = [(f"policies[{n}]", text) for n, text in enumerate(inline)]
    for number, name in enumerate(files):
        path = pathlib.Path(name).expanduser()
        if not path.is_file():
            raise ConfigError(f"invalid setting {where}.policy_files[{number}]: no file {name}")
        texts.append((f"policy_files[{number}]", path.read_text()))
    for setting, text in texts:
        try:
            compile_policy(text, kind="identity")
        except KmsError as error:
            raise ConfigError(f"invalid setting {where}.{setting}: {error.message}") from None
