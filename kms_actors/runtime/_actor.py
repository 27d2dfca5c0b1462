"""Actors: a typed bounded mailbox, ask/tell, and the loop that handles one message at a time.

An ask is answered the moment its handler returns, unless the message carries a ``defer``
hook (``Deferral``): then the hook takes the reply and answers it later, for example once
something the answer depends on (an audit record) is durable. That keeps the asker suspended
exactly once, on its reply, instead of once for the reply and once more for the dependency.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

import anyio
import anyio.lowlevel
import msgspec
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from kms_actors.errors import KmsError, KMSInternalException
from kms_actors.runtime._reply import Reply

log = logging.getLogger("kms_actors.runtime")

M = TypeVar("M")
M_contra = TypeVar("M_contra", contravariant=True)

Envelope = tuple[Any, "Reply[Any] | None"]


class ActorStopped(Exception):
    """The actor stopped (passivated or shut down) before handling the message; ask again."""


class Deferral(Protocol):
    """Takes over answering an ask: what a message's ``defer`` attribute holds, when not None.

    ``run_actor`` calls it instead of answering, with the reply and the handler's outcome
    (``result``, or the KmsError it raised in ``error``); the hook must answer the reply
    exactly once, later or at once, and must not raise (it runs in the actor's task). Crashes,
    cancellations and a stopping actor's queued asks are answered directly, never through it.
    """

    def __call__(self, reply: Reply[Any], result: Any, error: KmsError | None) -> None: ...


class Actor(Protocol[M_contra]):
    """An actor handles one message at a time; the value it returns answers an ask."""

    async def handle(self, message: M_contra) -> Any:
        """Handle one message. A KmsError goes back to the asker; anything else is a crash."""
        ...


class ActorRef(Generic[M]):
    """A handle to send messages to an actor's mailbox."""

    __slots__ = ("_send", "name")

    def __init__(self, name: str, send: MemoryObjectSendStream[Envelope]) -> None:
        self.name = name
        self._send = send

    async def ask(self, message: M) -> Any:
        """Send ``message`` and wait for the actor's answer.

        Raises:
            ActorStopped: The actor stopped before it took the message.
            KmsError: Whatever the actor answered with.
        """
        reply: Reply[Any] = Reply()
        try:
            # Queue without yielding when there is room (anyio's send() always yields first,
            # which costs a whole event-loop round trip per request); wait only when full.
            self._send.send_nowait((message, reply))
        except anyio.WouldBlock:
            try:
                await self._send.send((message, reply))
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                raise ActorStopped(self.name) from None
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            raise ActorStopped(self.name) from None
        return await reply.wait()

    async def tell(self, message: M) -> None:
        """Send ``message`` without waiting for it to be handled (internal events only)."""
        try:
            await self._send.send((message, None))
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            raise ActorStopped(self.name) from None

    def tell_nowait(self, message: M) -> bool:
        """Queue ``message`` if the mailbox has room; return whether it was queued."""
        try:
            self._send.send_nowait((message, None))
        except (anyio.WouldBlock, anyio.BrokenResourceError, anyio.ClosedResourceError):
            return False
        return True


class Mailbox(Generic[M]):
    """A bounded mailbox: the send side is shared via ActorRef, the receive side is the actor's."""

    def __init__(self, name: str, size: int) -> None:
        send, receive = anyio.create_memory_object_stream[Envelope](size)
        self.ref: ActorRef[M] = ActorRef(name, send)
        self._send = send
        self.receive: MemoryObjectReceiveStream[Envelope] = receive

    def drain(self, error: Callable[[], BaseException]) -> int:
        """Answer every queued ask with ``error()`` and close the mailbox; return how many.

        Runs without awaiting, so no message can slip in between the drain and the close.
        """
        count = 0
        while True:
            try:
                _message, reply = self.receive.receive_nowait()
            except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
                break
            count += 1
            if reply is not None:
                reply.fail(error())
        self.receive.close()
        self._send.close()
        return count


class Crashed(Exception):
    """An actor's handler raised something other than a KmsError."""


# How many messages an actor handles back to back before letting other tasks run.
_FAIRNESS = 64


class Stop(msgspec.Struct, frozen=True):
    """Ask an actor to stop after the messages queued before this one (passivation, shutdown)."""


async def run_actor(actor: Actor[Any], mailbox: Mailbox[Any]) -> None:
    """Handle messages one at a time until a Stop message or the mailbox closes.

    A handler's KmsError answers the asker and the actor lives on. Any other exception answers
    the asker with KMSInternalException and raises Crashed for the supervisor to handle. A
    message with a ``defer`` hook (``Deferral``) has its value or KmsError handed to the hook,
    which answers in its own time.
    Waiting is never cut by a timeout: a cancelled receive can lose a message in flight, so
    idle actors are stopped by a Stop message instead.
    """
    receive = mailbox.receive
    streak = 0
    while True:
        # Let other tasks run now and then during a long burst. This sits before taking the
        # next message, so a cancellation here can never strand a message already taken.
        streak += 1
        if streak >= _FAIRNESS:
            streak = 0
            await anyio.lowlevel.checkpoint()
        try:
            message, reply = receive.receive_nowait()
        except anyio.WouldBlock:
            streak = 0
            try:
                message, reply = await receive.receive()
            except (anyio.EndOfStream, anyio.ClosedResourceError):
                return
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            return
        if isinstance(message, Stop):
            if reply is not None:
                reply.set(None)
            return
        try:
            result = await actor.handle(message)
        except KmsError as error:
            if reply is not None:
                defer = getattr(message, "defer", None)
                if defer is None:
                    reply.fail(error)
                else:
                    defer(reply, None, error)
        except Exception as error:
            if reply is not None:
                reply.fail(KMSInternalException())
            raise Crashed(mailbox.ref.name) from error
        except BaseException:
            # Cancelled mid-message (shutdown): the asker still gets an answer.
            if reply is not None:
                reply.fail(KMSInternalException())
            raise
        else:
            if reply is not None:
                defer = getattr(message, "defer", None)
                if defer is None:
                    reply.set(result)
                else:
                    defer(reply, result, None)
