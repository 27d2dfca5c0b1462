"""The events on their way to the audit writer process: encoded, framed, awaiting confirmation.

Events are numbered in the order they are queued. ``Outbox.append`` encodes one (MessagePack,
a few hundred bytes) onto the frame in the making; ``take_frame`` seals that frame for the
sender, so events from requests answered in the same loop turn travel together, in one system
call. A sent frame is kept, with the event its durable callers wait on, until the writer
confirms every event in it (``confirm``); a new writer process is sent the unconfirmed frames
again (``replay``). ``AuditLog`` (``_log``) decides when to send and what confirmation means.
"""

from __future__ import annotations

import collections
from collections.abc import Iterator

import anyio

from kms_actors.audit._event import AuditEvent, CallCapture
from kms_actors.audit._pipe import REPLAY, ReadyEvent, encoder, events_buffer, seal_events

_KIND_OFFSET = 4  # where a frame's kind byte is


class _Frame:
    """A frame of events sent to (or being sent to) the writer, kept until it confirms them."""

    __slots__ = ("data", "end", "event", "start")

    def __init__(self, start: int, end: int, data: bytearray, event: anyio.Event | None) -> None:
        self.start = start
        self.end = end
        self.data = data
        self.event = event  # set when the frame is done (or the log fails); None if unwatched


class Outbox:
    """Events ``0 .. queued - 1``: those from ``buffer_start`` on are in the frame in the
    making, the others in ``frames`` (sent, not yet confirmed, oldest first) or confirmed.

    ``waiting`` is the event the durable callers of the frame in the making wait on (made by
    the first of them); it goes with the frame.
    """

    __slots__ = ("_buffer", "_encode_into", "buffer_start", "frames", "queued", "waiting")

    def __init__(self) -> None:
        self._encode_into = encoder.encode_into
        self._buffer = events_buffer()
        self.buffer_start = 0
        self.queued = 0
        self.frames: collections.deque[_Frame] = collections.deque()
        self.waiting: anyio.Event | None = None

    @property
    def unsent(self) -> bool:
        """Whether events wait for the next frame."""
        return self.queued > self.buffer_start

    @property
    def oldest_unconfirmed(self) -> int:
        """The number of the oldest event not confirmed (``queued`` if there is none)."""
        return self.frames[0].start if self.frames else self.buffer_start

    def append(self, item: CallCapture | AuditEvent) -> int:
        """Encode one event onto the frame in the making; return its number.

        An event that cannot be encoded (a bug) raises its error and is not queued.
        """
        buffer = self._buffer
        size = len(buffer)
        try:
            self._encode_into(
                item if isinstance(item, CallCapture) else ReadyEvent(item), buffer, -1
            )
        except Exception:
            del buffer[size:]
            raise
        index = self.queued
        self.queued = index + 1
        return index

    def take_frame(self) -> bytearray:
        """Seal the frame in the making, keep it as sent, and return its bytes."""
        data = seal_events(self._buffer, self.queued - self.buffer_start)
        self.frames.append(_Frame(self.buffer_start, self.queued, data, self.waiting))
        self.waiting = None
        self._buffer = events_buffer()
        self.buffer_start = self.queued
        return data

    def confirm(self, done: int) -> None:
        """Drop the frames whose events are all before ``done``, waking their callers."""
        frames = self.frames
        while frames and frames[0].end <= done:
            event = frames.popleft().event
            if event is not None:
                event.set()

    def replay(self) -> Iterator[bytearray]:
        """Yield the unconfirmed frames, oldest first, marked for a new writer to take over."""
        for sent in self.frames:
            sent.data[_KIND_OFFSET] = REPLAY
            yield sent.data

    def wake_all(self) -> None:
        """Wake every caller waiting for a frame (sent or in the making)."""
        for sent in self.frames:
            if sent.event is not None:
                sent.event.set()
                sent.event = None
        if self.waiting is not None:
            self.waiting.set()
            self.waiting = None
