"""Events from a batch thread to the event loop: delivered in order, the loop woken once for a burst, and each
request's events read together when it reads slower than they come. (Replies themselves, streamed and whole,
are tested through the real server in test_app.py.)"""
from __future__ import annotations

import asyncio
import threading

from lstm_textgen.serve.replies import Mailbox, Waiter


class FakeJob:
    def __init__(self, done=False, error=None):
        self.done, self.error = done, error


def test_a_burst_of_posts_from_another_thread_wakes_the_loop_once_and_arrives_in_order():
    async def main():
        loop = asyncio.get_running_loop()
        mailbox = Mailbox(loop)
        wakes = []
        deliver = mailbox._deliver
        mailbox._deliver = lambda: (wakes.append(1), deliver())
        waiters = [Waiter(mailbox), Waiter(mailbox)]

        def batch_thread():
            for step in range(3):
                for i, waiter in enumerate(waiters):
                    waiter.publish(FakeJob(done=step == 2), [(0, f"{i}:{step}", "length" if step == 2 else None)])

        thread = threading.Thread(target=batch_thread)
        thread.start()  # the loop is not running callbacks until we await: all six posts pile up
        thread.join()
        return [await waiter.next() for waiter in waiters], len(wakes)

    got, wakes = asyncio.run(main())
    assert got == [([(0, "0:0", None), (0, "0:1", None), (0, "0:2", "length")], True, None),
                   ([(0, "1:0", None), (0, "1:1", None), (0, "1:2", "length")], True, None)]
    assert wakes == 1


def test_an_error_reaches_the_waiter_with_the_job_done():
    async def main():
        waiter = Waiter(Mailbox(asyncio.get_running_loop()))
        threading.Thread(target=waiter.publish, args=(FakeJob(done=True, error="the server is stopping"), [])).start()
        return await asyncio.wait_for(waiter.next(), 5)

    assert asyncio.run(main()) == ([], True, "the server is stopping")


def test_events_that_arrive_after_a_read_are_not_lost_when_they_end_the_job():
    async def main():
        waiter = Waiter(Mailbox(asyncio.get_running_loop()))
        waiter.arrive([(0, "a", None)], False, None)
        first = await waiter.next()
        waiter.arrive([(0, "b", "length")], True, None)  # the last step lands before the reader looks again
        return first, await waiter.next()

    assert asyncio.run(main()) == (([(0, "a", None)], False, None), ([(0, "b", "length")], True, None))


def test_after_a_delivery_to_many_requests_the_next_waits_its_gap_and_loses_nothing():
    """Deliveries to n requests are n x PER_WAITER apart on the loop's clock (one stream: every step); what is
    posted meanwhile arrives whole and in order in the next delivery."""
    async def main():
        loop = asyncio.get_running_loop()
        mailbox = Mailbox(loop)
        times = []
        deliver = mailbox._deliver
        mailbox._deliver = lambda: (times.append(loop.time()), deliver())
        waiters = [Waiter(mailbox) for _ in range(40)]
        for step in range(2):
            for i, waiter in enumerate(waiters):
                threading.Thread(target=waiter.publish, args=(FakeJob(done=step == 1), [(0, f"{i}:{step}", None)])
                                 ).start()
            if step == 0:
                await waiters[-1].next()  # the first delivery
                assert mailbox.gap == 40 * Mailbox.PER_WAITER
        texts = []
        for waiter in waiters:
            done, got = False, []
            while not done:
                events, done, _ = await asyncio.wait_for(waiter.next(), 5)
                got += [text for _, text, _ in events]
            texts.append(got)
        return texts, times

    texts, times = asyncio.run(main())
    assert texts[:-1] == [[f"{i}:0", f"{i}:1"] for i in range(39)] and texts[-1] == ["39:1"]  # 39:0 read first
    assert len(times) >= 2 and times[-1] - times[0] >= 40 * Mailbox.PER_WAITER * 0.99  # the loop's clock


def test_one_stream_is_delivered_every_time_it_is_posted_to():
    async def main():
        mailbox = Mailbox(asyncio.get_running_loop())
        waiter = Waiter(mailbox)
        texts = []
        for step in range(3):
            threading.Thread(target=waiter.publish, args=(FakeJob(), [(0, str(step), None)])).start()
            texts.append((await asyncio.wait_for(waiter.next(), 5))[0])
        return texts, mailbox.gap

    texts, gap = asyncio.run(main())
    assert texts == [[(0, "0", None)], [(0, "1", None)], [(0, "2", None)]] and gap == Mailbox.PER_WAITER
