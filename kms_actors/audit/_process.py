"""Starting and stopping the audit writer process (``_writer_process``) for ``AuditLog``.

``start_writer(hello)`` starts ``python -m kms_actors.audit._writer_process`` with two pipes
for its stdin and stdout (``_pipe.FramePipe`` on this side), sends ``HELLO`` and returns once
the writer has opened the audit database (``READY``); ``WriterProcess.stop`` closes the pipes
and reaps it. The process gets a minimal environment: what Python needs, and where to import
this package from; a root key given in an environment variable, cloud credentials and the like
stay in the service process (the writer holds no key).
"""

from __future__ import annotations

import os
import pathlib
import sys
from collections.abc import Callable

import anyio
import anyio.abc
import msgspec

from kms_actors.audit._pipe import BROKEN, HELLO, READY, Broken, FramePipe, Hello, frame
from kms_actors.store import StoreError

START_TIMEOUT = 60.0  # seconds for the writer process to open the audit database
STOP_TIMEOUT = 60.0  # seconds for it to exit once its pipes are closed
_KEPT_VARIABLES = frozenset({"PATH", "HOME", "TMPDIR", "TZ", "LANG", "SYSTEMROOT"})
# The writer process imports this package from where this process did.
_PACKAGE_ROOT = str(pathlib.Path(__file__).resolve().parents[2])


class WriterProcessError(StoreError):
    """The audit writer process could not open the audit log."""


class WriterProcess:
    """One running writer process and the pipe to it."""

    def __init__(self, process: anyio.abc.Process, pipe: FramePipe) -> None:
        self.process = process
        self.pipe = pipe
        self._frames: list[tuple[int, memoryview]] = []

    async def receive(self) -> tuple[int, memoryview] | None:
        """Return the next frame from the writer (kind, body), or None when it has ended."""
        if not self._frames:
            frames = await self.pipe.frames()
            if frames is None:
                return None
            self._frames = frames[::-1]
        return self._frames.pop()

    async def serve(self, handle: Callable[[int, memoryview], None]) -> None:
        """Hand every frame from the writer to ``handle`` until it ends (``FramePipe.serve``)."""
        while self._frames:  # left over from ``receive``
            handle(*self._frames.pop())
        await self.pipe.serve(handle)

    async def stop(self) -> None:
        """Close the pipes and reap the process (killing it if it does not exit by itself)."""
        process = self.process
        with anyio.CancelScope(shield=True):
            self.pipe.close()
            with anyio.move_on_after(STOP_TIMEOUT):
                await process.wait()
            if process.returncode is None:
                process.kill()
            await process.aclose()


async def start_writer(hello: Hello) -> WriterProcess:
    """Start a writer process and return it once it is ready.

    Raises:
        WriterProcessError: the process could not open the audit log (or exited).
        TimeoutError: it did not answer within ``START_TIMEOUT`` seconds.
    """
    # Two pipes: the writer's stdin and stdout; this process keeps the other ends (which
    # os.pipe makes non-inheritable, so no later child holds them open).
    child_in, to_child = os.pipe()
    from_child, child_out = os.pipe()
    try:
        process = await anyio.open_process(
            [sys.executable, "-m", "kms_actors.audit._writer_process"],
            stdin=child_in,
            stdout=child_out,
            stderr=None,
            env=_environment(),
            # Its own session: a Ctrl-C in the service's terminal reaches the service only,
            # which closes the log properly (the writer also ignores SIGINT, sent directly).
            start_new_session=True,
        )
    except BaseException:
        os.close(to_child)
        os.close(from_child)
        raise
    finally:
        os.close(child_in)
        os.close(child_out)
    writer = WriterProcess(process, FramePipe(from_child, to_child))
    try:
        with anyio.fail_after(START_TIMEOUT):
            writer.pipe.send(frame(HELLO, hello))
            answer = await writer.receive()
    except BaseException:
        await writer.stop()
        raise
    if answer is None or answer[0] != READY:
        await writer.stop()
        if answer is not None and answer[0] == BROKEN:
            broken = msgspec.msgpack.decode(answer[1], type=Broken)
            raise WriterProcessError(f"{broken.error}: {broken.message}")
        raise WriterProcessError("the audit writer process exited before it was ready")
    return writer


def _environment() -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if name in _KEPT_VARIABLES or name.startswith(("LC_", "PYTHON"))
    }
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = _PACKAGE_ROOT + (os.pathsep + path if path else "")
    return env
