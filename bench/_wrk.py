"""Drive wrk with a rotating set of pre-signed requests and read its results."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
import urllib.parse
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ACCESS_KEY = "AKIAEXAMPLEDEV000001"
SECRET_KEY = "kms-actors-development-secret-key-0001"
REGION = "us-east-1"

_DONE = (
    "function done(summary, latency, requests)\n"
    '  io.write(string.format("STATS %d %d %d %d %d\\n", summary.requests, '
    "summary.errors.status + summary.errors.connect + summary.errors.read + "
    "summary.errors.write + summary.errors.timeout, latency:percentile(50), "
    "latency:percentile(99), summary.duration))\n"
    "end\n"
)


def signed(
    url: str, target: str, body: bytes, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY
) -> dict[str, str]:
    """Return the headers of a SigV4-signed KMS request (valid for 15 minutes)."""
    request = AWSRequest(
        method="POST",
        url=url,
        data=body,
        headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target},
    )
    SigV4Auth(Credentials(access_key, secret_key), "kms", REGION).add_auth(request)
    return {k: str(v) for k, v in request.headers.items()}


def run_wrk(
    url: str, requests: list[tuple[dict[str, str], bytes]], seconds: float, connections: int
) -> dict[str, Any]:
    """Replay ``requests`` round-robin with wrk; return throughput and latency percentiles."""
    parts = urllib.parse.urlsplit(url)
    path = parts.path or "/"
    if len(requests) == 1:
        # One request: wrk's static fast path (no Lua call per request).
        signed_headers, body = requests[0]
        lines = ['wrk.method = "POST"', f"wrk.body = {json.dumps(body.decode())}"]
        lines += [
            f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in signed_headers.items()
        ]
    else:
        # Several: round-robin from Lua. This caps wrk near 20k req/s on one core here, above
        # what the servers measured with it reach, so the generator stays out of the way.
        lines = ["local reqs = {}"]
        for index, (signed_headers, body) in enumerate(requests, 1):
            # wrk.format sends only the headers given: Host (signed by SigV4) must be there.
            headers = {"Host": parts.netloc, **signed_headers}
            lua_headers = ", ".join(
                f"[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()
            )
            lines.append(
                f"reqs[{index}] = wrk.format('POST', {json.dumps(path)}, {{{lua_headers}}}, "
                f"{json.dumps(body.decode())})"
            )
        lines.append("local n = 0")
        lines.append("function request() n = n % #reqs + 1; return reqs[n] end")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write("\n".join(lines) + "\n" + _DONE)
    try:
        out = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{max(1, round(seconds))}s",
                "-s",
                script.name,
                url,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(script.name)
    match = re.search(r"STATS (\d+) (\d+) (\d+) (\d+) (\d+)", out)
    assert match, out
    count, errors, p50, p99, duration_us = map(int, match.groups())
    return {
        "ops_per_s": count / (duration_us / 1e6),
        "p50_us": p50,
        "p99_us": p99,
        "errors": errors,
    }
