"""Tests of lib/report.py (ctest: bench-report, label bench): the JSON
assembled from the bench's records, and the generated section of the
markdown refreshed between its markers and nowhere else."""
import json
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import report  # noqa: E402

RECORDS = [
    {"type": "start", "load": "1.0 2.0 3.0", "date": "2026-12-03T00:00:00Z", "size": 0.1},
    {"type": "peer", "name": "wrk", "status": "present", "version": "wrk 4.1.0"},
    {"type": "peer", "name": "dask", "status": "not installed", "reason": "apt-get failed"},
    {"type": "scenario", "scenario": "spawn", "description": "no-op tasks",
     "command": "tools/bench/bench spawn --tasks 1000", "load": "1 1 1", "date": "d", "tasks": 1000},
    {"type": "run", "scenario": "spawn", "runner": "drover", "metric": "tasks_per_s", "run": 1, "value": 300},
    {"type": "run", "scenario": "spawn", "runner": "drover", "metric": "tasks_per_s", "run": 2, "value": 100},
    {"type": "run", "scenario": "spawn", "runner": "drover", "metric": "tasks_per_s", "run": 3, "value": 200},
    {"type": "run", "scenario": "spawn", "runner": "raw", "metric": "tasks_per_s", "run": 1, "value": 400},
    {"type": "run", "scenario": "spawn", "runner": "raw", "metric": "tasks_per_s", "run": 2, "value": 600},
    {"type": "ratio", "scenario": "spawn", "name": "drover / raw", "value": 0.4, "target": ">=0.9"},
    {"type": "skip", "scenario": "spawn", "runner": "parallel", "reason": "not installed"},
    {"type": "scenario_end", "scenario": "spawn", "load": "2 2 2", "date": "e"},
    {"type": "end", "load": "4.0 5.0 6.0", "date": "2026-12-03T00:01:00Z"},
]


class ReportTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.records = os.path.join(self.dir, "records.jsonl")
        with open(self.records, "w") as f:
            for r in RECORDS:
                f.write(json.dumps(r) + "\n")
        self.json = os.path.join(self.dir, "out.json")
        self.doc = os.path.join(self.dir, "doc.md")

    def run_report(self, doc=True):
        args = [sys.executable, os.path.join(HERE, "report.py"), "--records", self.records,
                "--json", self.json, "--root", self.dir, "--build-dir", "build",
                "--command", "tools/bench/bench all"]
        if doc:
            args += ["--doc", self.doc]
        subprocess.run(args, check=True)
        with open(self.json) as f:
            return json.load(f)

    # Given runs of two runners, the JSON should hold every run, its median
    # (the mean of the two middle ones for an even count), min and max.
    def test_medians_and_runs(self):
        out = self.run_report(doc=False)
        drover = out["scenarios"]["spawn"]["runners"]["drover"]["tasks_per_s"]
        self.assertEqual(drover["runs"], [300, 100, 200])
        self.assertEqual(drover["median"], 200)
        raw = out["scenarios"]["spawn"]["runners"]["raw"]["tasks_per_s"]
        self.assertEqual(raw["median"], 500)
        self.assertEqual((raw["min"], raw["max"]), (400, 600))

    # Given a peer that could not be installed, the JSON should say so with
    # its reason, and the ratio's target should be judged.
    def test_peers_targets_and_machine(self):
        out = self.run_report(doc=False)
        self.assertEqual(out["peers"]["dask"], {"status": "not installed", "reason": "apt-get failed"})
        self.assertEqual(out["scenarios"]["spawn"]["ratios"][0]["met"], False)
        self.assertEqual(out["scenarios"]["spawn"]["skipped"][0]["runner"], "parallel")
        self.assertEqual(out["machine"]["load_start"], [1.0, 2.0, 3.0])
        self.assertEqual(out["machine"]["load_end"], [4.0, 5.0, 6.0])
        self.assertEqual(out["scenarios"]["spawn"]["params"], {"tasks": 1000})

    # Given a document whose prose quotes the markers and which has them on
    # their own lines further down, only the section between the real
    # markers should change, and a second refresh should change nothing.
    def test_doc_section_replaced_between_markers_only(self):
        before = ("# Title\n\nThe prose quotes `<!-- bench all: begin ... -->` and "
                  "`<!-- bench all: end -->`.\n\n")
        after = "\n## Hand-written\n\nanalysis stays.\n"
        with open(self.doc, "w") as f:
            f.write(before + "<!-- bench all: begin -->\nold figures\n<!-- bench all: end -->\n" + after)
        self.run_report()
        with open(self.doc) as f:
            text = f.read()
        self.assertTrue(text.startswith(before))
        self.assertTrue(text.endswith(after))
        self.assertNotIn("old figures", text)
        self.assertIn("| drover | 200 | 300, 100, 200 |", text)
        self.assertIn("**peer dask: not installed: apt-get failed**", text)
        self.run_report()
        with open(self.doc) as f:
            self.assertEqual(f.read(), text)

    # Given a document without markers, the section should be appended.
    def test_doc_without_markers_gets_the_section_appended(self):
        with open(self.doc, "w") as f:
            f.write("# Title\n")
        self.run_report()
        with open(self.doc) as f:
            text = f.read()
        self.assertTrue(text.startswith("# Title\n\n<!-- bench all: begin"))
        self.assertTrue(text.endswith(report.END + "\n"))

    # Given targets in each form, target_met should judge them.
    def test_target_met(self):
        self.assertTrue(report.target_met(0.9, ">=0.9"))
        self.assertFalse(report.target_met(1.0, ">1"))
        self.assertTrue(report.target_met(2, "<=2"))
        self.assertIsNone(report.target_met(None, ">=1"))
        self.assertIsNone(report.target_met(1.0, ""))


if __name__ == "__main__":
    unittest.main()
