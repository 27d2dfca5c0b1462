"""The HTTP JSON API: the AWS KMS wire protocol (JSON 1.1 over HTTP, SigV4) on aiohttp.

``serve_http`` runs the app inside the service's task group; one POST handler verifies the
signature and enters the service through the same Router as the embedded client.
"""

from kms_actors.http._app import build_app
from kms_actors.http._server import serve_http

__all__ = ["build_app", "serve_http"]
