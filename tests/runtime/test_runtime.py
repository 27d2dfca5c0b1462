"""The actor runtime: ask/tell, error routing, one-for-one restarts, stop and cancellation.

Every await that could hang runs under ``anyio.fail_after`` so a lost reply fails the test
instead of blocking the suite. Asks are queued one at a time (``queue``), so their order in the
mailbox is known on both backends.
"""

from __future__ import annotations

from typing import Any

import anyio
import anyio.lowlevel
import msgspec
import pytest
from anyio.abc import TaskGroup

from kms_actors.errors import KMSInternalException, NotFoundException
from kms_actors.runtime import (
    ActorRef,
    ActorStopped,
    Crashed,
    ExitReason,
    Mailbox,
    Reply,
    Stop,
    Supervisor,
    run_actor,
    stop,
)

pytestmark = pytest.mark.anyio

TIMEOUT = 5

# --- Test messages and actor -------------------------------------------------------------------


class Add(msgspec.Struct, frozen=True):
    amount: int


class Get(msgspec.Struct, frozen=True):
    pass


class Whoami(msgspec.Struct, frozen=True):
    pass


class Refuse(msgspec.Struct, frozen=True):
    pass


class Explode(msgspec.Struct, frozen=True):
    pass


class Hold(msgspec.Struct, frozen=True):
    pass


class AddAfterHold(msgspec.Struct, frozen=True):
    amount: int


class Record(msgspec.Struct, frozen=True):
    item: int


class History(msgspec.Struct, frozen=True):
    pass


class Probe:
    """What a test controls and watches: the gate Hold waits on, factory calls, exits."""

    def __init__(self) -> None:
        self.gate = anyio.Event()
        self.holding = anyio.Event()
        self.attempts: list[int] = []
        self.exits: list[ExitReason] = []
        self.active = 0
        self.max_active = 0

    async def factory(self, attempt: int) -> Counter:
        self.attempts.append(attempt)
        return Counter(self, attempt)

    def on_exit(self, ref: ActorRef[Any], reason: ExitReason) -> None:
        self.exits.append(reason)


class Counter:
    """A counter whose Add yields between read and write, so overlapping handlers lose updates."""

    def __init__(self, probe: Probe, attempt: int) -> None:
        self.probe = probe
        self.attempt = attempt
        self.value = 0
        self.history: list[int] = []

    async def handle(self, message: object) -> object:
        self.probe.active += 1
        self.probe.max_active = max(self.probe.max_active, self.probe.active)
        try:
            return await self._handle(message)
        finally:
            self.probe.active -= 1

    async def _handle(self, message: object) -> object:
        match message:
            case Add(amount=amount):
                before = self.value
                await anyio.lowlevel.checkpoint()
                self.value = before + amount
                return self.value
            case Get():
                return self.value
            case Whoami():
                return self.attempt
            case Refuse():
                raise NotFoundException("nope")
            case Explode():
                raise RuntimeError("boom")
            case Hold():
                self.probe.holding.set()
                await self.probe.gate.wait()
                return None
            case AddAfterHold(amount=amount):
                self.probe.holding.set()
                await self.probe.gate.wait()
                self.value += amount
                return self.value
            case Record(item=item):
                self.history.append(item)
                return None
            case History():
                return list(self.history)
        raise AssertionError(f"unexpected message {type(message).__name__}")


# --- Helpers -------------------------------------------------------------------------------------

Outcomes = dict[str, object]


async def ask_into(ref: ActorRef[Any], message: object, outcomes: Outcomes, label: str) -> None:
    """Ask and record the answer or the error; a reply that never comes is recorded as a timeout."""
    try:
        with anyio.fail_after(TIMEOUT):
            outcomes[label] = await ref.ask(message)
    except Exception as error:
        outcomes[label] = error


async def queue(
    askers: TaskGroup, ref: ActorRef[Any], message: object, outcomes: Outcomes, label: str
) -> None:
    """Start an ask in ``askers`` and return once it sits in the mailbox (or is being handled)."""
    askers.start_soon(ask_into, ref, message, outcomes, label)
    await anyio.wait_all_tasks_blocked()


def hung(outcomes: Outcomes) -> list[str]:
    return [label for label, outcome in outcomes.items() if isinstance(outcome, TimeoutError)]


# --- ask, tell and error routing ---------------------------------------------------------------


async def test_ask_returns_the_handlers_value() -> None:
    probe = Probe()
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as tg:
            ref = Supervisor(tg).spawn("counter", probe.factory, on_exit=probe.on_exit)
            assert ref.name == "counter"
            assert await ref.ask(Add(2)) == 2
            assert await ref.ask(Add(3)) == 5
            assert await ref.ask(Get()) == 5
            await stop(ref)
    assert probe.attempts == [0]
    assert probe.exits == ["stopped"]


async def test_a_kms_error_goes_back_to_the_asker_and_the_actor_lives_on() -> None:
    probe = Probe()
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as tg:
            supervisor = Supervisor(tg)
            ref = supervisor.spawn("counter", probe.factory, on_exit=probe.on_exit)
            await ref.ask(Add(4))
            with pytest.raises(NotFoundException) as raised:
                await ref.ask(Refuse())
            assert raised.value.message == "nope"
            assert await ref.ask(Get()) == 4  # same actor, state kept
            await ref.tell(Refuse())  # nobody to answer: dropped, still no crash
            assert await ref.ask(Get()) == 4
            assert supervisor.restarts == 0
            await stop(ref)
    assert probe.attempts == [0]
    assert probe.exits == ["stopped"]


async def test_a_crash_answers_internal_error_and_the_restarted_actor_serves_the_queue() -> None:
    probe = Probe()
    outcomes: Outcomes = {}
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as tg:
            supervisor = Supervisor(tg)
            ref = supervisor.spawn("counter", probe.factory, on_exit=probe.on_exit)
            assert await ref.ask(Add(5)) == 5
            async with anyio.create_task_group() as askers:
                await queue(askers, ref, Hold(), outcomes, "hold")
                await queue(askers, ref, Explode(), outcomes, "explode")
                await queue(askers, ref, Whoami(), outcomes, "whoami")
                await queue(askers, ref, Add(1), outcomes, "add")
                probe.gate.set()
            assert supervisor.restarts == 1
            assert probe.attempts == [0, 1]
            assert probe.exits == []
            await stop(ref)
    assert outcomes["hold"] is None
    explode = outcomes["explode"]
    assert type(explode) is KMSInternalException
    assert "boom" not in explode.message  # the crash's details stay inside
    assert outcomes["whoami"] == 1  # served by the restarted actor ...
    assert outcomes["add"] == 1  # ... which starts from its factory's state
    assert probe.exits == ["stopped"]


async def test_a_crash_in_a_tell_restarts_the_actor() -> None:
    probe = Probe()
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as tg:
            supervisor = Supervisor(tg)
            ref = supervisor.spawn("counter", probe.factory)
            await ref.tell(Explode())
            assert await ref.ask(Whoami()) == 1
            assert supervisor.restarts == 1
            await stop(ref)


async def test_exceeding_the_restart_budget_answers_every_queued_ask_and_fails() -> None:
    probe = Probe()
    outcomes: Outcomes = {}
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as tg:
            supervisor = Supervisor(tg, max_restarts=1, within_seconds=60)
            ref = supervisor.spawn("counter", probe.factory, on_exit=probe.on_exit)
            async with anyio.create_task_group() as askers:
                await queue(askers, ref, Hold(), outcomes, "hold")
                await queue(askers, ref, Explode(), outcomes, "first crash")
                await queue(askers, ref, Explode(), outcomes, "second crash")
                await queue(askers, ref, Get(), outcomes, "get")
                await queue(askers, ref, Add(1), outcomes, "add")
                probe.gate.set()
        # The supervisor gave up, so its task group could finish.
        with pytest.raises(ActorStopped):
            await ref.ask(Get())
    assert hung(outcomes) == []
    assert outcomes["hold"] is None
    for label in ("first crash", "second crash", "get", "add"):
        assert type(outcomes[label]) is KMSInternalException, label
    assert probe.attempts == [0, 1]
    assert supervisor.restarts == 1
    assert probe.exits == ["failed"]


async def test_a_factory_that_keeps_failing_spends_the_budget() -> None:
    attempts: list[int] = []
    exits: list[ExitReason] = []
    outcomes: Outcomes = {}

    async def factory(attempt: int) -> Counter:
        attempts.append(attempt)
        await loading.wait()
        raise RuntimeError("cannot load")

    loading = anyio.Event()
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as tg:
            supervisor = Supervisor(tg, max_restarts=2)
            ref = supervisor.spawn(
                "broken", factory, on_exit=lambda _ref, reason: exits.append(reason)
            )
            async with anyio.create_task_group() as askers:
                await queue(askers, ref, Get(), outcomes, "get")  # waits for the factory
                loading.set()
    assert type(outcomes["get"]) is KMSInternalException
    assert attempts == [0, 1, 2]
    assert supervisor.restarts == 2
    assert exits == ["failed"]


# --- Stop ----------------------------------------------------------------------------------------


async def test_stop_answers_later_queued_asks_with_actor_stopped() -> None:
    probe = Probe()
    outcomes: Outcomes = {}
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as tg:
            ref = Supervisor(tg).spawn("counter", probe.factory, on_exit=probe.on_exit)
            async with anyio.create_task_group() as askers:
                await queue(askers, ref, Hold(), outcomes, "hold")
                await queue(askers, ref, Add(1), outcomes, "before stop")
                await queue(askers, ref, Stop(), outcomes, "stop")
                await queue(askers, ref, Add(1), outcomes, "after stop")
                await queue(askers, ref, Get(), outcomes, "get")
                probe.gate.set()
        assert probe.exits == ["stopped"]
        with pytest.raises(ActorStopped):
            await ref.ask(Get())
        with pytest.raises(ActorStopped):
            await ref.tell(Record(1))
        assert ref.tell_nowait(Record(1)) is False
        await stop(ref)  # stopping a stopped actor is a no-op
    assert hung(outcomes) == []
    assert outcomes["before stop"] == 1
    assert outcomes["stop"] is None
    assert type(outcomes["after stop"]) is ActorStopped
    assert type(outcomes["get"]) is ActorStopped
    assert probe.exits == ["stopped"]


# --- Cancellation ------------------------------------------------------------------------------


async def test_cancelling_the_task_group_answers_in_flight_and_queued_asks() -> None:
    probe = Probe()
    outcomes: Outcomes = {}
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as askers, anyio.create_task_group() as tg:
            ref = Supervisor(tg).spawn("counter", probe.factory, on_exit=probe.on_exit)
            await queue(askers, ref, Hold(), outcomes, "in flight")
            await queue(askers, ref, Get(), outcomes, "queued get")
            await queue(askers, ref, Add(1), outcomes, "queued add")
            assert probe.holding.is_set()
            tg.cancel_scope.cancel()
    assert hung(outcomes) == []
    for label in ("in flight", "queued get", "queued add"):
        assert type(outcomes[label]) is KMSInternalException, label
    assert probe.exits == ["cancelled"]


async def test_cancelling_during_a_burst_leaves_no_ask_hanging() -> None:
    # The actor is released and the group cancelled in the same tick, so the actor is still
    # working through a long run of queued messages when the cancellation reaches it.
    probe = Probe()
    outcomes: Outcomes = {}
    with anyio.fail_after(3 * TIMEOUT):
        async with anyio.create_task_group() as askers, anyio.create_task_group() as tg:
            ref = Supervisor(tg).spawn("counter", probe.factory, on_exit=probe.on_exit)
            await queue(askers, ref, Hold(), outcomes, "hold")
            for index in range(100):
                askers.start_soon(ask_into, ref, Get(), outcomes, f"get {index}")
            await anyio.wait_all_tasks_blocked()
            probe.gate.set()
            tg.cancel_scope.cancel()
    assert hung(outcomes) == []
    for label, outcome in outcomes.items():
        assert outcome in (None, 0) or type(outcome) is KMSInternalException, label
    assert probe.exits == ["cancelled"]


async def test_cancelling_right_after_a_send_to_an_idle_actor_leaves_no_ask_hanging() -> None:
    probe = Probe()
    reply: Reply[Any] = Reply()
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as tg:
            ref = Supervisor(tg).spawn("counter", probe.factory, on_exit=probe.on_exit)
            assert await ref.ask(Get()) == 0
            await anyio.wait_all_tasks_blocked()  # the actor waits on an empty mailbox
            # What ask does, without its awaits: the message goes straight to the waiting actor,
            # and the group is cancelled before the actor has run.
            ref._send.send_nowait((Add(1), reply))
            tg.cancel_scope.cancel()
    assert reply.answered
    assert probe.exits == ["cancelled"]


async def test_a_cancelled_asker_does_not_stop_the_command() -> None:
    probe = Probe()
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as tg:
            ref = Supervisor(tg).spawn("counter", probe.factory, on_exit=probe.on_exit)
            async with anyio.create_task_group() as impatient:
                impatient.start_soon(ref.ask, AddAfterHold(1))  # in flight
                await probe.holding.wait()
                impatient.start_soon(ref.ask, Add(10))  # queued behind it
                await anyio.wait_all_tasks_blocked()
                impatient.cancel_scope.cancel()
            probe.gate.set()
            assert await ref.ask(Get()) == 11
            await stop(ref)
    assert probe.attempts == [0]
    assert probe.exits == ["stopped"]


# --- Isolation and ordering --------------------------------------------------------------------


async def test_a_crashing_child_does_not_affect_its_sibling() -> None:
    steady, flaky = Probe(), Probe()
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as tg:
            supervisor = Supervisor(tg)
            a = supervisor.spawn("steady", steady.factory, on_exit=steady.on_exit)
            b = supervisor.spawn("flaky", flaky.factory, on_exit=flaky.on_exit)
            assert await a.ask(Add(7)) == 7
            assert await b.ask(Add(3)) == 3
            with pytest.raises(KMSInternalException):
                await b.ask(Explode())
            assert await a.ask(Get()) == 7
            assert await b.ask(Get()) == 0
            assert await b.ask(Whoami()) == 1
            await stop(a)
            await stop(b)
    assert steady.attempts == [0]
    assert flaky.attempts == [0, 1]
    assert supervisor.restarts == 1
    assert steady.exits == ["stopped"]
    assert flaky.exits == ["stopped"]


async def test_messages_are_handled_one_at_a_time() -> None:
    probe = Probe()
    outcomes: Outcomes = {}
    count = 50
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as tg:
            ref = Supervisor(tg).spawn("counter", probe.factory)
            async with anyio.create_task_group() as askers:
                for index in range(count):
                    askers.start_soon(ask_into, ref, Add(1), outcomes, f"add {index}")
            assert await ref.ask(Get()) == count
            await stop(ref)
    # Each Add saw the result of all the Adds before it: no update lost, none seen twice.
    assert sorted(outcome for outcome in outcomes.values() if isinstance(outcome, int)) == list(
        range(1, count + 1)
    )
    assert probe.max_active == 1


async def test_messages_from_one_sender_are_handled_in_order() -> None:
    probe = Probe()
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as tg:
            ref = Supervisor(tg).spawn("counter", probe.factory)
            for item in range(100):
                assert ref.tell_nowait(Record(item))
            for item in range(100, 200):
                await ref.tell(Record(item))
            assert await ref.ask(History()) == list(range(200))
            await stop(ref)


async def test_tell_nowait_reports_a_full_mailbox() -> None:
    probe = Probe()
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as tg:
            ref = Supervisor(tg, mailbox_size=2).spawn("counter", probe.factory)
            assert ref.tell_nowait(Hold())
            await probe.holding.wait()
            assert ref.tell_nowait(Record(1))
            assert ref.tell_nowait(Record(2))
            assert not ref.tell_nowait(Record(3))
            probe.gate.set()
            assert await ref.ask(History()) == [1, 2]
            await stop(ref)


# --- run_actor and Mailbox on their own -------------------------------------------------------


async def test_run_actor_raises_crashed_with_the_cause() -> None:
    probe = Probe()
    mailbox: Mailbox[object] = Mailbox("solo", 4)
    with anyio.fail_after(TIMEOUT):
        await mailbox.ref.tell(Explode())
        await mailbox.ref.tell(Get())
        with pytest.raises(Crashed) as raised:
            await run_actor(Counter(probe, 0), mailbox)
    assert isinstance(raised.value.__cause__, RuntimeError)
    assert mailbox.drain(KMSInternalException) == 1  # the message behind the crash is kept


async def test_run_actor_returns_on_stop_leaving_later_messages_queued() -> None:
    probe = Probe()
    mailbox: Mailbox[object] = Mailbox("solo", 4)
    with anyio.fail_after(TIMEOUT):
        await mailbox.ref.tell(Add(1))
        await mailbox.ref.tell(Stop())
        await mailbox.ref.tell(Add(1))
        actor = Counter(probe, 0)
        await run_actor(actor, mailbox)
    assert actor.value == 1
    assert mailbox.drain(KMSInternalException) == 1
    assert mailbox.ref.tell_nowait(Get()) is False
