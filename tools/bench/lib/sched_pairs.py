#!/usr/bin/env python3
"""Where a spawn runner's slots wait: each child's fork, first run, exec and
exit, and its parent's wake-ups, read from a `perf script` of sched events
(docs/benchmarks.md, "Turns held for more results" and after).

    perf record -o sched.data -a -e sched:sched_process_fork \\
        -e sched:sched_process_exit -e sched:sched_switch \\
        -e sched:sched_wakeup -e sched:sched_process_exec -- \\
        drover run -j 2 job.yaml
    perf script -i sched.data > sched.txt
    tools/bench/lib/sched_pairs.py sched.txt --jobs 2 --exec true

Only children that exec'd a file whose name ends with --exec count (the
tasks, not a runner's threads). With J in flight, the k-th exit frees the
slot of the (k+J)-th fork. Prints, in microseconds, the median and mean of:
a slot's exit to its next fork, a fork to the child's first run, that to
its exec, the exec to the exit; the parent (the thread that forked the
tasks) switched in after an exit, and from then to its next fork; the
waits over 100 us before a first run, per task; each CPU's idle time
while the tasks ran; and that idle time by what the CPU ran before it and
what ended it.
"""
import argparse
import bisect
import re
import statistics
import sys

EVENT = re.compile(r"^\s*(.+?)\s+(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+(\S+):\s*(.*)$")


def parse(lines):
    """The events, as (comm, pid, cpu, seconds, name, rest) tuples."""
    for line in lines:
        m = EVENT.match(line)
        if m:
            comm, pid, cpu, t, name, rest = m.groups()
            yield comm, int(pid), int(cpu), float(t), name, rest


def field(rest, key):
    m = re.search(key + r"=(\S+)", rest)
    return m.group(1) if m else None


def label(pid, comm, tasks):
    """A thread's name for the idle table: "task" for the tasks (before
    their exec too), else its comm without the numbers of per-CPU threads
    ("kworker/1:2" and "kworker/u8:3-events" are both "kworker")."""
    if pid in tasks:
        return "task"
    return re.sub(r"/u?\d.*$", "", comm or "?") or "?"


def analyse(lines, jobs, exec_name):
    events = list(parse(lines))
    tasks = {int(field(r, "pid")) for _, _, _, _, n, r in events
             if n == "sched:sched_process_exec"
             and (field(r, "filename") or "").endswith("/" + exec_name)}
    fork, first, execd, exited = {}, {}, {}, {}
    parent = None
    for comm, pid, cpu, t, name, rest in events:
        if name == "sched:sched_process_fork":
            child = int(field(rest, "child_pid"))
            if child in tasks:
                fork[child] = t
                parent = pid
        elif name == "sched:sched_process_exec" and pid in tasks:
            execd[pid] = t
        elif name == "sched:sched_process_exit" and pid in tasks:
            exited[pid] = t
        elif name == "sched:sched_switch":
            nxt = int(field(rest, "next_pid"))
            if nxt in tasks and nxt not in first:
                first[nxt] = t
    kids = sorted((k for k in fork if k in execd and k in exited and k in first),
                  key=lambda k: fork[k])
    if not kids:
        raise ValueError("no task children in the trace (is --exec right?)")
    start, end = fork[kids[0]], max(exited[k] for k in kids)
    forks = sorted(fork[k] for k in kids)
    exits = sorted(exited[k] for k in kids)
    parent_in = sorted(t for _, _, _, t, n, r in events
                       if n == "sched:sched_switch" and int(field(r, "next_pid")) == parent)
    to_parent, to_fork = [], []
    for e in exits:
        i = bisect.bisect_left(parent_in, e)
        j = bisect.bisect_left(forks, e)
        if i < len(parent_in) and j < len(forks):
            to_parent.append(parent_in[i] - e)
            to_fork.append(max(0.0, forks[j] - parent_in[i]))
    idle, since, causes = {}, {}, {}
    for _, _, cpu, t, name, rest in events:
        if name != "sched:sched_switch" or t < start or t > end:
            continue
        if int(field(rest, "next_pid")) == 0:
            prev = label(int(field(rest, "prev_pid")), field(rest, "prev_comm"), tasks)
            since[cpu] = (t, f"{prev} ({field(rest, 'prev_state')})")
        elif int(field(rest, "prev_pid")) == 0 and cpu in since:
            began, before = since.pop(cpu)
            idle[cpu] = idle.get(cpu, 0.0) + t - began
            after = label(int(field(rest, "next_pid")), field(rest, "next_comm"), tasks)
            total, count = causes.get((before, after), (0.0, 0))
            causes[(before, after)] = (total + t - began, count + 1)
    waits = [first[k] - fork[k] for k in kids]
    return {
        "tasks": len(kids),
        "seconds": end - start,
        "exit_to_refill_fork": [forks[i + jobs] - exits[i] for i in range(len(exits) - jobs)],
        "fork_to_first_run": waits,
        "first_run_to_exec": [execd[k] - first[k] for k in kids],
        "exec_to_exit": [exited[k] - execd[k] for k in kids],
        "exit_to_parent_in": to_parent,
        "parent_in_to_fork": to_fork,
        "long_waits_per_task": sum(w for w in waits if w > 100e-6) / len(kids),
        "idle_by_cpu": idle,
        "idle_by_cause": causes,
    }


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("trace", help="the output of perf script")
    ap.add_argument("--jobs", type=int, default=2, help="children in flight (default 2)")
    ap.add_argument("--exec", default="true", help="the tasks' program (default true)")
    args = ap.parse_args(argv)
    with open(args.trace, encoding="utf-8", errors="replace") as f:
        r = analyse(f, args.jobs, args.exec)
    print(f"{r['tasks']} tasks in {r['seconds']:.3f} s: {r['tasks'] / r['seconds']:.0f}/s")
    for key in ("exit_to_refill_fork", "fork_to_first_run", "first_run_to_exec",
                "exec_to_exit", "exit_to_parent_in", "parent_in_to_fork"):
        values = r[key]
        if values:
            print(f"{key:22} p50 {statistics.median(values) * 1e6:6.0f} us"
                  f"  mean {statistics.fmean(values) * 1e6:6.0f} us")
    print(f"{'waits over 100 us':22} {r['long_waits_per_task'] * 1e6:6.0f} us a task")
    for cpu, seconds in sorted(r["idle_by_cpu"].items()):
        print(f"idle cpu {cpu}: {seconds * 1e3:.0f} ms")
    # What a CPU ran before it idled, and what ended the idle: "after task
    # (Z), until task" is a slot whose next child was not forked yet; one
    # of the runner's threads before it, a CPU that thread had taken while
    # the next child waited elsewhere.
    causes = sorted(r["idle_by_cause"].items(), key=lambda kv: -kv[1][0])
    for (before, after), (seconds, count) in causes[:8]:
        print(f"idle after {before}, until {after}: {count} times, "
              f"{seconds * 1e3:.1f} ms, mean {seconds / count * 1e6:.0f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
