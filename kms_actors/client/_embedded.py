"""The embedded async client: boto3's KMS client, in-process, over the same router as HTTP."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kms_actors.client._methods import KmsMethods
from kms_actors.domain.identifiers import new_request_id
from kms_actors.domain.policy import compile_policy
from kms_actors.domain.principal import Caller
from kms_actors.errors import KmsError
from kms_actors.ops import Router
from kms_actors.wire import to_python

EMBEDDED_USER_AGENT = "kms_actors-embedded"


class KmsClient(KmsMethods):
    """Methods are boto3's KMS operation names in snake_case, taking boto3's parameters and
    returning boto3's response dicts; errors are KmsError subclasses whose ``code`` is the AWS
    error code (and whose ``response`` looks like botocore's ClientError.response).
    """

    def __init__(self, router: Router, caller: Caller) -> None:
        self._router = router
        self.caller = caller
        self.service: Any = None  # the running Service, set by open_kms (for operators/tests)

    def as_caller(
        self,
        *,
        account_id: str | None = None,
        region: str | None = None,
        arn: str | None = None,
        identity_policies: Sequence[str] | None = None,
    ) -> KmsClient:
        """Return a client on the same service acting as another principal, account or Region.

        ``identity_policies`` are the IAM policy texts attached to that principal.
        """
        account = account_id or self.caller.account_id
        return KmsClient(
            self._router,
            Caller(
                account_id=account,
                region=region or self.caller.region,
                arn=arn or f"arn:{self.caller.partition}:iam::{account}:root",
                partition=self.caller.partition,
                user_agent=EMBEDDED_USER_AGENT,
                identity_policies=tuple(
                    compile_policy(text, kind="identity") for text in (identity_policies or ())
                ),
            ),
        )

    async def _call(self, operation: str, params: Mapping[str, Any]) -> dict[str, Any]:
        request_id = new_request_id()
        try:
            response = await self._router.call_params(
                operation, params, self.caller, blobs_are_base64=False, request_id=request_id
            )
        except KmsError as error:
            error.request_id = request_id  # as botocore's errors carry it
            raise
        result = to_python(operation, response)
        result["ResponseMetadata"] = {
            "RequestId": request_id,
            "HTTPStatusCode": 200,
            "HTTPHeaders": {},
            "RetryAttempts": 0,
        }
        return result
