"""Key actors (one per KMS key), the key registry and lifecycle timers."""

from kms_actors.keys.actor import KeyActor, KeyDeps
from kms_actors.keys.registry import KeyRegistry
from kms_actors.keys.scheduler import DeletionScheduler

__all__ = ["DeletionScheduler", "KeyActor", "KeyDeps", "KeyRegistry"]
