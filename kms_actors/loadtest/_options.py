"""The harness's settings, checked once: every mistake is one ``UsageError`` line."""

from __future__ import annotations

import argparse
import math
import os
import re
from typing import Final

import msgspec

# Operation names as the API spells them; users may write them in any case, with - or _.
OPERATIONS: Final = (
    "Encrypt",
    "Decrypt",
    "ReEncrypt",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "GenerateRandom",
    "DescribeKey",
)
_BY_FOLDED: Final = {name.lower(): name for name in OPERATIONS}
MAX_PAYLOAD: Final = 4096  # Encrypt's plaintext limit
MAX_RANDOM: Final = 1024  # GenerateRandom's NumberOfBytes limit
MAX_KEYS: Final = 1000  # AWS's default customer managed key quota


class UsageError(Exception):
    """Bad usage: the message is the one line printed before exiting with status 2."""


class Options(msgspec.Struct, frozen=True, kw_only=True):
    """Everything one run needs, validated."""

    endpoint: str | None
    embedded: bool
    region: str
    profile: str | None
    mix: dict[str, int]
    payload_size: int
    context: dict[str, str]
    keys: int
    key_ids: list[str]
    concurrency: int | None
    rate: float | None
    duration: float | None
    requests: int | None
    warmup: float
    workers: int
    timeout: float
    max_in_flight: int
    progress: bool | None
    json_path: str | None
    report_dir: str | None

    @property
    def model(self) -> str:
        """Return "open" for a fixed arrival rate, "closed" for fixed concurrency."""
        return "open" if self.rate is not None else "closed"

    @property
    def needs_keys(self) -> bool:
        """Return whether some operation of the mix takes a KMS key."""
        return any(op != "GenerateRandom" for op in self.mix)

    @property
    def needs_ciphertexts(self) -> bool:
        """Return whether the mix decrypts (so set-up must encrypt something first)."""
        return "Decrypt" in self.mix or "ReEncrypt" in self.mix


def operation_name(text: str) -> str:
    """Return the API name of an operation written as encrypt, re-encrypt, GenerateDataKey..."""
    name = _BY_FOLDED.get(text.strip().lower().replace("-", "").replace("_", ""))
    if name is None:
        raise UsageError(f"unknown operation {text.strip()!r}; choose from {', '.join(OPERATIONS)}")
    return name


def parse_mix(text: str) -> dict[str, int]:
    """Parse ``encrypt=70,decrypt=30`` (a bare name has weight 1) into API names and weights."""
    mix: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, weight = part.partition("=")
        op = operation_name(name)
        value = _integer(weight or "1", f"--mix weight of {name.strip()}", minimum=0)
        mix[op] = mix.get(op, 0) + value
    mix = {op: weight for op, weight in mix.items() if weight > 0}
    if not mix:
        raise UsageError(f"--mix {text!r} has no operation with a positive weight")
    return mix


def parse_context(text: str) -> dict[str, str]:
    """Parse ``k=v,k2=v2`` into an encryption context."""
    context: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--context needs key=value pairs separated by commas, got {part!r}")
        context[key.strip()] = value.strip()
    return context


def parse_seconds(text: str, what: str) -> float:
    """Parse ``10``, ``10s``, ``500ms`` or ``2m`` into seconds."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(ms|s|m|h)?\s*", text)
    if match is None:
        raise UsageError(f"{what} must be a duration such as 10, 10s, 500ms or 2m, got {text!r}")
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[match.group(2) or "s"]
    return float(match.group(1)) * scale


def _integer(text: str, what: str, *, minimum: int, maximum: int | None = None) -> int:
    try:
        value = int(text.strip().replace("_", ""))
    except ValueError:
        raise UsageError(f"{what} must be a whole number, got {text!r}") from None
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise UsageError(f"{what} must be {bound}, got {value}")
    return value


def _rate(text: str) -> float:
    raw = text.strip().removesuffix("/s")
    try:
        value = float(raw)
    except ValueError:
        raise UsageError(f"--rate must be requests per second such as 500, got {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise UsageError(f"--rate must be positive, got {text!r}")
    return value


def _region(args: argparse.Namespace) -> str:
    region: str | None = args.region or os.environ.get("AWS_REGION")
    region = region or os.environ.get("AWS_DEFAULT_REGION")
    if region or args.embedded:
        return region or "us-east-1"
    try:  # the AWS config file's region for the profile, as the SDKs do
        import botocore.exceptions
        import botocore.session
    except ImportError:
        return "us-east-1"
    try:
        configured = botocore.session.Session(profile=args.profile).get_config_variable("region")
    except botocore.exceptions.BotoCoreError:
        return "us-east-1"  # an unusable profile is reported when credentials are loaded
    return str(configured or "us-east-1")


def _workload(args: argparse.Namespace) -> tuple[dict[str, int], int, int, list[str]]:
    if args.mix is not None and args.op is not None:
        raise UsageError("give either --op or --mix, not both")
    mix = parse_mix(args.mix) if args.mix is not None else {operation_name(args.op or "encrypt"): 1}
    payload = _integer(args.payload_size, "--payload-size", minimum=1, maximum=MAX_PAYLOAD)
    key_ids = [k.strip() for k in (args.key_id or "").split(",") if k.strip()]
    if key_ids and args.keys is not None:
        raise UsageError("give either --keys (keys the run creates) or --key-id (existing keys)")
    keys = len(key_ids) or _integer(args.keys or "1", "--keys", minimum=1, maximum=MAX_KEYS)
    return mix, payload, keys, key_ids


def _load(args: argparse.Namespace, workers: int) -> tuple[int | None, float | None]:
    if args.rate is not None and args.concurrency is not None:
        raise UsageError("give either --concurrency (closed loop) or --rate (open loop), not both")
    if args.rate is not None:
        return None, _rate(args.rate)
    concurrency = _integer(args.concurrency or str(max(8, workers)), "--concurrency", minimum=1)
    if concurrency < workers:
        raise UsageError(f"--concurrency {concurrency} is less than --workers {workers}")
    return concurrency, None


def _bounds(args: argparse.Namespace) -> tuple[float | None, int | None]:
    if args.duration is not None and args.requests is not None:
        raise UsageError("give either --duration or --requests, not both")
    if args.requests is not None:
        return None, _integer(args.requests, "--requests", minimum=1)
    duration = parse_seconds(args.duration or "10", "--duration")
    if duration <= 0:
        raise UsageError("--duration must be positive")
    return duration, None


def options_from_args(args: argparse.Namespace) -> Options:
    """Check the parsed command line and return the run's options.

    Raises:
        UsageError: An argument is missing, malformed or conflicts with another.
    """
    if args.embedded and args.endpoint:
        raise UsageError("give either --endpoint URL or --embedded, not both")
    if not args.embedded and not args.endpoint:
        raise UsageError("give --endpoint URL (a KMS endpoint) or --embedded (in-process service)")
    if args.endpoint and not re.match(r"https?://[^/\s]+", args.endpoint):
        raise UsageError(f"--endpoint must be an http:// or https:// URL, got {args.endpoint!r}")
    workers = _integer(args.workers, "--workers", minimum=1, maximum=256)
    if args.embedded and workers > 1:
        raise UsageError("--embedded runs the service in this process: --workers must be 1")
    mix, payload, keys, key_ids = _workload(args)
    if args.embedded and key_ids:
        raise UsageError(
            "--key-id cannot be used with --embedded (its data directory starts empty)"
        )
    concurrency, rate = _load(args, workers)
    duration, requests = _bounds(args)
    timeout = parse_seconds(args.timeout, "--timeout")
    if timeout <= 0:
        raise UsageError("--timeout must be positive")
    return Options(
        endpoint=args.endpoint.rstrip("/") + "/" if args.endpoint else None,
        embedded=bool(args.embedded),
        region=_region(args),
        profile=args.profile,
        mix=mix,
        payload_size=payload,
        context=parse_context(args.context or ""),
        keys=keys,
        key_ids=key_ids,
        concurrency=concurrency,
        rate=rate,
        duration=duration,
        requests=requests,
        warmup=parse_seconds(args.warmup, "--warmup"),
        workers=workers,
        timeout=timeout,
        max_in_flight=_integer(args.max_in_flight, "--max-in-flight", minimum=1),
        progress=args.progress,
        json_path=args.json,
        report_dir=args.report,
    )
