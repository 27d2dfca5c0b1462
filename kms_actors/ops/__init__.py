"""AWS KMS operations, one module per operation group, and the Router that dispatches to them."""

from kms_actors.ops._context import Services
from kms_actors.ops.router import HANDLERS, Router

__all__ = ["HANDLERS", "Router", "Services"]
