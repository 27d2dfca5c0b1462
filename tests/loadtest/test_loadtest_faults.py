"""The harness against a fake server that throttles, fails and stalls in a known pattern."""

from __future__ import annotations

import argparse
import contextlib
import json
from collections.abc import AsyncIterator, Callable

import anyio
import pytest
from aiohttp import web

from kms_actors.loadtest import Report, add_parser, execute, options_from_args
from kms_actors.loadtest._histogram import Histogram
from kms_actors.loadtest._report import encode_report

JSON_11 = "application/x-amz-json-1.1"
Answer = tuple[int, bytes]
_OK = (200, b'{"CiphertextBlob": "AAAA", "KeyId": "fake"}')
_THROTTLE = (400, b'{"__type":"ThrottlingException","message":"Rate exceeded"}')
_INTERNAL = (500, b'{"__type":"KMSInternalException","message":"boom"}')
_DENIED = (400, b'{"__type":"com.amazon.coral.service#AccessDeniedException","message":"no"}')
_TOO_MANY = (429, b"Too Many Requests")  # no JSON at all: counted as a throttle by its status

# The n-th Encrypt the server sees (n = 0 is the harness's probe before the run) gets CYCLE[n % 10].
CYCLE = [_OK, _DENIED, _OK, _THROTTLE, _OK, _INTERNAL, _OK, _THROTTLE, _OK, _TOO_MANY]


class FakeKms:
    """Answers DescribeKey with an enabled key, and Encrypt as ``answer(n)`` says."""

    def __init__(self, answer: Callable[[int], Answer], stall: Callable[[int], float]) -> None:
        self.answer = answer
        self.stall = stall
        self.encrypts = 0
        self.given: list[int] = []

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        operation = request.headers.get("X-Amz-Target", "").rpartition(".")[2]
        if operation == "DescribeKey":
            status, body = 200, b'{"KeyMetadata": {"KeyId": "fake", "KeyState": "Enabled"}}'
        elif operation == "Encrypt":
            n = self.encrypts
            self.encrypts += 1
            if self.stall(n):
                await anyio.sleep(self.stall(n))
            status, body = self.answer(n)
            self.given.append(status)
        else:
            status, body = 400, b'{"__type":"UnknownOperationException"}'
        return web.Response(status=status, body=body, headers={"Content-Type": JSON_11})


@contextlib.asynccontextmanager
async def serve(fake: FakeKms) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/", fake.handle)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


async def run_against(fake: FakeKms, *argv: str) -> Report:
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    async with serve(fake) as endpoint:
        args = parser.parse_args(["loadtest", "--endpoint", endpoint, "--key-id", "fake", *argv])
        return await execute(options_from_args(args))


@pytest.mark.anyio
async def test_throttles_and_errors_are_counted_by_code() -> None:
    fake = FakeKms(lambda n: CYCLE[n % len(CYCLE)], lambda n: 0.0)
    report = await run_against(fake, "--requests", "100", "--concurrency", "4", "--warmup", "0")
    assert fake.encrypts == 101  # one probe, then exactly the 100 measured requests
    assert report.total.requests == 100
    assert report.total.ok == 50
    assert report.total.throttles == {"ThrottlingException": 20, "HTTP 429": 10}
    assert report.total.errors == {"AccessDeniedException": 10, "KMSInternalException": 10}
    assert report.total.histogram.count == 50  # latency is of successful requests only
    timeline = report.timeline
    assert sum(p.throttles for p in timeline) == 30 and sum(p.errors for p in timeline) == 20
    assert json.loads(encode_report(report))["total"]["throttles"]["ThrottlingException"] == 20


def slow_count(report: Report, millis: int) -> int:
    histogram = Histogram.from_data(report.total.histogram)
    return sum(count for low, _, count in histogram.buckets() if low >= millis * 1000)


@pytest.mark.anyio
async def test_open_loop_shows_a_stall_in_the_latency_of_requests_queued_behind_it() -> None:
    # One request stalls the (one-at-a-time) server for 0.5 s. A closed loop with one user would
    # see one slow request; the open loop at 100/s keeps the schedule, so every request intended
    # during the stall waits behind it and carries that wait in its latency.
    fake = FakeKms(lambda n: _OK, lambda n: 0.5 if n == 21 else 0.0)
    report = await run_against(
        fake, "--rate", "100", "--requests", "100", "--max-in-flight", "1", "--warmup", "0"
    )
    assert report.total.ok == 100
    assert slow_count(report, 200) >= 20
    assert report.generator.saturated and report.generator.in_flight_waits > 0

    fake = FakeKms(lambda n: _OK, lambda n: 0.5 if n == 21 else 0.0)
    closed = await run_against(fake, "--concurrency", "1", "--requests", "100", "--warmup", "0")
    assert closed.total.ok == 100 and slow_count(closed, 200) <= 3  # the stalled one, ~alone
