"""Clients with boto3's KMS methods: embedded (in-process) and async HTTP (remote)."""

from kms_actors.client._embedded import KmsClient
from kms_actors.client._http import KmsHttpClient, open_kms_http

__all__ = ["KmsClient", "KmsHttpClient", "open_kms_http"]
