#!/usr/bin/env python3
"""A drover fork-pool process in Python (docs/backends/fork.md).

It speaks the channel of Node's child_process.fork: one JSON message per
line on the file descriptor named by NODE_CHANNEL_FD, one reply line each.
  {"text": "..."}  -> {"lines": L, "words": W, "top": [[word, count], ...]}
  [1, 2, 3]        -> {"count": 3, "sum": 6, "mean": 2.0, "min": 1, "max": 3}
"""
import collections, json, os

fd = int(os.environ["NODE_CHANNEL_FD"])
replies = os.fdopen(os.dup(fd), "wb")
for line in os.fdopen(fd, "rb"):  # ends when drover closes the channel
    msg = json.loads(line)
    if isinstance(msg, dict) and isinstance(msg.get("text"), str):
        words = msg["text"].lower().split()
        reply = {"lines": len(msg["text"].splitlines()), "words": len(words),
                 "top": collections.Counter(words).most_common(3)}
    else:
        nums = [float(x) for x in msg] if isinstance(msg, list) else []
        reply = {"count": len(nums), "sum": sum(nums), "min": min(nums, default=None),
                 "mean": sum(nums) / len(nums) if nums else None, "max": max(nums, default=None)}
    replies.write(json.dumps(reply, separators=(",", ":")).encode() + b"\n")
    replies.flush()
