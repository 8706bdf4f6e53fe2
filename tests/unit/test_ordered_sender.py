"""The W&B callback's OrderedSender: items leave in the order they were handed over, one at a time,
a failing delivery does not stop the others, and flush waits for the last one (or says it could not)."""

from __future__ import annotations

import threading

from tune_app.ext.wandb_logging import OrderedSender


def test_items_arrive_in_order_and_flush_waits_for_them():
    got: list[tuple[str, int]] = []
    gate = threading.Event()

    def send(actor: str, item: int) -> None:
        if item == 0:
            assert gate.wait(timeout=30)  # the first delivery hangs until the test lets it go
        got.append((actor, item))

    sender = OrderedSender(send=send)
    for i in range(50):
        sender.put("a" if i % 2 else "b", i)
    assert not sender.flush(timeout=0.05)  # item 0 is still in flight, so nothing after it has gone
    assert got == []
    gate.set()
    assert sender.flush(timeout=30)
    assert [item for _, item in got] == list(range(50))
    assert [actor for actor, item in got if item % 2] == ["a"] * 25


def test_a_failing_delivery_is_logged_and_the_next_goes_on(caplog):
    got: list[int] = []

    def send(actor: object, item: int) -> None:
        if item == 1:
            raise RuntimeError("logging actor died")
        got.append(item)

    sender = OrderedSender(send=send)
    for i in range(3):
        sender.put(None, i)
    assert sender.flush(timeout=30)
    assert got == [0, 2]
    assert "did not reach its logging actor" in caplog.text
