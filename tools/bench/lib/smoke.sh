# shellcheck shell=bash
# tools/bench/lib/smoke.sh: `tools/bench/bench smoke`, the bench-smoke
# ctest (label bench). Each scenario at about a tenth of its size, drover
# only (no peer: it runs where only tools/setup's packages are), each
# figure read as a ratio to a limit measured just before it in the same
# run, on the same machine, under the same load. It fails only on a
# collapse: a ratio below a floor set far under what a working build gives
# (about a third of the worst ratio seen here under load and under ASan),
# so that a hot path made ten times slower fails and a busy machine
# passes. A check below its floor is measured again, up to 3 attempts in
# all, on the best figures so far (smoke_check says why): a burst of load
# passes, a collapse does not. docs/benchmarks.md ("The smoke test") has
# the floors' measurements.

# The floors (drover's figure / the limit's, the best of each over the
# attempts). A ratio below its floor is a collapse. Each was set at about a
# third of the lowest ratio a working build gave on the 2-vCPU VM, at load
# averages from 1 to 6, in the plain and the asan build, so that a hot path
# made ten times slower falls under it; docs/benchmarks.md ("The smoke
# test") has the measurements and the injected slowdowns it caught.
readonly FLOOR_SPAWN=0.06      # drover run -j 2 / raw posix_spawn loop, 1,000 `true`
                               #   (0.19-0.90, asan 0.23-0.28; drover's per-task
                               #   cost 10x: 0.015-0.035)
readonly FLOOR_THREADS=0.02    # threads backend / bare mutex+condvar queue
                               #   (0.04-0.11, asan 0.053)
readonly FLOOR_DISPATCH=0.0015 # durable tasks/s (drover run, coordinator+2 workers) /
                               #   the threads backend alone, 10,000 tasks
                               #   (0.004-0.010, asan 0.016-0.020; a coordinator
                               #   10x slower a dispatch: 0.0007-0.001)
readonly CEIL_RSS_KB=20        # peak RSS a task (KB), 10,000 tasks, above a 1-task
                               #   job's (2.7, asan 3.7-4.2 with its quarantine off)
readonly FLOOR_CLUSTER=0.2     # drover serve hello, 2 instances in round-robin /
                               #   one drover serve hello process, wrk -d1s (0.89-1.94)
readonly FLOOR_ARTIFACTS=0.012 # drover a -> coordinator -> b / the best of 3 bare
                               #   socket copies, MB/s (0.06-0.45, asan 0.03-0.08:
                               #   four processes against one, load hits it hardest)
# cow child round trips / raw socketpair ping-pong (0.48-1.48). The raw
# ping-pong is two syscalls a trip, which ASan does not slow; the cow
# child's JSON and bookkeeping it does (asan 0.16-0.29), so an instrumented
# build gets its own floor.
FLOOR_IPC=0.1
FLOOR_IPC_SANITIZED=0.04
readonly FLOOR_WORKERS=0.2     # 100 one-slot simulated workers / 2 of 32 slots, 2,000
                               #   tasks (0.57-0.76, asan 0.64-0.80; 1 ms more a
                               #   RESULT message: 0.095)
readonly SMOKE_ATTEMPTS=3

SMOKE_FAILED=0
SMOKE_OURS=""    # set by a measurement: drover's rate (higher is better)
SMOKE_LIMIT=""   # and the limit's, measured just before it
SMOKE_VALUE=""   # or, for rss, the value itself
SMOKE_DETAIL=""

max_of() { awk -v a="${1:-}" -v b="${2:-}" 'BEGIN { print (a == "" || b + 0 > a + 0) ? b : a }'; }
min_of() { awk -v a="${1:-}" -v b="${2:-}" 'BEGIN { print (a == "" || b + 0 < a + 0) ? b : a }'; }

# Runs MEASURE up to SMOKE_ATTEMPTS times until the figure satisfies OP
# BOUND; records the check. The figure is the ratio of the best rate drover
# reached over the attempts so far to the best rate the limit reached (for
# rss, the lowest value): load only ever slows a run down, so retrying
# refines both estimates of what the code can do, and a collapsed drover
# stays collapsed while its limit's best can only rise. A measurement that
# fails to run (a crash, a wrong result) is a failure at once.
smoke_check() {  # NAME OP BOUND MEASURE
  local name="$1" op="$2" bound="$3" measure="$4" attempt best_ours="" best_limit="" value=""
  if [[ -n "$SMOKE_ONLY" && ",$SMOKE_ONLY," != *",$name,"* ]]; then return 0; fi
  for ((attempt = 1; attempt <= SMOKE_ATTEMPTS; attempt++)); do
    SMOKE_OURS=""
    SMOKE_LIMIT=""
    SMOKE_VALUE=""
    SMOKE_DETAIL=""
    if ! "$measure"; then
      echo "smoke: $name: FAILED to run: $SMOKE_DETAIL"
      rec check scenario=smoke check="$name" value="-" op="$op" bound="$bound" attempts="$attempt" passed=0 \
        detail="failed to run: $SMOKE_DETAIL"
      SMOKE_FAILED=1
      return 0
    fi
    if [[ -n "$SMOKE_OURS" ]]; then
      best_ours="$(max_of "$best_ours" "$SMOKE_OURS")"
      best_limit="$(max_of "$best_limit" "$SMOKE_LIMIT")"
      value="$(ratio "$best_ours" "$best_limit")"
    else
      value="$(min_of "$value" "$SMOKE_VALUE")"
    fi
    if awk -v v="$value" -v b="$bound" -v op="$op" \
         'BEGIN { exit !(op == ">=" ? v >= b : v <= b) }'; then
      printf 'smoke: %-12s %8.4g %s %-6s ok (%s; attempt %d)\n' "$name" "$value" "$op" "$bound" \
        "$SMOKE_DETAIL" "$attempt"
      rec check scenario=smoke check="$name" value="$value" op="$op" bound="$bound" attempts="$attempt" \
        passed=1 detail="$SMOKE_DETAIL" load="$(cut -d' ' -f1-3 /proc/loadavg)"
      return 0
    fi
    printf 'smoke: %-12s %8.4g not %s %s (%s; attempt %d of %d, load %s)\n' "$name" "$value" \
      "$op" "$bound" "$SMOKE_DETAIL" "$attempt" "$SMOKE_ATTEMPTS" "$(cut -d' ' -f1-3 /proc/loadavg)"
  done
  echo "smoke: $name: COLLAPSE: below its floor after $SMOKE_ATTEMPTS attempts"
  rec check scenario=smoke check="$name" value="$value" op="$op" bound="$bound" attempts="$SMOKE_ATTEMPTS" \
    passed=0 detail="$SMOKE_DETAIL" load="$(cut -d' ' -f1-3 /proc/loadavg)"
  SMOKE_FAILED=1
}

# Times COMMAND...; prints N / seconds. Fails when the command does (its
# stderr is in $WORK/err).
timed_rate() {  # N COMMAND...
  local n="$1" t0 t1
  shift
  t0="$(now_ns)"
  "$@" >/dev/null 2>"$WORK/err" || return 1
  t1="$(now_ns)"
  rate_between "$n" "$t0" "$t1"
}

smoke_spawn() {
  local raw ours
  raw="$(timed_rate "$SPAWN_TASKS" "$SPAWN_LOOP" "$SPAWN_TASKS" 2 true)" ||
    { SMOKE_DETAIL="spawn_loop failed: $(tail -n 3 "$WORK/err" | tr '\n' ' ')"; return 1; }
  rm -rf -- "$WORK/smoke-state"
  ours="$(timed_rate "$SPAWN_TASKS" "$DROVER" run -j 2 --state-dir "$WORK/smoke-state" "$WORK/spawn.yaml")" ||
    { SMOKE_DETAIL="drover run failed: $(tail -n 3 "$WORK/err" | tr '\n' ' ')"; return 1; }
  rm -rf -- "$WORK/smoke-state"
  SMOKE_OURS="$ours"
  SMOKE_LIMIT="$raw"
  SMOKE_DETAIL="drover run $ours tasks/s, raw loop $raw tasks/s"
}

# The best of 3 runs of threads_bench, in tasks/s: 100,000 noop tasks
# through the threads backend, or with --bare 1 the limit, 1,000,000 empty
# closures through the bare queue (it is 10 to 30 times faster, and its
# rate varies with how its threads happen to wake; over a million tasks the
# best of 3 runs varies by about 25% here). The best, not the median: load
# only ever slows a run down, so the best run is the one closest to what
# the code can do.
threads_rate() {  # [--bare 1]
  local tasks=100000
  [[ "${1:-}" != --bare ]] || tasks=1000000
  "$BUILD_DIR/backends/threads/threads_bench" --tasks "$tasks" --slots 2 --runs 3 "$@" \
    2>"$WORK/err" | awk '/^  run [0-9]+:/ { if ($3 > best) best = $3 } END { if (best) print best }'
}

smoke_threads() {
  local bare ours
  bare="$(threads_rate --bare 1)"
  ours="$(threads_rate)"
  [[ -n "$bare" && -n "$ours" ]] || { SMOKE_DETAIL="threads_bench failed: $(tail -n 3 "$WORK/err")"; return 1; }
  SMOKE_OURS="$ours"
  SMOKE_LIMIT="$bare"
  SMOKE_DETAIL="backend $ours tasks/s, bare queue $bare tasks/s"
}

# Durable tasks/s of MODE (run or tcp) over the threads backend's own rate,
# measured just before.
smoke_dispatch_mode() {  # MODE
  local limit rate
  limit="$(threads_rate)"
  [[ -n "$limit" ]] || { SMOKE_DETAIL="threads_bench failed"; return 1; }
  DISPATCH_RATE=()
  dispatch_once drover "$DROVER" "$1" 1 64 32 >/dev/null
  rate="${DISPATCH_RATE[drover/$1]# }"
  SMOKE_OURS="$rate"
  SMOKE_LIMIT="$limit"
  SMOKE_DETAIL="$( [[ $1 == run ]] && echo "drover run" || echo "coordinator+2 workers") $rate tasks/s, threads backend alone $limit tasks/s"
}
smoke_dispatch_run() { smoke_dispatch_mode run; }
smoke_dispatch_tcp() { smoke_dispatch_mode tcp; }

# Peak RSS a task: drover run of the 10,000-task job against a 1-task job,
# both threads noop, so that the fixed cost (libraries, SQLite, threads)
# cancels out.
smoke_rss() {
  local one many
  # An ASan build holds freed memory in a quarantine (256 MB by default):
  # turned off here, so that what is measured is the memory drover keeps.
  # Other builds ignore ASAN_OPTIONS.
  local -x ASAN_OPTIONS="${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}quarantine_size_mb=0"
  rm -rf -- "$WORK/smoke-state"
  /usr/bin/time -f '%M' -o "$WORK/rss1" "$DROVER" run -j 64 --state-dir "$WORK/smoke-state" \
    "$WORK/one.yaml" >/dev/null 2>"$WORK/err" || { SMOKE_DETAIL="drover run (1 task) failed"; return 1; }
  rm -rf -- "$WORK/smoke-state"
  /usr/bin/time -f '%M' -o "$WORK/rssn" "$DROVER" run -j 64 --state-dir "$WORK/smoke-state" \
    "$WORK/dispatch.yaml" >/dev/null 2>"$WORK/err" || { SMOKE_DETAIL="drover run ($DISPATCH_TASKS tasks) failed"; return 1; }
  rm -rf -- "$WORK/smoke-state"
  one="$(tail -n1 "$WORK/rss1")"
  many="$(tail -n1 "$WORK/rssn")"
  SMOKE_VALUE="$(awk -v a="$many" -v b="$one" -v n="$DISPATCH_TASKS" 'BEGIN { printf "%.3f", (a - b) / (n - 1) }')"
  SMOKE_DETAIL="peak RSS $((many / 1024)) MB for $DISPATCH_TASKS tasks, $((one / 1024)) MB for 1; KB a task"
}

smoke_ipc() {
  local out="$WORK/ipc.out" cow raw
  (cd "$ROOT" && "$BUILD_DIR/backends/fork/ipc_bench" --round-trips "$IPC_ROUND_TRIPS" \
     --sort-size "$IPC_SORT_SIZE" --runs 1 --skip-node) >"$out" 2>"$WORK/err" ||
    { SMOKE_DETAIL="ipc_bench failed: $(tail -n 3 "$WORK/err" | tr '\n' ' ')"; return 1; }
  cow="$(awk '$1 == "figure" && $2 == "cow" && $3 == "round_trips_per_s" { print $4 }' "$out")"
  raw="$(awk '$1 == "figure" && $2 == "raw" && $3 == "round_trips_per_s" { print $4 }' "$out")"
  [[ -n "$cow" && -n "$raw" ]] || { SMOKE_DETAIL="ipc_bench printed no round-trip figures"; return 1; }
  SMOKE_OURS="$cow"
  SMOKE_LIMIT="$raw"
  SMOKE_DETAIL="cow child $cow round trips/s, raw ping-pong $raw/s"
}

# Durable tasks/s through a coordinator with WORKERS_COUNT simulated
# one-slot workers over the same with 2 workers of 32 slots (lib/workers.sh),
# one round each. A worker falsely taken for dead is a failure at once:
# that is a broken liveness check, not a slow one.
smoke_workers() {
  WORKERS_BENCH="$BUILD_DIR/tools/bench/workers_bench"
  [[ -x "$WORKERS_BENCH" ]] || { SMOKE_DETAIL="no workers_bench in $BUILD_DIR"; return 1; }
  WK_RATE=()
  WK_LOST=()
  workers_once drover "$DROVER" 2 32 1 >/dev/null
  workers_once drover "$DROVER" "$WORKERS_COUNT" 1 1 >/dev/null
  local two="${WK_RATE[drover/2]# }" many="${WK_RATE[drover/$WORKERS_COUNT]# }"
  local lost=$((${WK_LOST[drover/2]# } + ${WK_LOST[drover/$WORKERS_COUNT]# }))
  SMOKE_DETAIL="$WORKERS_COUNT workers $many tasks/s, 2 workers $two tasks/s, falsely lost $lost"
  ((lost == 0)) || return 1
  SMOKE_OURS="$many"
  SMOKE_LIMIT="$two"
}

# Requests/s of runner NAME (lib/cluster.sh) over one wrk -d1s.
cluster_rps() {  # NAME
  CLUSTER_PORT=""
  start_cluster_server "$1"
  wrk -t2 -c64 -d1s "http://127.0.0.1:$CLUSTER_PORT/" >"$WORK/wrk.out" 2>&1 || true
  stop_cluster_server
  awk '/^Requests\/sec:/ { print $2 }' "$WORK/wrk.out"
}

smoke_cluster() {
  local single rr
  single="$(cluster_rps serve@single)"
  rr="$(cluster_rps serve@round-robin)"
  [[ -n "$single" && -n "$rr" ]] || { SMOKE_DETAIL="wrk printed no rate: $(tail -n 3 "$WORK/wrk.out")"; return 1; }
  SMOKE_OURS="$rr"
  SMOKE_LIMIT="$single"
  SMOKE_DETAIL="2 instances round-robin $rr req/s, 1 process $single req/s"
}

smoke_artifacts() {
  local dir="$WORK/artifacts" sock="" s i
  # The limit: the best of 3 bare socket copies (each a fraction of a
  # second; one alone varied 4x here from run to run).
  for i in 1 2 3; do
    rm -f -- "$dir/copy.bin"
    s="$(python3 "$ROOT/tools/bench/socket_copy.py" "$dir/src.bin" "$dir/copy.bin")" ||
      { SMOKE_DETAIL="socket_copy.py failed"; return 1; }
    sock="$(awk -v a="$sock" -v b="$s" 'BEGIN { print (a == "" || b < a) ? b : a }')"
  done
  rm -f -- "$dir/copy.bin"
  DROVER_SECONDS=()
  RSS_LINES=()
  artifacts_round "$dir" 1 >/dev/null
  d="${DROVER_SECONDS[0]}"
  # As rates (MiB/s), so that the best of the attempts is the highest.
  SMOKE_OURS="$(awk -v m="$ARTIFACT_SIZE_MIB" -v t="$d" 'BEGIN { printf "%.1f", m / t }')"
  SMOKE_LIMIT="$(awk -v m="$ARTIFACT_SIZE_MIB" -v t="$sock" 'BEGIN { printf "%.1f", m / t }')"
  SMOKE_DETAIL="$ARTIFACT_SIZE_MIB MiB: drover $d s, bare socket copy $sock s"
}

cmd_smoke() {
  command -v sqlite3 >/dev/null || die "sqlite3 is missing (apt-get install sqlite3)"
  [[ -x /usr/bin/time ]] || die "/usr/bin/time is missing (apt-get install time)"
  if grep -qE '^DROVER_(FUZZ|SANITIZE):BOOL=ON' "$BUILD_DIR/CMakeCache.txt" 2>/dev/null; then
    FLOOR_IPC="$FLOOR_IPC_SANITIZED"
    echo "smoke: an AddressSanitizer build: ipc floor $FLOOR_IPC"
  fi
  begin_scenario smoke "every scenario at a tenth of its size against a limit measured just before; fails on a collapse" \
    floor_ipc="$FLOOR_IPC"
  build
  check_drover
  write_job "$SPAWN_TASKS" "$WORK/spawn.yaml"
  write_noop_job "$DISPATCH_TASKS" "$WORK/dispatch.yaml"
  write_noop_job 1 "$WORK/one.yaml"
  write_noop_job "$WORKERS_TASKS" "$WORK/workers.yaml"
  mkdir -p "$WORK/artifacts"
  write_artifacts_files "$WORK/artifacts" "$ARTIFACT_SIZE_MIB"
  echo "smoke: $SPAWN_TASKS spawn tasks, 100000 threads tasks, $DISPATCH_TASKS durable tasks,"
  echo "       $WORKERS_TASKS tasks to $WORKERS_COUNT simulated workers, $IPC_ROUND_TRIPS round trips,"
  echo "       wrk -d1s, a $ARTIFACT_SIZE_MIB MiB artifact"
  machine
  local start=$SECONDS
  smoke_check spawn ">=" "$FLOOR_SPAWN" smoke_spawn
  smoke_check threads ">=" "$FLOOR_THREADS" smoke_threads
  smoke_check dispatch-run ">=" "$FLOOR_DISPATCH" smoke_dispatch_run
  smoke_check dispatch-tcp ">=" "$FLOOR_DISPATCH" smoke_dispatch_tcp
  smoke_check rss "<=" "$CEIL_RSS_KB" smoke_rss
  smoke_check workers ">=" "$FLOOR_WORKERS" smoke_workers
  smoke_check ipc ">=" "$FLOOR_IPC" smoke_ipc
  if [[ -n "$SMOKE_ONLY" && ",$SMOKE_ONLY," != *",cluster,"* ]]; then
    :
  elif ensure_wrk; then
    smoke_check cluster ">=" "$FLOOR_CLUSTER" smoke_cluster
  else
    echo "smoke: cluster: FAILED: wrk is missing and could not be installed (tools/setup installs it)"
    rec check scenario=smoke check=cluster value="-" passed=0 detail="wrk missing"
    SMOKE_FAILED=1
  fi
  smoke_check artifacts ">=" "$FLOOR_ARTIFACTS" smoke_artifacts
  echo "smoke: $((SECONDS - start)) s, $( ((SMOKE_FAILED)) && echo "FAILED" || echo "passed")"
  end_scenario
}
