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
