"""Clients: the embedded async client (boto3-shaped, in-process)."""

from kms_actors.client._embedded import KmsClient

__all__ = ["KmsClient"]
