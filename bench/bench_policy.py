"""Policy cost: HTTP Encrypt under a realistic key policy with 100 grants vs the default policy.

Run: ``.venv/bin/python -m bench.bench_policy [--seconds S]`` (needs ``wrk``). One server, two
keys, measured one after the other in the same run.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile

import boto3

from bench import _wrk
from bench.bench_http import free_port, wait_http

ACCOUNT = "111122223333"
USER = f"arn:aws:iam::{ACCOUNT}:user/dev"


def realistic_policy() -> str:
    """Five statements, conditions on the encryption context."""
    statements = [
        {
            "Sid": "Root",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
            "Action": "kms:*",
            "Resource": "*",
        },
        {
            "Sid": "AppEncrypt",
            "Effect": "Allow",
            "Principal": {"AWS": USER},
            "Action": ["kms:Encrypt", "kms:GenerateDataKey*"],
            "Resource": "*",
            "Condition": {"StringEquals": {"kms:EncryptionContext:tenant": "bench"}},
        },
        {
            "Sid": "AppDecrypt",
            "Effect": "Allow",
            "Principal": {"AWS": USER},
            "Action": "kms:Decrypt",
            "Resource": "*",
            "Condition": {"StringLike": {"kms:EncryptionContext:purpose": "throughput*"}},
        },
        {
            "Sid": "DenyOtherTenants",
            "Effect": "Deny",
            "Principal": "*",
            "Action": ["kms:Encrypt", "kms:Decrypt"],
            "Resource": "*",
            "Condition": {
                "StringNotEquals": {"kms:EncryptionContext:tenant": ["bench", "ops", "audit"]}
            },
        },
        {
            "Sid": "AuditorsDescribe",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/auditor"},
            "Action": ["kms:DescribeKey", "kms:GetKeyPolicy"],
            "Resource": "*",
        },
    ]
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def main() -> None:
    """Measure both keys and print the ratio."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as data_dir:
        env = dict(os.environ, KMS_ACTORS_SERVICE_DATA_DIR=data_dir)
        args_ = [sys.executable, "-m", "kms_actors", "serve", "--port", str(port)]
        server = subprocess.Popen(
            [*args_, "--log-level", "WARNING"], env=env, stdout=subprocess.DEVNULL
        )
        try:
            url = f"http://127.0.0.1:{port}/"
            wait_http(url + "health")
            kms = boto3.client(
                "kms",
                endpoint_url=url,
                region_name=_wrk.REGION,
                aws_access_key_id=_wrk.ACCESS_KEY,
                aws_secret_access_key=_wrk.SECRET_KEY,
            )
            default_key = kms.create_key()["KeyMetadata"]["KeyId"]
            policy_key = kms.create_key(Policy=realistic_policy())["KeyMetadata"]["KeyId"]
            for index in range(100):
                kms.create_grant(
                    KeyId=policy_key,
                    GranteePrincipal=f"arn:aws:iam::{ACCOUNT}:role/worker-{index}",
                    Operations=["Encrypt", "Decrypt"],
                    Constraints={"EncryptionContextSubset": {"tenant": "bench"}},
                )
            context = {"tenant": "bench", "purpose": "throughput"}
            text = base64.b64encode(os.urandom(256)).decode()
            rates = {}
            for label, key_id in (
                ("default policy", default_key),
                ("5-statement policy + 100 grants", policy_key),
            ):
                body = json.dumps(
                    {"KeyId": key_id, "Plaintext": text, "EncryptionContext": context}
                ).encode()
                kms.encrypt(KeyId=key_id, Plaintext=b"check", EncryptionContext=context)
                result = _wrk.run_wrk(
                    url, [(_wrk.signed(url, "TrentService.Encrypt", body), body)], args.seconds, 64
                )
                rates[label] = result["ops_per_s"]
                print(
                    f"| HTTP Encrypt 256 B, {label} | {result['ops_per_s']:,.0f} | "
                    f"{result['p50_us']:,} | {result['p99_us']:,} | {result['errors']} |",
                    flush=True,
                )
            ratio = rates["5-statement policy + 100 grants"] / rates["default policy"]
            print(f"realistic policy + 100 grants: {ratio:.0%} of the default-policy rate")
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
