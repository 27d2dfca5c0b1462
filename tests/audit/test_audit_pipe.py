"""The frame pipe between the service and its audit writer process: ``FramePipe.serve``.

On asyncio ``serve`` hands frames over from a reader callback that stays registered with the
event loop; on Trio it loops over ``frames``. Both must deliver every frame once, in order,
including frames that arrived before it started and frames split across reads, end at the end
of input, and raise what the handler raises.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import anyio
import pytest

from kms_actors.audit._pipe import CLOSE, PROGRESS, FramePipe, Progress, frame

pytestmark = pytest.mark.anyio


@pytest.fixture
def pipes() -> Iterator[tuple[FramePipe, int]]:
    """A FramePipe reading from a fresh pipe, and the write end of that pipe."""
    read_end, write_end = os.pipe()
    unused_read, unused_write = os.pipe()  # FramePipe wants an output too
    pipe = FramePipe(read_end, unused_write)
    try:
        yield pipe, write_end
    finally:
        pipe.close()
        for fd in (write_end, unused_read):
            with contextlib.suppress(OSError):  # the test closed it already
                os.close(fd)


async def test_serve_delivers_every_frame_in_order_until_the_input_ends(
    pipes: tuple[FramePipe, int],
) -> None:
    pipe, write_end = pipes
    frames = [frame(PROGRESS, Progress(done=number)) for number in range(300)]
    os.write(write_end, b"".join(frames[:100]))  # before serving starts
    received: list[int] = []

    def handle(kind: int, body: memoryview) -> None:
        assert kind == PROGRESS
        received.append(len(received))

    async def feed() -> None:
        await anyio.sleep(0.01)
        rest = b"".join(frames[100:])
        for start in range(0, len(rest), 7):  # frames split across reads
            os.write(write_end, rest[start : start + 7])
            if start % 700 == 0:
                await anyio.sleep(0)
        os.close(write_end)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(feed)
            await pipe.serve(handle)
    assert received == list(range(300))


async def test_serve_raises_what_the_handler_raises(pipes: tuple[FramePipe, int]) -> None:
    pipe, write_end = pipes
    os.write(write_end, frame(PROGRESS, Progress(done=1)) + frame(CLOSE))
    seen: list[int] = []

    def handle(kind: int, body: memoryview) -> None:
        seen.append(kind)
        if kind == CLOSE:
            raise ValueError("unexpected frame")

    with anyio.fail_after(10), pytest.raises(ValueError, match="unexpected frame"):
        await pipe.serve(handle)
    assert seen == [PROGRESS, CLOSE]


async def test_a_corrupt_stream_stops_serving(pipes: tuple[FramePipe, int]) -> None:
    pipe, write_end = pipes
    os.write(write_end, (0).to_bytes(4, "little") + b"x")  # a frame of impossible length 0

    with anyio.fail_after(10), pytest.raises(ValueError, match="impossible length"):
        await pipe.serve(lambda kind, body: None)
