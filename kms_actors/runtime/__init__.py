"""A small generic actor runtime on anyio: no KMS knowledge here.

An actor is an object with ``async handle(message)``; it lives in a task of a Supervisor's
task group, reads a bounded mailbox one message at a time, and answers asks through one-shot
Reply slots (or hands the slot to the message's ``Deferral`` hook, which answers later).
Supervision is one-for-one with a restart budget; queued asks are always answered.
"""

from kms_actors.runtime._actor import (
    Actor,
    ActorRef,
    ActorStopped,
    Crashed,
    Deferral,
    Mailbox,
    Stop,
    run_actor,
)
from kms_actors.runtime._reply import Reply
from kms_actors.runtime._supervisor import ExitReason, Supervisor, stop

__all__ = [
    "Actor",
    "ActorRef",
    "ActorStopped",
    "Crashed",
    "Deferral",
    "ExitReason",
    "Mailbox",
    "Reply",
    "Stop",
    "Supervisor",
    "run_actor",
    "stop",
]
