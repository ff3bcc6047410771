"""The engine seam's own parts: the connection pool."""

import threading
import time

from laionsearch.engine.base import Pool


def test_pool_hands_connections_to_waiters_in_order_and_nobody_cuts_in():
    pool = Pool(lambda: object(), size=1)
    order, holding = [], pool.connection()
    holding.__enter__()

    def take(name):
        with pool.connection():
            order.append(name)

    def wait_for_waiters(n):
        deadline = time.monotonic() + 5
        while len(pool._waiting) < n and time.monotonic() < deadline:
            time.sleep(0.001)
        assert len(pool._waiting) == n

    threads = []
    for i, name in enumerate(("B", "C")):
        threads.append(threading.Thread(target=take, args=(name,)))
        threads[-1].start()
        wait_for_waiters(i + 1)
    holding.__exit__(None, None, None)
    take("A again")  # the thread that just gave its connection back queues behind B and C
    for t in threads:
        t.join(5)
    assert order == ["B", "C", "A again"]


def test_pool_makes_connections_on_demand_up_to_its_size():
    made = []
    pool = Pool(lambda: made.append(1) or len(made), size=3)
    with pool.connection() as a, pool.connection() as b:
        assert (a, b) == (1, 2)
    with pool.connection() as c:
        assert c in (1, 2) and len(made) == 2  # an idle one is reused before a new one is made
