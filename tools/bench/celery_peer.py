"""The Celery peer of `tools/bench/bench dispatch`: N no-op tasks through
Celery with Redis as the broker and as the result backend, workers started
by the bench as separate processes (`celery -A celery_peer worker --pool
solo`, one process each), Redis bound to 127.0.0.1 on a free port.

    /usr/bin/python3 tools/bench/celery_peer.py N WORKERS   (CELERY_PEER_REDIS=redis://...)

Waits until WORKERS workers answer a ping, then times a group of N no-op
tasks from apply_async until every result has been read back from the
result backend. Prints one JSON line:
{"tasks": N, "seconds": S, "tasks_per_s": R}.

What is stored: each task message in a Redis list until a worker takes it
(Celery's default acknowledges on receipt: a worker killed mid-task loses
it), each result under its own Redis key (expiring after a day). Redis runs
with its append-only file, fsync'ed every second: both survive a kill -9 of
Redis, as drover's SQLite WAL (synchronous=NORMAL) survives one of the
coordinator.
"""
import json
import os
import sys
import time

from celery import Celery, group

URL = os.environ.get("CELERY_PEER_REDIS", "redis://127.0.0.1:6379/0")
app = Celery("celery_peer", broker=URL, backend=URL)
app.conf.update(task_ignore_result=False, worker_hijack_root_logger=False)


@app.task
def noop(i):
    return None


def main():
    n, workers = int(sys.argv[1]), int(sys.argv[2])
    deadline = time.monotonic() + 60
    while len(app.control.ping(timeout=1.0) or []) < workers:
        if time.monotonic() > deadline:
            sys.exit("celery_peer: fewer than %d workers answered within 60 s" % workers)
    t0 = time.perf_counter()
    result = group(noop.s(i) for i in range(n)).apply_async()
    values = result.get(timeout=600)
    seconds = time.perf_counter() - t0
    assert len(values) == n
    print(json.dumps({"tasks": n, "seconds": seconds, "tasks_per_s": n / seconds}))


if __name__ == "__main__":
    main()
