"""The pipe between the service's ``AuditLog`` and its audit writer process.

Each direction is a stream of frames: a 4-byte little-endian length (of what follows), a kind
byte, and a MessagePack body. The service writes to the writer's stdin, the writer answers on
its stdout; the writer's stderr is the service's, for its log lines.

Service to writer:

- ``HELLO`` (``Hello``) first, once: the writer opens the audit database and answers ``READY``
  with its chain head, or ``BROKEN`` (``Broken``) if it cannot.
- ``EVENTS`` and ``REPLAY``: a MessagePack array of events, each a ``CallCapture`` or a
  ``ReadyEvent`` (both arrays, tagged). The writer numbers the events it is sent from 0, in
  order; that position is how both sides name an event. ``REPLAY`` frames come first to a
  restarted writer and carry events the previous one was sent but did not confirm: those
  already stored (found by event id; they are a prefix, since the chain is written in order)
  are skipped.
- ``SIGNED`` (``Signed``): the checkpoint signature the writer asked for.
- ``CLOSE``: commit everything, write the final checkpoint, answer ``CLOSED``, exit. End of
  input means the same (the service is gone), without the final checkpoint's signature.

Writer to service:

- ``PROGRESS`` (``Progress``) after each write attempt: how many events are done (committed,
  or skipped as already stored, or unbuildable: ``bad`` lists the positions of those), and
  whether writes are failing.
- ``SIGN`` (``SignRequest``): sign this checkpoint message with the HSM's checkpoint key (which
  never leaves the service process).
- ``CLOSED`` (``Progress``): the last word.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import struct
from collections.abc import Callable
from typing import Final

import anyio
import msgspec

from kms_actors.audit._event import AuditEvent, CallCapture
from kms_actors.domain.eventloop import on_asyncio

HELLO: Final = 0x48  # H
EVENTS: Final = 0x45  # E
REPLAY: Final = 0x52  # R
SIGNED: Final = 0x53  # S
CLOSE: Final = 0x43  # C
READY: Final = 0x59  # Y
BROKEN: Final = 0x58  # X
PROGRESS: Final = 0x50  # P
SIGN: Final = 0x73  # s
CLOSED: Final = 0x5A  # Z

_LENGTH = struct.Struct("<I")
HEADER_BYTES: Final = _LENGTH.size + 1  # length, kind
# An events frame is built in place: header, a MessagePack array32 header, the events.
EVENTS_PREFIX: Final = HEADER_BYTES + 5
MAX_FRAME: Final = 1 << 30
# One read takes at most what a pipe holds by default (64 KiB). A larger size gains nothing
# and costs: ``os.read`` allocates the whole size first, and a megabyte took ~15 us per read
# against ~1 us (measured here), paid for every progress report and every events frame.
_READ_SIZE = 1 << 16


class Hello(msgspec.Struct, frozen=True, kw_only=True):
    """How the writer is to open and run the audit log."""

    data_dir: str
    synchronous: str
    checkpoint_every: int
    checkpoint_interval: float
    max_batch: int
    retry_interval: float
    log_level: int
    # A captured request's event is named after its number in the service's sequence: the
    # id ``sequence_id(event_id_prefix, first_number + position)``.
    event_id_prefix: str
    first_number: int


class Ready(msgspec.Struct, frozen=True, kw_only=True):
    """The writer is ready; its chain ends at record ``seq``."""

    seq: int


class Broken(msgspec.Struct, frozen=True, kw_only=True):
    """The writer could not open the audit log: the error's class name and message."""

    error: str
    message: str


class Progress(msgspec.Struct, frozen=True, kw_only=True):
    """Where the writer is: events ``0 .. done - 1`` are done, ``bad`` of them unbuildable.

    ``failing`` says the last write failed (the events are kept and retried); the counters
    are the writer's totals: batches and records committed, checkpoints signed.
    """

    done: int
    bad: tuple[int, ...] = ()
    failing: bool = False
    batches: int = 0
    committed: int = 0
    checkpoints: int = 0
    lost: int = 0


class SignRequest(msgspec.Struct, frozen=True, array_like=True):
    """Please sign ``message`` (a checkpoint message); answered by ``Signed`` with ``number``."""

    number: int
    message: bytes


class Signed(msgspec.Struct, frozen=True, array_like=True):
    """The signature for sign request ``number``."""

    number: int
    signature: bytes


class ReadyEvent(msgspec.Struct, frozen=True, array_like=True, tag=2):
    """A whole event (a service event, say) on its way to the writer."""

    event: AuditEvent


Item = CallCapture | ReadyEvent

encoder = msgspec.msgpack.Encoder()
decode_items = msgspec.msgpack.Decoder(list[Item]).decode


def frame(kind: int, body: msgspec.Struct | None = None) -> bytes:
    """Return one frame holding ``body`` (encoded) or nothing."""
    payload = encoder.encode(body) if body is not None else b""
    return _LENGTH.pack(len(payload) + 1) + bytes((kind,)) + payload


def events_buffer(kind: int = EVENTS) -> bytearray:
    """Return an empty events frame; append encoded items, then ``seal_events``."""
    buffer = bytearray(EVENTS_PREFIX)
    buffer[_LENGTH.size] = kind
    buffer[HEADER_BYTES] = 0xDD  # MessagePack array32
    return buffer


def seal_events(buffer: bytearray, count: int) -> bytearray:
    """Fill in the length and item count of an events frame built by ``events_buffer``."""
    _LENGTH.pack_into(buffer, 0, len(buffer) - _LENGTH.size)
    buffer[HEADER_BYTES + 1 : EVENTS_PREFIX] = count.to_bytes(4, "big")
    return buffer


def split_frames(buffer: bytearray) -> list[tuple[int, memoryview]]:
    """Remove and return the complete frames at the start of ``buffer``: (kind, body).

    Raises:
        ValueError: a frame announces an impossible length (the stream is corrupt).
    """
    frames: list[tuple[int, bytes]] = []
    offset = 0
    size = len(buffer)
    while size - offset >= _LENGTH.size:
        (length,) = _LENGTH.unpack_from(buffer, offset)
        if length < 1 or length > MAX_FRAME:
            raise ValueError(f"audit pipe frame of impossible length {length}")
        end = offset + _LENGTH.size + length
        if end > size:
            break
        frames.append((buffer[offset + _LENGTH.size], bytes(buffer[offset + HEADER_BYTES : end])))
        offset = end
    del buffer[:offset]
    return [(kind, memoryview(body)) for kind, body in frames]


class FramePipe:
    """Frames in and frames out, on two non-blocking pipe descriptors (both processes).

    ``send`` writes at once when the pipe takes it, with no await: frames from several tasks
    never interleave, and a progress report need not wait for the event loop's next turn (the
    writer's next batch may be about to block it). What the pipe does not take yet is written
    by ``drain`` as it becomes writable, in order. Descriptors, not anyio streams: per frame
    this is one system call each way and nothing else, on asyncio and Trio alike.
    """

    def __init__(self, fd_in: int, fd_out: int) -> None:
        os.set_blocking(fd_in, False)
        os.set_blocking(fd_out, False)
        self._in = fd_in
        self._out = fd_out
        self._buffer = bytearray()
        self._ended = False
        self._unsent: collections.deque[memoryview] = collections.deque()
        self._writable = anyio.Event()
        self._drained = anyio.Event()
        self.broken = False

    def read_now(self) -> list[tuple[int, memoryview]] | None:
        """Return the complete frames the pipe holds now ([] if none yet), without waiting.

        None means the input has ended (and every complete frame before the end was returned).
        """
        while not self._ended:
            try:
                chunk = os.read(self._in, _READ_SIZE)
            except BlockingIOError:
                break
            except OSError:
                self._ended = True
                break
            if not chunk:
                self._ended = True
                break
            self._buffer += chunk
            if len(chunk) < _READ_SIZE:
                break  # the pipe is empty now: spare the system call that would say so
        frames = split_frames(self._buffer)
        if not frames and self._ended:
            return None
        return frames

    async def frames(self) -> list[tuple[int, memoryview]] | None:
        """Return the next complete frames (waiting for one), or None at end of input."""
        while True:
            frames = self.read_now()
            if frames is None or frames:
                return frames
            await anyio.wait_readable(self._in)

    async def serve(self, handle: Callable[[int, memoryview], None]) -> None:
        """Hand every frame to ``handle(kind, body)`` as it arrives, until the input ends.

        On asyncio the descriptor stays registered with the event loop and ``handle`` runs
        in its reader callback: per arrival, no task wakes and no registration is made and
        undone (``frames`` costs both; measured with bench/bench_audit.py). On Trio, a loop
        over ``frames``. An exception from ``handle`` (or a corrupt stream) stops serving
        and is raised here.
        """
        if not on_asyncio():
            while (frames := await self.frames()) is not None:
                for kind, body in frames:
                    handle(kind, body)
            return
        loop = asyncio.get_running_loop()
        ended = anyio.Event()
        failures: list[Exception] = []

        def readable() -> None:
            try:
                frames = self.read_now()
                if frames is not None:
                    for kind, body in frames:
                        handle(kind, body)
                    return
            except Exception as exc:  # raised by ``serve`` below
                failures.append(exc)
            loop.remove_reader(self._in)
            ended.set()

        loop.add_reader(self._in, readable)
        try:
            readable()  # what arrived before the registration
            await ended.wait()
        finally:
            loop.remove_reader(self._in)
        if failures:
            raise failures[0]

    def send(self, data: bytes | bytearray) -> None:
        """Write one frame now, or queue the part the pipe does not take (``drain``)."""
        if self.broken:
            return
        view = memoryview(data)
        if not self._unsent:
            try:
                written = os.write(self._out, view)
            except BlockingIOError:
                written = 0
            except OSError:  # BrokenPipeError: the other side is gone
                self.broken = True
                return
            if written == len(view):
                return
            view = view[written:]
        # A copy: the caller may reuse its buffer. Queued as chunks, written from the front
        # without moving the rest (a frame can be megabytes when the writer falls behind).
        self._unsent.append(memoryview(bytes(view)))
        self._writable.set()

    async def drain(self) -> None:
        """Write queued output whenever the pipe can take it, until cancelled.

        It may be cancelled and started again (the service runs one per writer process and
        one while closing): it looks at what is queued before it waits, so output queued while
        no drain ran is written too.
        """
        while True:
            while not self._unsent or self.broken:
                await self._writable.wait()
                self._writable = anyio.Event()
            unsent = self._unsent
            while unsent and not self.broken:
                await anyio.wait_writable(self._out)
                chunk = unsent[0]
                try:
                    written = os.write(self._out, chunk)
                except BlockingIOError:
                    continue
                except OSError:
                    self.broken = True
                    break
                if written == len(chunk):
                    unsent.popleft()
                else:
                    unsent[0] = chunk[written:]
            self._drained.set()

    async def flushed(self) -> None:
        """Return once everything sent so far is written (or the pipe is broken)."""
        while self._unsent and not self.broken:
            self._drained = anyio.Event()
            await self._drained.wait()

    def close(self) -> None:
        """Close both descriptors."""
        for fd in (self._in, self._out):
            with contextlib.suppress(OSError):
                os.close(fd)
