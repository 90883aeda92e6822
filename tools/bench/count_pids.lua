-- wrk script of `tools/bench/bench cluster`: counts responses per instance
-- by their X-Drover-Pid header, per wrk thread, and prints the totals.
-- `counts` must be a global: thread:get() in done() reads the globals of
-- each thread's own Lua state.
counts = {}
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function response(status, headers, body)
  local pid = headers["X-Drover-Pid"] or headers["x-drover-pid"] or "?"
  counts[pid] = (counts[pid] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    local c = thread:get("counts") or {}
    for pid, n in pairs(c) do total[pid] = (total[pid] or 0) + n end
  end
  local line = "instances:"
  for pid, n in pairs(total) do line = line .. " " .. pid .. "=" .. n end
  print(line)
end
