"""Tests of lib/sched_pairs.py (ctest: bench-sched-pairs, label bench): the
pairing of a hand-made trace's events, two slots, three tasks."""
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import sched_pairs  # noqa: E402

# pid 100 forks the tasks on cpu 0; cpu 1 idles until task 202 runs there.
TRACE = """\
     other    50 [001]     1.000000:       sched:sched_switch: prev_comm=other prev_pid=50 prev_prio=120 prev_state=S ==> next_comm=swapper/1 next_pid=0 next_prio=120
    runner   100 [000]     1.000000: sched:sched_process_fork: comm=runner pid=100 child_comm=runner child_pid=201
    runner   100 [000]     1.000010:       sched:sched_switch: prev_comm=runner prev_pid=100 prev_prio=120 prev_state=D ==> next_comm=runner next_pid=201 next_prio=120
      true   201 [000]     1.000100: sched:sched_process_exec: filename=/usr/bin/true pid=201 old_pid=201
    runner   100 [000]     1.000200: sched:sched_process_fork: comm=runner pid=100 child_comm=runner child_pid=202
   swapper     0 [001]     1.000350:       sched:sched_switch: prev_comm=swapper/1 prev_pid=0 prev_prio=120 prev_state=R ==> next_comm=runner next_pid=202 next_prio=120
      true   202 [001]     1.000400: sched:sched_process_exec: filename=/usr/bin/true pid=202 old_pid=202
      true   201 [000]     1.001100: sched:sched_process_exit: comm=true pid=201 prio=120 group_dead=true
      true   201 [000]     1.001150:       sched:sched_switch: prev_comm=true prev_pid=201 prev_prio=120 prev_state=Z ==> next_comm=runner next_pid=100 next_prio=120
    runner   100 [000]     1.001200: sched:sched_process_fork: comm=runner pid=100 child_comm=runner child_pid=203
    runner   100 [000]     1.001210:       sched:sched_switch: prev_comm=runner prev_pid=100 prev_prio=120 prev_state=D ==> next_comm=runner next_pid=203 next_prio=120
      true   203 [000]     1.001300: sched:sched_process_exec: filename=/usr/bin/true pid=203 old_pid=203
      true   202 [001]     1.001400: sched:sched_process_exit: comm=true pid=202 prio=120 group_dead=true
      true   203 [000]     1.002000: sched:sched_process_exit: comm=true pid=203 prio=120 group_dead=true
    runner   100 [000]     1.002100: sched:sched_process_fork: comm=runner pid=100 child_comm=runner child_pid=300
"""


def us(values):
    return [round(v * 1e6) for v in values]


class SchedPairsTest(unittest.TestCase):
    def test_pairs_each_childs_events_and_the_slots(self):
        r = sched_pairs.analyse(TRACE.splitlines(), jobs=2, exec_name="true")
        self.assertEqual(r["tasks"], 3)  # 300 never exec'd true: not a task
        self.assertEqual(us(r["exit_to_refill_fork"]), [100])
        self.assertEqual(us(r["fork_to_first_run"]), [10, 150, 10])
        self.assertEqual(us(r["first_run_to_exec"]), [90, 50, 90])
        self.assertEqual(us(r["exec_to_exit"]), [1000, 1000, 700])
        self.assertEqual(us(r["exit_to_parent_in"]), [50])
        self.assertEqual(us(r["parent_in_to_fork"]), [50])
        self.assertEqual(round(r["long_waits_per_task"] * 1e6), 50)
        self.assertEqual({cpu: round(s * 1e6) for cpu, s in r["idle_by_cpu"].items()}, {1: 350})
        self.assertEqual({k: (round(s * 1e6), n) for k, (s, n) in r["idle_by_cause"].items()},
                         {("other (S)", "task"): (350, 1)})

    def test_per_cpu_threads_are_named_without_their_numbers(self):
        self.assertEqual(sched_pairs.label(7, "kworker/1:2", set()), "kworker")
        self.assertEqual(sched_pairs.label(7, "kworker/u8:3-events", set()), "kworker")
        self.assertEqual(sched_pairs.label(8, "migration/0", set()), "migration")
        self.assertEqual(sched_pairs.label(9, "drover-worker", set()), "drover-worker")
        self.assertEqual(sched_pairs.label(9, "drover-worker", {9}), "task")

    def test_a_trace_without_the_tasks_is_an_error(self):
        with self.assertRaises(ValueError):
            sched_pairs.analyse(TRACE.splitlines(), jobs=2, exec_name="sleep")


if __name__ == "__main__":
    unittest.main()
