#!/usr/bin/env python3
"""Assembles tools/bench/bench's records into its JSON file and, for
`bench all`, the generated section of docs/benchmarks.md.

The bench appends one JSON object a line to a records file as it measures
(see `rec` in lib/common.sh): start, scenario, run, ratio, skip, figure,
check, peer, scenario_end, end. This script groups them by scenario,
computes each runner's median of each metric (the same median the bench
prints: the middle value, or the mean of the two middle ones), adds the
machine and the git commit, and writes the JSON file described in
docs/benchmarks.md ("The JSON file"). Only the standard library.

    report.py --records FILE --json OUT --root REPO --build-dir DIR
              --command "tools/bench/bench all ..." [--doc docs/benchmarks.md]
"""
import argparse
import json
import os
import platform
import re
import subprocess
import sys

SCHEMA = 1
BEGIN = "<!-- bench all: begin"
END = "<!-- bench all: end -->"


def median(values):
    v = sorted(values)
    n = len(v)
    if n == 0:
        return None
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def target_met(value, target):
    """'>=0.9', '<=2', '>1', '<1' against value; None without a target."""
    m = re.fullmatch(r"\s*(>=|<=|>|<)\s*([0-9.eE+-]+)\s*", target or "")
    if not m or not isinstance(value, (int, float)):
        return None
    op, bound = m.group(1), float(m.group(2))
    return {">=": value >= bound, "<=": value <= bound, ">": value > bound, "<": value < bound}[op]


def loadavg(text):
    return [float(x) for x in str(text).split()[:3]]


def git(root, *args):
    try:
        return subprocess.run(["git", "-C", root, *args], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def machine(start, end):
    cpu = "unknown"
    mem_mb = None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem_mb = int(line.split()[1]) // 1024
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "kernel": f"{platform.system()} {platform.release()}",
        "arch": platform.machine(),
        "memory_mb": mem_mb,
        "load_start": loadavg(start.get("load", "")),
        "load_end": loadavg(end.get("load", "")),
        "date_start": start.get("date"),
        "date_end": end.get("date"),
    }


def assemble(records, args):
    start = next((r for r in records if r["type"] == "start"), {})
    end = next((r for r in records if r["type"] == "end"), {})
    peers = {}
    scenarios = {}
    for r in records:
        kind = r["type"]
        if kind == "peer":
            entry = {"status": r["status"]}
            if r.get("version"):
                entry["version"] = str(r["version"])
            if r.get("reason"):
                entry["reason"] = r["reason"]
            peers[r["name"]] = entry
            continue
        name = r.get("scenario")
        if not name:
            continue
        s = scenarios.setdefault(name, {"runners": {}, "ratios": [], "skipped": [],
                                        "figures": [], "checks": []})
        if kind == "scenario":
            s["description"] = r.get("description")
            s["command"] = r.get("command", "").strip()
            s["load_start"] = loadavg(r.get("load", ""))
            s["date_start"] = r.get("date")
            s["params"] = {k: v for k, v in r.items()
                           if k not in ("type", "scenario", "description", "command", "load", "date")}
        elif kind == "scenario_end":
            s["load_end"] = loadavg(r.get("load", ""))
            s["date_end"] = r.get("date")
        elif kind == "run":
            if not isinstance(r.get("value"), (int, float)):
                continue  # e.g. a latency the store could not give ("-")
            metric = s["runners"].setdefault(r["runner"], {}).setdefault(r["metric"], {"runs": []})
            metric["runs"].append(r["value"])
        elif kind == "ratio":
            entry = {"name": r["name"], "value": r["value"] if r["value"] != "-" else None}
            if r.get("target"):
                entry["target"] = r["target"]
                entry["met"] = target_met(entry["value"], r["target"])
            s["ratios"].append(entry)
        elif kind == "skip":
            s["skipped"].append({"runner": r["runner"], "reason": r["reason"]})
        elif kind == "figure":
            s["figures"].append({k: v for k, v in r.items() if k not in ("type", "scenario")})
        elif kind == "check":
            s["checks"].append({k: v for k, v in r.items() if k not in ("type", "scenario")})
    for s in scenarios.values():
        for metrics in s["runners"].values():
            for m in metrics.values():
                m["median"] = median(m["runs"])
                m["min"] = min(m["runs"])
                m["max"] = max(m["runs"])
    commit = git(args.root, "rev-parse", "HEAD")
    status = git(args.root, "status", "--porcelain", "--untracked-files=no")
    return {
        "schema": SCHEMA,
        "command": args.command.strip(),
        "size": start.get("size", 1),
        "git": {"commit": commit, "dirty": bool(status) if status is not None else None,
                "branch": git(args.root, "rev-parse", "--abbrev-ref", "HEAD")},
        "build_dir": args.build_dir,
        "machine": machine(start, end),
        "peers": peers,
        "scenarios": scenarios,
    }


def fmt(v):
    if v is None:
        return "-"
    if isinstance(v, float) and abs(v) < 10:
        return f"{v:.2f}"
    return f"{v:,.0f}"


UNITS = {"tasks_per_s": "tasks/s", "p50_ms": "p50 ms", "p99_ms": "p99 ms",
         "peak_rss_mb": "peak RSS MB", "requests_per_s": "req/s", "round_trips_per_s": "round trips/s",
         "p50_us": "p50 µs", "cpu_us_per_rt": "CPU µs/rt", "sort_ms": "sort ms",
         "seconds": "s", "mb_per_s": "MB/s", "first_dispatch_ms": "first dispatch ms",
         "dispatch_phase_tasks_per_s": "then tasks/s", "cpu_us_per_task": "CPU µs/task",
         "workers_cpu_us_per_task": "workers CPU µs/task",
         "longest_pause_ms": "longest pause ms"}


def markdown(doc, json_name):
    m = doc["machine"]
    lines = [
        f"{BEGIN} (generated by `tools/bench/bench all` with {json_name};"
        " edits between these markers are overwritten) -->",
        "",
        "## The latest `bench all` (generated)",
        "",
        f"`{doc['command']}` at {doc['git']['commit'][:10] if doc['git']['commit'] else '?'}"
        f"{' (with local changes)' if doc['git'].get('dirty') else ''},"
        f" {m['date_start']} to {m['date_end']}; {m['nproc']} x {m['cpu']}, {m['kernel']};"
        f" load average {' '.join(map(str, m['load_start']))} at the start,"
        f" {' '.join(map(str, m['load_end']))} at the end. Medians; every run's figure is in the"
        " JSON file.",
        "",
    ]
    missing = [(k, v) for k, v in doc["peers"].items() if v["status"] == "not installed"]
    versions = [f"{k} {v['version']}" if not v.get("version", "").lower().startswith(k.lower())
                else v["version"] for k, v in sorted(doc["peers"].items()) if v.get("version")]
    if versions:
        lines += ["Peers and tools: " + "; ".join(versions) + ".", ""]
    for k, v in missing:
        lines += [f"**peer {k}: not installed: {v.get('reason', '?')}**", ""]
    for name, s in doc["scenarios"].items():
        lines += [f"### {name}", "", f"`{s.get('command', '')}`: {s.get('description', '')}"
                  f" (load {' '.join(map(str, s.get('load_start', [])))} to"
                  f" {' '.join(map(str, s.get('load_end', [])))})", ""]
        metrics = []
        for runner in s["runners"].values():
            for metric in runner:
                if metric not in metrics:
                    metrics.append(metric)
        if s["runners"]:
            lines.append("| runner | " + " | ".join(UNITS.get(x, x) for x in metrics) + " | runs ("
                         + UNITS.get(metrics[0], metrics[0]) + ") |")
            lines.append("|---|" + "---:|" * len(metrics) + "---|")
            for runner, ms in s["runners"].items():
                cells = [fmt(ms[x]["median"]) if x in ms else "" for x in metrics]
                runs = ", ".join(fmt(v) for v in ms.get(metrics[0], {}).get("runs", []))
                lines.append(f"| {runner} | " + " | ".join(cells) + f" | {runs} |")
            lines.append("")
        for r in s["ratios"]:
            target = ""
            if r.get("target"):
                target = f" (target {r['target']}: {'met' if r.get('met') else 'missed'})"
            lines.append(f"- {r['name']}: {fmt(r['value'])}x{target}")
        for r in s["skipped"]:
            lines.append(f"- not run: {r['runner']}: {r['reason']}")
        if s["ratios"] or s["skipped"]:
            lines.append("")
    lines.append(END)
    return "\n".join(lines) + "\n"


def refresh_doc(path, section):
    """Replaces the text between the markers (inclusive) with section; appends
    it when the markers are missing. The text around it is left as it is."""
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        text = ""
    # The markers count only on lines of their own (the prose may quote them).
    b = re.search(r"^" + re.escape(BEGIN) + r".*-->[ \t]*\n", text, re.M)
    e = re.search(r"^" + re.escape(END) + r"[ \t]*\n?", text, re.M)
    if b and e and e.start() > b.start():
        text = text[:b.start()] + section + text[e.end():]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    with open(path, "w") as f:
        f.write(text)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--records", required=True)
    p.add_argument("--json", required=True)
    p.add_argument("--root", required=True)
    p.add_argument("--build-dir", required=True)
    p.add_argument("--command", required=True)
    p.add_argument("--doc")
    args = p.parse_args()
    with open(args.records) as f:
        records = [json.loads(line) for line in f if line.strip()]
    doc = assemble(records, args)
    os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(doc, f, indent=1, ensure_ascii=False)
        f.write("\n")
    if args.doc:
        json_name = os.path.relpath(args.json, args.root)
        if json_name.startswith(".."):
            json_name = args.json
        refresh_doc(args.doc, markdown(doc, json_name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
