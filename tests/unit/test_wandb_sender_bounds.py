"""How the W&B callback's OrderedSender gives up (issues #23, #24): a failed delivery is logged with
its traceback, and ``flush`` is bounded by progress, not in all (a backlog that keeps moving on a
loaded machine is waited for; only one that stops is given up on)."""

from __future__ import annotations

import logging
import threading

from tune_app.ext.wandb_logging import OrderedSender


def test_a_failed_delivery_is_logged_with_its_traceback(caplog) -> None:
    def send(actor: object, item: int) -> None:
        raise RuntimeError(f"logging actor died on item {item}")

    sender = OrderedSender(send=send)
    with caplog.at_level(logging.WARNING, logger="tune_app.ext.wandb_logging"):
        sender.put(None, 7)
        assert sender.flush(timeout=30)
    (record,) = [r for r in caplog.records if "did not reach its logging actor" in r.getMessage()]
    assert record.exc_info is not None and "died on item 7" in str(record.exc_info[1])
    assert "Traceback" in caplog.text


def test_flush_waits_for_a_backlog_that_keeps_moving_and_gives_up_on_one_that_stops() -> None:
    """Each delivery waits for the test's go: 4 deliveries, each let go 2 s after it started, so they
    take 8 s in all, over flush's 5 s bound, but each arrives within 5 s of the last: flush outlasts
    them. Then one that is never let go: flush says so, 5 s later."""
    go, asked = threading.Semaphore(0), threading.Semaphore(0)

    def send(actor: object, item: int) -> None:
        asked.release()
        assert go.acquire(timeout=60)

    sender = OrderedSender(send=send)
    for i in range(5):
        sender.put(None, i)
    flushed: list[bool] = []
    waiter = threading.Thread(target=lambda: flushed.append(sender.flush(timeout=5.0)))
    waiter.start()
    for _ in range(4):
        assert asked.acquire(timeout=60)  # a delivery has started
        waiter.join(timeout=2.0)  # the test's clock: the delivery takes 2 s; the flush still waits
        assert waiter.is_alive()
        go.release()
    assert asked.acquire(timeout=60)  # the 5th delivery starts and is never let go
    waiter.join(timeout=60)
    assert flushed == [False]  # 4 arrived one by one in 8 s, more than the 5 s bound; then none
    go.release()
    assert sender.flush(timeout=30)
