"""The SigV4 algorithm itself: canonical forms, signing keys, signatures, and our own signer.

Every canonical form here is built exactly as botocore builds it for non-S3 services
(``botocore.auth.SigV4Auth``), because botocore, the AWS CLI and the SDKs are the signers we
must agree with byte for byte:

- path: RFC 3986 dot segments and empty segments removed, then URI-encoded once more (so the
  raw ``%`` of an already encoded path becomes ``%25``); ``/`` stays ``/``;
- query: each key and value decoded and re-encoded with only ``A-Za-z0-9-_.~`` unescaped,
  pairs sorted by key then value;
- headers: lowercase names, values trimmed with runs of whitespace collapsed, repeated
  headers joined by commas, sorted.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from typing import Final
from urllib.parse import SplitResult, quote, unquote_to_bytes, urlsplit

ALGORITHM: Final = "AWS4-HMAC-SHA256"
TERMINATOR: Final = "aws4_request"
UNSIGNED_PAYLOAD: Final = "UNSIGNED-PAYLOAD"
EMPTY_SHA256: Final = hashlib.sha256(b"").hexdigest()

# Headers botocore never signs (hop-by-hop, tracing, User-Agent); ours does the same.
_NEVER_SIGNED: Final = frozenset(
    {
        "baggage",
        "connection",
        "expect",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "traceparent",
        "tracestate",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "user-agent",
        "x-amzn-trace-id",
    }
)
# Headers sign_headers computes itself, so a caller's stale copy is never signed.
_REPLACED: Final = frozenset({"authorization", "x-amz-date", "x-amz-security-token"})
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


# --- Canonical request ----------------------------------------------------------------------


def canonical_path(raw_path: str) -> str:
    """Return the canonical URI of a raw (percent-encoded as sent) path."""
    if raw_path in ("/", ""):
        return "/"
    return quote(_remove_dot_segments(raw_path), safe="/~")


def _remove_dot_segments(path: str) -> str:
    # RFC 3986 section 5.2.4, plus AWS's removal of empty segments (as botocore does).
    output: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if output:
                output.pop()
        elif segment and segment != ".":
            output.append(segment)
    first = "/" if path[0] == "/" else ""
    last = "/" if path[-1] == "/" and output else ""
    return first + "/".join(output) + last


def canonical_query(raw_query: str, *, omit: str = "") -> str:
    """Return the canonical query string of a raw query, leaving out the parameter ``omit``."""
    if not raw_query:
        return ""
    pairs: list[tuple[str, str]] = []
    for item in raw_query.split("&"):
        if not item:
            continue
        key, _, value = item.partition("=")
        key = _uri_encode(key)
        if key != omit:
            pairs.append((key, _uri_encode(value)))
    pairs.sort()
    return "&".join(f"{key}={value}" for key, value in pairs)


def _uri_encode(component: str) -> str:
    # Decoding to bytes first keeps invalid UTF-8 escapes byte-exact.
    return quote(unquote_to_bytes(component), safe="-_.~")


def trim_all(value: str) -> str:
    """Trim a header value and collapse its inner runs of whitespace into single spaces."""
    return " ".join(value.split())


def canonical_request(
    method: str,
    path: str,
    query: str,
    signed: list[str],
    header: Callable[[str], str | None],
    payload_hash: str,
) -> str:
    """Return the canonical request; ``signed`` are the sorted lowercase header names."""
    lines = "".join([f"{name}:{' '.join((header(name) or '').split())}\n" for name in signed])
    return f"{method}\n{path}\n{query}\n{lines}\n{';'.join(signed)}\n{payload_hash}"


def string_to_sign(amz_date: str, scope: str, request: str) -> str:
    """Return the string to sign for a canonical request and its credential scope."""
    digest = hashlib.sha256(request.encode("utf-8", "surrogateescape")).hexdigest()
    return f"{ALGORITHM}\n{amz_date}\n{scope}\n{digest}"


def payload_hash(body: bytes) -> str:
    """Return the hex SHA-256 of a request body."""
    return hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256


# --- Keys and signatures --------------------------------------------------------------------


def derive_signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """Return kSigning = HMAC chain of secret -> date -> region -> service -> aws4_request."""
    key = hmac.digest(f"AWS4{secret}".encode(), date.encode(), "sha256")
    key = hmac.digest(key, region.encode(), "sha256")
    key = hmac.digest(key, service.encode(), "sha256")
    return hmac.digest(key, TERMINATOR.encode(), "sha256")


_XOR_IPAD: Final = bytes(x ^ 0x36 for x in range(256))
_XOR_OPAD: Final = bytes(x ^ 0x5C for x in range(256))


class Signer:
    """HMAC-SHA256 under one signing key, with the key's padded blocks hashed once.

    HMAC(K, m) = H((K ^ opad) || H((K ^ ipad) || m)); copying the two prepared SHA-256
    states costs far less than keying a fresh HMAC for every request.
    """

    __slots__ = ("_inner", "_outer")

    def __init__(self, signing_key: bytes) -> None:
        block = signing_key.ljust(64, b"\0")  # a 32-byte key fits SHA-256's 64-byte block
        self._inner = hashlib.sha256(block.translate(_XOR_IPAD))
        self._outer = hashlib.sha256(block.translate(_XOR_OPAD))

    def sign(self, to_sign: str) -> str:
        """Return the hex signature of a string to sign."""
        inner = self._inner.copy()
        inner.update(to_sign.encode())
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()


class SigningKeys:
    """A small bounded cache of signers, keyed by (secret, date, region, service).

    A signing key is valid for one UTC day, so a working set is tiny: one entry per
    credential, region and service in use. When full, the oldest entry is dropped.
    """

    def __init__(self, max_entries: int = 1024) -> None:
        self._signers: dict[tuple[str, str, str, str], Signer] = {}
        self._max = max_entries

    def get(self, secret: str, date: str, region: str, service: str) -> Signer:
        """Return the signer for a signing key, deriving and caching it on a miss."""
        index = (secret, date, region, service)
        signer = self._signers.get(index)
        if signer is None:
            signer = Signer(derive_signing_key(secret, date, region, service))
            if len(self._signers) >= self._max:
                del self._signers[next(iter(self._signers))]
            self._signers[index] = signer
        return signer

    def clear(self) -> None:
        """Forget every cached key."""
        self._signers.clear()

    def __len__(self) -> int:
        return len(self._signers)


# --- Timestamps -----------------------------------------------------------------------------


def format_amz_date(epoch: float) -> str:
    """Return ``YYYYMMDD'T'HHMMSS'Z'`` (ISO 8601 basic format, UTC) for epoch seconds."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(epoch))


def parse_amz_date(value: str) -> float | None:
    """Return the epoch seconds of an ISO 8601 basic UTC timestamp, or None if malformed."""
    if (
        len(value) != 16
        or value[8] != "T"
        or value[15] != "Z"
        or not value.isascii()
        or not (value[:8].isdigit() and value[9:15].isdigit())
    ):
        return None
    ymd, hms = int(value[:8]), int(value[9:15])
    year, month, day = ymd // 10000, ymd // 100 % 100, ymd % 100
    hour, minute, second = hms // 10000, hms // 100 % 100, hms % 100
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    if not (year and 1 <= month <= 12 and 1 <= day <= _MONTH_DAYS[leap][month]):
        return None
    if hour > 23 or minute > 59 or second > 59:
        return None
    # Days since 1970-01-01 in the proleptic Gregorian calendar (719162 days precede it).
    before = year - 1
    days = before * 365 + before // 4 - before // 100 + before // 400 - 719162
    days += _DAYS_BEFORE_MONTH[leap][month] + day - 1
    return float(days * 86400 + hour * 3600 + minute * 60 + second)


_MONTH_DAYS: Final = (
    (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31),
    (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31),
)
_DAYS_BEFORE_MONTH: Final = tuple(
    tuple(sum(lengths[1:month]) for month in range(13)) for lengths in _MONTH_DAYS
)


# --- Our own signer -------------------------------------------------------------------------


def sign_headers(
    *,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    access_key_id: str,
    secret_access_key: str,
    region: str,
    service: str,
    session_token: str | None = None,
    now: float | None = None,
) -> dict[str, str]:
    """Return the headers that sign a request exactly as botocore's ``SigV4Auth`` would.

    Every header in ``headers`` is signed (except the ones botocore never signs), plus
    ``host`` (taken from ``url`` when absent, without a default port), ``x-amz-date`` and,
    with a session token, ``x-amz-security-token``. The returned ``Authorization``,
    ``X-Amz-Date`` and ``X-Amz-Security-Token`` must be sent along with ``headers``.
    """
    amz_date = format_amz_date(time.time() if now is None else now)
    parts = urlsplit(url)
    to_sign: dict[str, str] = {}
    for name, value in headers.items():
        lname = name.lower()
        if lname not in _NEVER_SIGNED and lname not in _REPLACED:
            # Repeated names (a mapping can hold "Foo" and "foo") join as repeated headers do.
            merged = f"{trim_all(to_sign[lname])},{trim_all(value)}" if lname in to_sign else value
            to_sign[lname] = merged
    to_sign.setdefault("host", _host_of(parts))
    to_sign["x-amz-date"] = amz_date
    added = {"X-Amz-Date": amz_date}
    if session_token is not None:
        to_sign["x-amz-security-token"] = added["X-Amz-Security-Token"] = session_token
    signed = sorted(to_sign)
    payload = to_sign.get("x-amz-content-sha256") or payload_hash(body)
    request = canonical_request(
        method.upper(),
        canonical_path(parts.path),
        canonical_query(parts.query),
        signed,
        to_sign.get,
        payload,
    )
    scope = f"{amz_date[:8]}/{region}/{service}/{TERMINATOR}"
    signer = _CLIENT_KEYS.get(secret_access_key, amz_date[:8], region, service)
    value = signer.sign(string_to_sign(amz_date, scope, request))
    added["Authorization"] = (
        f"{ALGORITHM} Credential={access_key_id}/{scope}, "
        f"SignedHeaders={';'.join(signed)}, Signature={value}"
    )
    return added


def _host_of(parts: SplitResult) -> str:
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None and parts.port != _DEFAULT_PORTS.get(parts.scheme):
        host = f"{host}:{parts.port}"
    return host


_CLIENT_KEYS: Final = SigningKeys(64)
