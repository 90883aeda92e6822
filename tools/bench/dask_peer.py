"""The Dask peer of `tools/bench/bench dispatch`: N no-op tasks through a
Dask distributed scheduler and its workers, started by the bench as separate
processes on 127.0.0.1 (dask-scheduler --scheduler-file, 2 dask-workers).

    /usr/bin/python3 tools/bench/dask_peer.py SCHEDULER_FILE N WORKERS

Connects, waits until WORKERS workers are registered, then times
client.map(noop, range(N), pure=False) until every result is back in the
client (wait + gather). Prints one JSON line:
{"tasks": N, "seconds": S, "tasks_per_s": R}.

Dask keeps tasks and results in the scheduler's and the workers' memory:
nothing is written to disk, and a killed scheduler loses the graph.
"""
import json
import sys
import time

from distributed import Client, wait


def noop(i):
    return None


def main():
    scheduler_file, n, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    with Client(scheduler_file=scheduler_file, timeout=30) as client:
        client.wait_for_workers(workers, timeout=60)
        t0 = time.perf_counter()
        futures = client.map(noop, range(n), pure=False)
        wait(futures)
        results = client.gather(futures)
        seconds = time.perf_counter() - t0
        assert len(results) == n
        print(json.dumps({"tasks": n, "seconds": seconds, "tasks_per_s": n / seconds}))


if __name__ == "__main__":
    main()
