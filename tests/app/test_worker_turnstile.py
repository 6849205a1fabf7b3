"""The worker's queue for app slots (backend_api.worker.Turnstile): arrival order, even for a
greenlet that asks at the moment a slot frees, and no slot lost when a waiter is killed."""

import gevent
import gevent.event

from backend_api.worker import SlotWaitTimeout, Turnstile


def test_a_freed_slot_goes_to_the_longest_waiter_not_to_a_newcomer() -> None:
    # Given one slot, held, and two greenlets waiting for it
    turnstile = Turnstile(1)
    entered: list[str] = []
    leave = gevent.event.Event()

    def request(name: str) -> None:
        with turnstile:
            entered.append(name)

    def holder() -> None:
        with turnstile:
            entered.append("first")
            leave.wait()
        # When a newcomer asks at the moment the slot frees, before the woken waiter has run
        # (as a connection whose next request is already read; gevent's Semaphore lets it in)
        request("newcomer")

    greenlets = [gevent.spawn(holder)]
    gevent.sleep(0)
    greenlets += [gevent.spawn(request, name) for name in ("second", "third")]
    gevent.sleep(0)
    leave.set()
    gevent.joinall(greenlets, timeout=5, raise_error=True)

    # Then everyone got in, in the order they asked
    assert entered == ["first", "second", "third", "newcomer"]
    assert (turnstile.free, len(turnstile.waiting)) == (1, 0)


def test_no_more_than_size_are_inside_at_once() -> None:
    turnstile = Turnstile(3)
    inside, most = 0, 0

    def request() -> None:
        nonlocal inside, most
        with turnstile:
            inside += 1
            most = max(most, inside)
            gevent.sleep(0.001)
            inside -= 1

    gevent.joinall([gevent.spawn(request) for _ in range(20)], timeout=5, raise_error=True)

    assert most == 3
    assert turnstile.free == 3


def test_a_waiter_killed_in_the_queue_loses_no_slot() -> None:
    # Given one slot, held, and a waiter that is killed (a timeout, the worker stopping)
    turnstile = Turnstile(1)
    turnstile.__enter__()
    killed = gevent.spawn(turnstile.__enter__)
    gevent.sleep(0)
    killed.kill(block=True)

    # When the holder leaves, then the slot is free again, not handed to the dead waiter
    turnstile.__exit__()
    assert (turnstile.free, len(turnstile.waiting)) == (1, 0)


def test_a_waiter_gives_up_after_its_wait_and_loses_no_slot() -> None:
    # Given one slot, held, and a turnstile whose waiters wait 0.05 s at most
    turnstile = Turnstile(1, wait_seconds=0.05)
    turnstile.__enter__()
    # When another greenlet asks, then it is refused once the wait is over
    waiter = gevent.spawn(turnstile.__enter__)
    waiter.join(timeout=5)
    assert isinstance(waiter.exception, SlotWaitTimeout)
    # And the slot is free again once its holder leaves
    turnstile.__exit__()
    assert (turnstile.free, len(turnstile.waiting)) == (1, 0)


def test_stuck_only_while_every_slot_is_held_with_none_moving() -> None:
    turnstile = Turnstile(2, stuck_seconds=0.05)
    turnstile.__enter__()
    gevent.sleep(0.1)
    assert not turnstile.stuck()  # a slot is free
    turnstile.__enter__()
    assert not turnstile.stuck()  # the last slot was just taken
    gevent.sleep(0.1)
    assert turnstile.stuck()
    turnstile.__exit__()
    assert not turnstile.stuck()
