"""A bare aiohttp server answering every POST with a fixed small JSON body (the ceiling)."""

from __future__ import annotations

import sys

from aiohttp import web

BODY = b'{"KeyId":"arn:aws:kms:us-east-1:111122223333:key/bare","CiphertextBlob":"AAAA"}'


async def handle(request: web.Request) -> web.Response:
    """Read the body and answer a constant, like the smallest possible KMS front end."""
    await request.read()
    return web.Response(body=BODY, content_type="application/x-amz-json-1.1")


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
