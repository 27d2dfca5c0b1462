"""Who is calling: AWS Signature Version 4 verification and the identities behind access keys.

How it is built: ``_sigv4`` holds the algorithm (canonical forms exactly as botocore builds
them, signing keys, signatures, and ``sign_headers`` for our own client); ``_request`` reads
the authentication out of a request (Authorization header or presigned query) with AWS's
"incomplete signature" errors; ``_verify`` checks clock, scope, credentials and signature in
AWS's order; ``_identity`` maps access keys to principals; ``_roles`` holds IAM roles and
issues AssumeRole sessions into the store (``RoleStore``).

Development mode (``IdentityStore(..., dev_mode=True)``) accepts ANY access key and checks NO
signature: it exists so boto3 can talk to a local server with made-up credentials.
"""

from kms_actors.auth._identity import Identity, IdentityStore
from kms_actors.auth._roles import AssumeRole, AssumeRoleError, Role, RoleStore
from kms_actors.auth._sigv4 import sign_headers
from kms_actors.auth._verify import SigV4Verifier, Verified

__all__ = [
    "AssumeRole",
    "AssumeRoleError",
    "Identity",
    "IdentityStore",
    "Role",
    "RoleStore",
    "SigV4Verifier",
    "Verified",
    "sign_headers",
]
