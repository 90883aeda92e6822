#!/usr/bin/env python3
"""Writes tests/fuzz/corpus/protocol/: real encoded messages, one of each
command in both modes of fuzz_protocol.cc (body mode: the command's index,
then its body; frames mode: header, command and body frames, and payload
frames where the command has them). Bodies are encoded by protoc from the
text below, so they are what the C++ code sends. Run from anywhere:
  tests/fuzz/make_protocol_seeds.py"""
import os, struct, subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests/fuzz/corpus/protocol")

# (command byte, message, text format), in the order of kCommands.
COMMANDS = [
    (0x01, "Hello", 'name: "w1" hostname: "host" pid: 42 session: "s" slots {key: "spawn" value: 4} '
                    'labels {key: "gpu" value: "1"} running: [7, 8] heartbeat_ms: 1000 version: "0.1.0" '
                    'services: "db" pools: "p"'),
    (0x02, "Welcome", 'coordinator: "c1" heartbeat_ms: 1000 liveness: 3 unknown: 9'),
    (0x03, "Dispatch", 'attempt_id: 1 job_id: "j1" task: "build" attempt: 1 backend: "spawn" '
                       'argv: ["sh", "-c", "echo hi"] env {name: "A" value: "b"} cwd: "/tmp" timeout_ms: 5000 '
                       'kill_grace_ms: 100 output_limit: 1024 slots: 1 payload: "\\n\\x02sh"'),
    (0x04, "Result", 'attempt_id: 1 reason: "exit" exit_code: 3 message: "exit 3" wall_us: 1000 '
                     'stdout {bytes: 2} stderr {bytes: 0} result_json: "[1,2]" worker: "w1"'),
    (0x05, "Ack", 'attempt_ids: [1, 2, 3]'),
    (0x06, "Cancel", 'attempt_ids: 4'),
    (0x07, "Heartbeat", ''),
    (0x08, "Disconnect", 'reason: "drained" drained: true'),
    (0x10, "Submit", 'spec_file: "job.yaml" spec_text: "tasks:\\n  a: {run: echo a}\\n" watch: true cwd: "/"'),
    (0x11, "Submitted", 'job_id: "j1" errors: "job.yaml:1:1: bad" tasks: 3'),
    (0x12, "TaskEvent", 'job_id: "j1" task: "a" state: "failed" attempt: 1 reason: "exit" detail: "exit 1" '
                        'worker: "w1" counts {total: 2 failed: 1 running: 1}'),
    (0x13, "JobEvent", 'job_id: "j1" state: "succeeded" counts {total: 1 succeeded: 1}'),
    (0x14, "CancelJob", 'job_id: "j1" task: "a"'),
    (0x15, "Watch", 'job_id: "j1" output: true'),
    (0x16, "StatusRequest", 'job_id: "j1" limit: 10 tasks: true'),
    (0x17, "StatusReply", 'jobs {job_id: "j1" name: "n" state: "running" counts {total: 1} '
                          'tasks {name: "a" state: "running" attempts: 2 earlier {attempt: 1 reason: "exit"}}}'),
    (0x18, "WorkersRequest", ''),
    (0x19, "WorkersReply", 'workers {name: "w1" labels {key: "k" value: "v"} slots {key: "spawn" value {total: 4 used: 1}} '
                           'state: "ready" running: 1}'),
    (0x1A, "RetryJob", 'job_id: "j1" watch: true'),
    (0x1B, "LogsRequest", 'job_id: "j1" task: "a"'),
    (0x1C, "Logs", 'job_id: "j1" task: "a" attempt: 2 done: true state: "succeeded"'),
    (0x1E, "Ok", 'message: "cancelled"'),
    (0x1F, "Error", 'message: "no such job"'),
    (0x09, "Draining", 'deadline_ms: 30000'),
    (0x0A, "Output", 'attempt_id: 1 stream: 1 offset: 0 job_id: "j1" task: "a"'),
    (0x0B, "JobDone", 'job_id: "j1"'),
    (0x0C, "ServiceReloaded", 'request_id: 1 services {worker: "w1" job_id: "j1" name: "web" describe: "up"} missing: "x"'),
    (0x1D, "ServiceReload", 'request_id: 1 job_id: "j1" service: "web"'),
]
PAYLOADS = {0x04: [b"hi", b""], 0x0A: [b"line\n"], 0x1C: [b"out", b"err"]}


def encode(message, text):
    return subprocess.run(
        ["protoc", "--encode=drover.wire." + message, "-I", os.path.join(ROOT, "core/protocol"),
         "drover.proto"], input=text.encode(), capture_output=True, check=True).stdout


def frames(parts):
    return b"".join(struct.pack("<H", len(p)) + p for p in parts)


os.makedirs(OUT, exist_ok=True)
for index, (command, message, text) in enumerate(COMMANDS):
    body = encode(message, text)
    name = message.lower()
    with open(os.path.join(OUT, name + ".body"), "wb") as f:
        f.write(bytes([index]) + body)
    parts = [b"DROVER\x01", bytes([command]), body] + PAYLOADS.get(command, [])
    with open(os.path.join(OUT, name + ".frames"), "wb") as f:
        f.write(b"\x80" + frames(parts))
    with open(os.path.join(OUT, name + ".router"), "wb") as f:
        f.write(b"\xc0" + frames([b"\x00\x6b\x8b\x45\x67"] + parts))
# Refused messages: another version, an unknown command, no body frame.
with open(os.path.join(OUT, "version2.frames"), "wb") as f:
    f.write(b"\x80" + frames([b"DROVER\x02", b"\x01", b""]))
with open(os.path.join(OUT, "unknown-command.frames"), "wb") as f:
    f.write(b"\x80" + frames([b"DROVER\x01", b"\x7f", b""]))
with open(os.path.join(OUT, "no-body.frames"), "wb") as f:
    f.write(b"\x80" + frames([b"DROVER\x01", b"\x07"]))
