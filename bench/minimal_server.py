"""The issue's reference point: a minimal aiohttp handler that verifies SigV4 and runs AES-GCM.

No router, no key actor, no policy, no model validation: what any KMS front end must at least
do. The full stack's rate is compared to this one and to the bare handler in the same run.
"""

from __future__ import annotations

import base64
import os
import sys

import msgspec
from aiohttp import web
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kms_actors.auth import Identity, IdentityStore, SigV4Verifier

KEY = AESGCM(os.urandom(32))
VERIFIER = SigV4Verifier(
    IdentityStore(
        [
            Identity(
                access_key_id="AKIAEXAMPLEDEV000001",
                secret_access_key="kms-actors-development-secret-key-0001",
                account_id="111122223333",
                arn="arn:aws:iam::111122223333:user/dev",
            )
        ]
    )
)


class _Request(msgspec.Struct):
    Plaintext: bytes
    KeyId: str = ""


_DECODE = msgspec.json.Decoder(_Request)


async def handle(request: web.Request) -> web.Response:
    """Verify the signature, encrypt the plaintext, answer like Encrypt."""
    body = await request.read()
    path, _, query = request.raw_path.partition("?")
    VERIFIER.verify(method="POST", path=path, query=query, headers=request.headers, body=body)
    parsed = _DECODE.decode(body)
    nonce = os.urandom(12)
    blob = nonce + KEY.encrypt(nonce, parsed.Plaintext, None)
    answer = msgspec.json.encode(
        {"CiphertextBlob": base64.b64encode(blob).decode(), "KeyId": parsed.KeyId}
    )
    return web.Response(body=answer, content_type="application/x-amz-json-1.1")


def main() -> None:
    """Serve on the port given as the first argument."""
    app = web.Application()
    app.router.add_post("/", handle)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)


if __name__ == "__main__":
    main()
