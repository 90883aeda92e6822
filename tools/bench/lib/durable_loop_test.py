"""Tests of tools/bench/durable_loop.c (ctest: bench-durable-loop, label
bench): the floor `tools/bench/bench spawn` reads drover against does the
work it claims, on real children and a real SQLite file.

    durable_loop_test.py PATH_TO_DURABLE_LOOP
"""
import glob
import os
import sqlite3
import subprocess
import sys
import tempfile
import unittest

BINARY = None


def run(directory, tasks, jobs, *command):
    return subprocess.run([BINARY, directory, str(tasks), str(jobs), *command],
                          capture_output=True, text=True, timeout=60, check=False)


def rows(directory):
    with sqlite3.connect(os.path.join(directory, "state.db")) as db:
        return db.execute("SELECT task, pid, exit_code FROM attempts ORDER BY task").fetchall()


class DurableLoopTest(unittest.TestCase):
    def test_every_task_is_recorded_and_its_output_read_to_the_end(self):
        with tempfile.TemporaryDirectory() as d:
            state = os.path.join(d, "state")
            # 110 KB on stdout: more than a pipe holds, so a loop that did
            # not read its pipes would never see these children end.
            r = run(state, 6, 2, "sh", "-c", "seq 1 20000; echo e >&2")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertRegex(r.stdout, r"^tasks=6 seconds=[0-9.]+ rate=[0-9]+/s\n$")
            got = rows(state)
            self.assertEqual([t for t, _, _ in got], list(range(6)))
            self.assertTrue(all(pid > 0 and code == 0 for _, pid, code in got), got)
            self.assertEqual(glob.glob(os.path.join(state, "*.outputs")), [])

    def test_failed_children_are_recorded_and_fail_the_run(self):
        with tempfile.TemporaryDirectory() as d:
            state = os.path.join(d, "state")
            r = run(state, 3, 2, "false")
            self.assertEqual(r.returncode, 1)
            self.assertIn("3 children failed", r.stderr)
            self.assertEqual([code for _, _, code in rows(state)], [1, 1, 1])

    def test_bad_usage_exits_2(self):
        with tempfile.TemporaryDirectory() as d:
            for args in ([d, "0", "2", "true"], [d, "5", "2000", "true"], [d, "5"]):
                r = subprocess.run([BINARY, *args], capture_output=True, text=True,
                                   timeout=60, check=False)
                self.assertEqual(r.returncode, 2, args)
                self.assertIn("usage: durable_loop", r.stderr)


if __name__ == "__main__":
    BINARY = sys.argv.pop(1)
    unittest.main()
