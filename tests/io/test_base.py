"""The one-slot mailbox both the latest-frame scheduler and the threaded sinks use."""

from __future__ import annotations

import threading
import time

from livematte.io.base import LatestSlot


def test_latest_slot_keeps_only_the_newest_and_counts_drops():
    slot: LatestSlot[int] = LatestSlot()
    assert slot.take(0.01) is None
    for i in range(5):
        slot.put(i)
    assert slot.take(0.01) == 4
    assert slot.overwritten == 4
    assert slot.take(0.01) is None


def test_latest_slot_close_wakes_a_waiting_reader():
    slot: LatestSlot[int] = LatestSlot()
    got = []
    reader = threading.Thread(target=lambda: got.append(slot.take(10.0)))
    reader.start()
    time.sleep(0.05)
    slot.close()
    reader.join(1.0)
    assert not reader.is_alive() and got == [None]
