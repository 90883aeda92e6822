# shellcheck shell=bash
# tools/bench/lib/dispatch.sh: the dispatch scenario.
#
#   dispatch 100,000 threads `noop` tasks, every result committed to SQLite
#          before it is acknowledged, under `drover run` and through
#          `drover coordinator` and two `drover worker`s as separate
#          processes over TCP loopback (`drover submit --wait`), interleaved,
#          median of --runs runs: tasks/s, the p50/p99 of each attempt's
#          dispatch-to-commit latency (read back from the store), peak RSS.
#          --compare DIR runs another build's drover in the same rounds
#          (e.g. the commit before a change). Target: 100,000 tasks/s.
#          Peers in the same rounds (installed on first use from Debian):
#          Dask distributed (a scheduler and 2 workers) and Celery with Redis
#          as broker and result backend (2 workers), each running
#          --peer-tasks no-op tasks (default: the same N, at most 10,000:
#          they run at about 1,000 tasks/s).
#          Also, each round: the longest pause in the dispatching of a
#          running job (N/2 tasks) while another client submits the N-value
#          spec (docs/benchmarks.md, session 25: the spec is loaded off the
#          coordinator's loop), and while another client polls the
#          status of a finished job of N tasks (session 26: such reads are
#          answered off the loop).
#          The limit, in the same rounds: tools/bench/dispatch_floor, the
#          least a durable coordinator does for a task (drover's own rows in
#          drover's schema, one transaction a loop turn, plain messages to 2
#          worker processes over TCP loopback), the same N tasks and slots.

readonly DISPATCH_TARGET=100000  # tasks/s through a coordinator and 2 workers

# Ends the daemons of one run: SIGTERM (workers drain, idle), then SIGKILL
# whatever has not gone within 10 s. Every one is waited for by pid.
stop_daemons() {
  local pid i
  for pid in "${DAEMON_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for ((i = 0; i < 100; i++)); do
    local alive=0
    for pid in "${DAEMON_PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    ((alive)) || break
    sleep 0.1
  done
  for pid in "${DAEMON_PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  for pid in "${DAEMON_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  DAEMON_PIDS=()
}

# Starts BINARY's coordinator on an ephemeral loopback port and two workers
# of SLOTS threads slots each (and --prefetch PREFETCH when it is given),
# and waits until both are registered. Sets ENDPOINT; the coordinator's pid
# is DAEMON_PIDS[0].
ENDPOINT=""
start_cluster() {  # BINARY DIR SLOTS [PREFETCH]
  local bin="$1" dir="$2" i
  local prefetch=()
  [[ -n "${4:-}" ]] && prefetch=(--prefetch "$4")
  mkdir -p "$dir/w1" "$dir/w2"
  "$bin" coordinator --listen tcp://127.0.0.1:0 --state-dir "$dir/state" \
    >"$dir/coordinator.out" 2>"$dir/coordinator.err" &
  DAEMON_PIDS+=($!)
  ENDPOINT=""
  for ((i = 0; i < 300; i++)); do  # 30 s at most
    ENDPOINT="$(head -n1 "$dir/coordinator.out" 2>/dev/null | grep -o 'tcp://[0-9.]*:[0-9]*' || true)"
    [[ -n "$ENDPOINT" ]] && break
    kill -0 "${DAEMON_PIDS[0]}" 2>/dev/null || break
    sleep 0.1
  done
  [[ -n "$ENDPOINT" ]] || { cat "$dir/coordinator.err" >&2; die "the coordinator printed no endpoint"; }
  local w
  for w in w1 w2; do
    (cd "$dir/$w" && exec "$bin" worker --connect "$ENDPOINT" --name "bench-$w" \
      --slots "threads=$3" "${prefetch[@]}" >"$dir/$w.out" 2>"$dir/$w.err") &
    DAEMON_PIDS+=($!)
  done
  for ((i = 0; i < 300; i++)); do  # both registered, 30 s at most
    local n
    n="$(DROVER_COORDINATOR="$ENDPOINT" "$bin" workers --output json 2>/dev/null |
           grep -o '"bench-w[12]"' | sort -u | wc -l || true)"
    [[ "$n" == 2 ]] && return 0
    sleep 0.1
  done
  cat "$dir"/*.err >&2
  die "the two workers did not register with $ENDPOINT"
}

# p50 and p99 of dispatch-to-commit latency, in ms, from a state database:
# an attempt's started_ms is stamped when it is dispatched and finished_ms
# when its RESULT is recorded, in the transaction that commits it.
latency_ms() {  # STATE_DB
  sqlite3 "$1" "SELECT finished_ms - started_ms FROM attempts WHERE finished = 1" | sort -n |
    awk '{ a[NR] = $1 } END {
      if (NR == 0) { print "- -"; exit }
      p50 = a[int((NR - 1) * 0.50) + 1]; p99 = a[int((NR - 1) * 0.99) + 1]
      print p50, p99
    }'
}

# Where a run's time went, from its state database and the wall clock's
# start (T0_NS): the time from the start to the first dispatch (the spec
# loaded, the job admitted), in ms, and the rate of the dispatch phase
# alone (first dispatch to last result recorded), in tasks/s.
phases() {  # STATE_DB T0_NS TASKS
  sqlite3 -separator ' ' "$1" "SELECT min(started_ms), max(finished_ms) FROM attempts" |
    awk -v t0="$2" -v n="$3" '{
      first = $1 - int(t0 / 1000000); span = $2 - $1
      printf "%d %.0f\n", first, (span > 0 ? n * 1000 / span : 0)
    }'
}

# "drover run -j 64", "drover coordinator + 2 workers"; "base: ..." for --compare's.
dispatch_label() {  # NAME MODE
  local prefix=""
  [[ "$1" == drover ]] || prefix="$1: "
  case "$2" in
    run) echo "${prefix}drover run -j $((2 * ((DISPATCH_JOBS + 1) / 2)))" ;;
    tcp) echo "${prefix}drover coordinator + 2 workers --prefetch 0" ;;
    tcpp) echo "${prefix}drover coordinator + 2 workers, default prefetch" ;;
  esac
}

# One timed run of MODE (run, tcp: workers with --prefetch 0, or tcpp:
# workers as shipped, with drover worker's default prefetch) with BINARY; appends to the DISPATCH_*
# arrays of NAME/MODE, records the run and prints a line.
declare -A DISPATCH_RATE=() DISPATCH_P50=() DISPATCH_P99=() DISPATCH_RSS=()
declare -A DISPATCH_FIRST=() DISPATCH_PHASE=() DISPATCH_CPU=() DISPATCH_WCPU=()
# CPU time (user + system, every thread) of process PID so far, in clock
# ticks (/proc/PID/stat fields 14 and 15; the command name, field 2, has
# no spaces here).
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
CLK_TCK="$(getconf CLK_TCK)"
readonly CLK_TCK
dispatch_once() {  # NAME BINARY MODE RUN TOTAL SLOTS
  local name="$1" bin="$2" mode="$3" run="$4" total="$5" slots="$6"
  local dir="$WORK/dispatch-$name-$mode-$run" t0 t1 rss db cpu wcpu=""
  mkdir -p "$dir"
  if [[ "$mode" == run ]]; then
    t0="$(now_ns)"
    /usr/bin/time -f '%M %U %S' -o "$dir/rss" "$bin" run -j "$total" --state-dir "$dir/state" \
      "$WORK/dispatch.yaml" >/dev/null 2>"$WORK/err" ||
      { cat "$WORK/err" >&2; die "$name: drover run failed (run $run)"; }
    t1="$(now_ns)"
    read -r rss cpu < <(tail -n1 "$dir/rss" |
      awk -v n="$DISPATCH_TASKS" '{ printf "%d %.1f\n", $1, ($2 + $3) * 1e6 / n }')
  else
    if [[ "$mode" == tcpp ]]; then
      # As shipped: the binary's own default (4 times the slots, of which
      # the coordinator uses more than the slots for short tasks, since
      # session 35; as many as the slots before).
      start_cluster "$bin" "$dir" "$slots"
    else
      # Said, not defaulted: drover worker prefetches by default since
      # session 17, and --compare may run an older binary.
      start_cluster "$bin" "$dir" "$slots" 0
    fi
    local c0 c1 w0 w1
    c0="$(cpu_ticks "${DAEMON_PIDS[0]}")"
    w0=$(($(cpu_ticks "${DAEMON_PIDS[1]}") + $(cpu_ticks "${DAEMON_PIDS[2]}")))
    t0="$(now_ns)"
    DROVER_COORDINATOR="$ENDPOINT" "$bin" submit --wait "$WORK/dispatch.yaml" \
      >/dev/null 2>"$WORK/err" || { cat "$WORK/err" >&2; die "$name: drover submit --wait failed (run $run)"; }
    t1="$(now_ns)"
    c1="$(cpu_ticks "${DAEMON_PIDS[0]}")"
    w1=$(($(cpu_ticks "${DAEMON_PIDS[1]}") + $(cpu_ticks "${DAEMON_PIDS[2]}")))
    cpu="$(awk -v d="$((c1 - c0))" -v hz="$CLK_TCK" -v n="$DISPATCH_TASKS" \
      'BEGIN { printf "%.1f", d * 1e6 / hz / n }')"
    # The two workers together, for the same tasks.
    wcpu="$(awk -v d="$((w1 - w0))" -v hz="$CLK_TCK" -v n="$DISPATCH_TASKS" \
      'BEGIN { printf "%.1f", d * 1e6 / hz / n }')"
    rss="$(awk '/^VmHWM:/ { print $2 }' "/proc/${DAEMON_PIDS[0]}/status" 2>/dev/null || echo 0)"
    stop_daemons
  fi
  db="$dir/state/state.db"
  local lat rate label key="$name/$mode" phase
  lat="$(latency_ms "$db")"
  phase="$(phases "$db" "$t0" "$DISPATCH_TASKS")"
  rate="$(rate_between "$DISPATCH_TASKS" "$t0" "$t1")"
  label="$(dispatch_label "$name" "$mode")"
  DISPATCH_RATE[$key]="${DISPATCH_RATE[$key]:-} $rate"
  DISPATCH_P50[$key]="${DISPATCH_P50[$key]:-} ${lat% *}"
  DISPATCH_P99[$key]="${DISPATCH_P99[$key]:-} ${lat#* }"
  DISPATCH_RSS[$key]="${DISPATCH_RSS[$key]:-} $((rss / 1024))"
  DISPATCH_FIRST[$key]="${DISPATCH_FIRST[$key]:-} ${phase% *}"
  DISPATCH_PHASE[$key]="${DISPATCH_PHASE[$key]:-} ${phase#* }"
  DISPATCH_CPU[$key]="${DISPATCH_CPU[$key]:-} $cpu"
  [[ -n "$wcpu" ]] && DISPATCH_WCPU[$key]="${DISPATCH_WCPU[$key]:-} $wcpu"
  rec_run "$label" tasks_per_s "$run" "$rate"
  rec_run "$label" p50_ms "$run" "${lat% *}"
  rec_run "$label" p99_ms "$run" "${lat#* }"
  rec_run "$label" peak_rss_mb "$run" "$((rss / 1024))"
  rec_run "$label" first_dispatch_ms "$run" "${phase% *}"
  rec_run "$label" dispatch_phase_tasks_per_s "$run" "${phase#* }"
  rec_run "$label" cpu_us_per_task "$run" "$cpu"
  [[ -n "$wcpu" ]] && rec_run "$label" workers_cpu_us_per_task "$run" "$wcpu"
  printf '  run %d  %-6s %-4s %9.0f tasks/s  p50 %4s ms  p99 %5s ms  peak RSS %4d MB  first dispatch %4s ms  then %6s tasks/s  CPU %5s us/task%s\n' \
    "$run" "$name" "$mode" "$rate" "${lat% *}" "${lat#* }" "$((rss / 1024))" "${phase% *}" "${phase#* }" "$cpu" \
    "${wcpu:+  workers $wcpu us/task}"
  rm -rf -- "$dir"
}

# One run of the limit (dispatch_floor): the same tasks and slots as
# drover's TCP runner.
declare -a FLOOR_RATE=()
floor_once() {  # RUN SLOTS
  local dir="$WORK/floor-$1" out rate
  out="$("$DISPATCH_FLOOR" --tasks "$DISPATCH_TASKS" --slots "$2" --state-dir "$dir" 2>"$WORK/err")" ||
    { cat "$WORK/err" >&2; die "dispatch_floor failed (run $1)"; }
  rate="$(sed -n 's/.*"tasks_per_s": *\([0-9.e+]*\).*/\1/p' <<<"$out")"
  [[ -n "$rate" ]] || die "dispatch_floor printed no rate: $out"
  FLOOR_RATE+=("$rate")
  rec_run "$FLOOR_LABEL" tasks_per_s "$1" "$rate"
  printf '  run %d  %-11s %9.0f tasks/s  (%s commits)\n' "$1" floor "$rate" \
    "$(sed -n 's/.*"commits": *\([0-9]*\).*/\1/p' <<<"$out")"
  rm -rf -- "$dir"
}
readonly FLOOR_LABEL="bare durable loop (the limit)"

# Waits until job A (bench-pause-a) has an attempt in the store DB, or its
# client PID is gone; 30 s at most. An attempt that runs is in the view
# running_attempts since schema 11 (docs/state.md), one that ended in
# attempts; a --compare build of an older schema has the table only.
wait_first_dispatch() {  # DB PID
  local i view
  for ((i = 0; i < 300; i++)); do
    for view in running_attempts attempts; do
      [[ "$(sqlite3 "$1" "SELECT count(*) > 0 FROM $view a JOIN jobs j ON j.id = a.job_id
          WHERE j.name = 'bench-pause-a'" 2>/dev/null)" == 1 ]] && return
    done
    kill -0 "$2" 2>/dev/null || return
    sleep 0.01
  done
}
# Job A's longest gap between two dispatches in the store DB (started_ms), in ms.
longest_gap() {  # DB
  sqlite3 "$1" "SELECT max(g) FROM (SELECT a.started_ms - lag(a.started_ms)
      OVER (ORDER BY a.started_ms) AS g FROM attempts a JOIN jobs j ON j.id = a.job_id
      WHERE j.name = 'bench-pause-a')"
}

# One run of the admission pause with BINARY: a coordinator and 2 workers,
# job A ($WORK/pause-a.yaml, N/2 tasks) submitted, and once its first
# attempt is in the store, job B (the N-value spec of the timed runs) from
# another client; both waited for. The longest gap between two of A's
# dispatches (started_ms, from the store), in ms: what B's admission
# cost the job already running.
declare -A PAUSE_MS=()
pause_once() {  # NAME BINARY RUN SLOTS
  local name="$1" bin="$2" run="$3" dir="$WORK/pause-$1-$3" a b gap label
  mkdir -p "$dir"
  start_cluster "$bin" "$dir" "$4" "$4"
  local db="$dir/state/state.db"
  DROVER_COORDINATOR="$ENDPOINT" "$bin" submit --wait "$WORK/pause-a.yaml" \
    >/dev/null 2>"$dir/a.err" &
  a=$!
  wait_first_dispatch "$db" "$a"
  DROVER_COORDINATOR="$ENDPOINT" "$bin" submit --wait "$WORK/dispatch.yaml" \
    >/dev/null 2>"$dir/b.err" &
  b=$!
  wait "$a" || { cat "$dir/a.err" >&2; stop_daemons; die "$name: job A failed (pause, run $run)"; }
  wait "$b" || { cat "$dir/b.err" >&2; stop_daemons; die "$name: job B failed (pause, run $run)"; }
  stop_daemons
  gap="$(longest_gap "$db")"
  [[ -n "$gap" ]] || die "$name: no pause measured (run $run)"
  label="$(pause_label "$name")"
  PAUSE_MS[$name]="${PAUSE_MS[$name]:-} $gap"
  rec_run "$label" longest_pause_ms "$run" "$gap"
  printf '  run %d  %-6s pause %5s ms  (job A'"'"'s longest gap between dispatches while B is submitted)\n' \
    "$run" "$name" "$gap"
  rm -rf -- "$dir"
}
pause_label() {  # NAME
  local prefix=""
  [[ "$1" == drover ]] || prefix="$1: "
  echo "${prefix}running job's longest pause, another job submitted"
}

# One run of the status poll with BINARY: a coordinator and 2 workers; job
# A ($WORK/pause-a.yaml) and, once A dispatches, another client asking
# `drover status` (every task listed) over and over until A ends, at most
# 1,000 times: WHICH=ended asks of job B (the N-value spec), run to its end
# before A (such reads are answered off the loop: docs/benchmarks.md,
# session 26); WHICH=own asks of A itself, running (its snapshot taken on
# the loop, rendered off it: session 29). A's longest gap between two
# dispatches, in ms: what answering the status cost the job running. Also
# the number of statuses answered meanwhile.
declare -A POLL_MS=() POLLS=()
poll_once() {  # NAME BINARY RUN SLOTS WHICH
  local name="$1" bin="$2" run="$3" which="$5" dir="$WORK/poll-$1-$3-$5" a of gap polls=0
  mkdir -p "$dir"
  start_cluster "$bin" "$dir" "$4" "$4"
  local db="$dir/state/state.db"
  if [[ "$which" == ended ]]; then
    DROVER_COORDINATOR="$ENDPOINT" "$bin" submit --wait "$WORK/dispatch.yaml" \
      >/dev/null 2>"$dir/b.err" || { cat "$dir/b.err" >&2; stop_daemons; die "$name: job B failed (poll, run $run)"; }
  fi
  DROVER_COORDINATOR="$ENDPOINT" "$bin" submit --wait "$WORK/pause-a.yaml" \
    >/dev/null 2>"$dir/a.err" &
  a=$!
  wait_first_dispatch "$db" "$a"
  local job_name=bench-pause-a
  [[ "$which" == ended ]] && job_name=bench-dispatch
  of="$(sqlite3 "$db" "SELECT id FROM jobs WHERE name = '$job_name'")"
  [[ -n "$of" ]] || { stop_daemons; die "$name: job $job_name is not in the store (poll, run $run)"; }
  while ((polls < 1000)) && kill -0 "$a" 2>/dev/null; do
    DROVER_COORDINATOR="$ENDPOINT" "$bin" status "$of" >/dev/null 2>"$dir/poll.err" ||
      { cat "$dir/poll.err" >&2; stop_daemons; die "$name: drover status $of failed (poll, run $run)"; }
    polls=$((polls + 1))
  done
  wait "$a" || { cat "$dir/a.err" >&2; stop_daemons; die "$name: job A failed (poll, run $run)"; }
  stop_daemons
  gap="$(longest_gap "$db")"
  [[ -n "$gap" ]] || die "$name: no pause measured (poll, run $run)"
  POLL_MS[$name/$which]="${POLL_MS[$name/$which]:-} $gap"
  POLLS[$name/$which]="${POLLS[$name/$which]:-} $polls"
  rec_run "$(poll_label "$name" "$which")" longest_pause_ms "$run" "$gap"
  if [[ "$which" == ended ]]; then
    printf '  run %d  %-6s poll  %5s ms  (job A'"'"'s longest gap while %d statuses of B were answered)\n' \
      "$run" "$name" "$gap" "$polls"
  else
    printf '  run %d  %-6s own   %5s ms  (job A'"'"'s longest gap while %d statuses of A were answered)\n' \
      "$run" "$name" "$gap" "$polls"
  fi
  rm -rf -- "$dir"
}
poll_label() {  # NAME WHICH
  local prefix=""
  [[ "$1" == drover ]] || prefix="$1: "
  if [[ "$2" == ended ]]; then
    echo "${prefix}running job's longest pause, a status polled"
  else
    echo "${prefix}running job's longest pause, its own status polled"
  fi
}

# Waits until FILE exists and is not empty, or the process PID is gone.
wait_for_file() {  # FILE PID SECONDS
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    [[ -s "$1" ]] && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# One run of peer NAME (dask or celery): fresh daemons on loopback, the
# client script times the tasks; the daemons are stopped by pid.
declare -A PEER_RATE=()
peer_once() {  # NAME RUN
  local name="$1" run="$2" dir="$WORK/peer-$1-$2" out rate
  mkdir -p "$dir"
  out="$dir/client.out"
  case "$name" in
    dask)
      "$DEBIAN_PYTHON" -m distributed.cli.dask_scheduler --host 127.0.0.1 --port 0 \
        --no-dashboard --scheduler-file "$dir/scheduler.json" >"$dir/scheduler.log" 2>&1 &
      DAEMON_PIDS+=($!)
      wait_for_file "$dir/scheduler.json" "$!" 60 ||
        { tail -n 20 "$dir/scheduler.log" >&2; stop_daemons; echo "dask scheduler did not start"; return 1; }
      local w
      for w in 1 2; do
        "$DEBIAN_PYTHON" -m distributed.cli.dask_worker --scheduler-file "$dir/scheduler.json" \
          --host 127.0.0.1 --nthreads 1 --no-nanny --no-dashboard --name "bench-w$w" \
          --local-directory "$dir/w$w" >"$dir/w$w.log" 2>&1 &
        DAEMON_PIDS+=($!)
      done
      "$DEBIAN_PYTHON" "$ROOT/tools/bench/dask_peer.py" "$dir/scheduler.json" \
        "$DISPATCH_PEER_TASKS" 2 >"$out" 2>"$dir/client.err" ||
        { tail -n 20 "$dir/client.err" "$dir"/*.log >&2; stop_daemons; return 1; }
      ;;
    celery)
      local port
      port="$(free_port)"
      mkdir -p "$dir/redis"
      # Loopback only, on a free port; the append-only file fsync'ed every
      # second (celery_peer.py says why), no RDB snapshots.
      redis-server --bind 127.0.0.1 --port "$port" --protected-mode yes --dir "$dir/redis" \
        --save '' --appendonly yes --appendfsync everysec --daemonize no \
        >"$dir/redis.log" 2>&1 &
      DAEMON_PIDS+=($!)
      local url="redis://127.0.0.1:$port/0" i
      for ((i = 0; i < 100; i++)); do
        grep -qs 'Ready to accept connections' "$dir/redis.log" && break
        sleep 0.1
      done
      grep -q 'Ready to accept connections' "$dir/redis.log" ||
        { tail -n 20 "$dir/redis.log" >&2; stop_daemons; return 1; }
      local w
      for w in 1 2; do
        (cd "$dir" && CELERY_PEER_REDIS="$url" PYTHONPATH="$ROOT/tools/bench" exec \
          "$DEBIAN_PYTHON" -m celery -A celery_peer worker --pool solo --concurrency 1 \
          --hostname "bench-w$w@127.0.0.1" --without-gossip --without-mingle \
          --loglevel WARNING >"$dir/w$w.log" 2>&1) &
        DAEMON_PIDS+=($!)
      done
      CELERY_PEER_REDIS="$url" PYTHONPATH="$ROOT/tools/bench" "$DEBIAN_PYTHON" \
        "$ROOT/tools/bench/celery_peer.py" "$DISPATCH_PEER_TASKS" 2 >"$out" 2>"$dir/client.err" ||
        { tail -n 20 "$dir/client.err" "$dir"/*.log >&2; stop_daemons; return 1; }
      ;;
  esac
  stop_daemons
  rate="$(sed -n 's/.*"tasks_per_s": *\([0-9.e+]*\).*/\1/p' "$out")"
  [[ -n "$rate" ]] || { cat "$out" >&2; return 1; }
  rate="$(awk -v r="$rate" 'BEGIN { printf "%.1f", r }')"
  PEER_RATE[$name]="${PEER_RATE[$name]:-} $rate"
  rec_run "$(peer_label "$name")" tasks_per_s "$run" "$rate"
  printf '  run %d  %-11s %9.0f tasks/s\n' "$run" "$name" "$rate"
  rm -rf -- "$dir"
}

peer_label() {
  case "$1" in
    dask) echo "Dask distributed: scheduler+2 workers" ;;
    celery) echo "Celery+Redis (results stored): 2 workers" ;;
  esac
}

cmd_dispatch() {
  command -v sqlite3 >/dev/null || die "sqlite3 is missing (apt-get install sqlite3)"
  [[ -x /usr/bin/time ]] || die "/usr/bin/time is missing (apt-get install time)"
  local slots=$(((DISPATCH_JOBS + 1) / 2))
  local total=$((2 * slots))
  begin_scenario dispatch "durable threads noop tasks under drover run and through a coordinator and 2 workers over TCP loopback, with Dask and Celery+Redis in the same rounds" \
    tasks="$DISPATCH_TASKS" peer_tasks="$DISPATCH_PEER_TASKS" in_flight="$total" runs="$RUNS" \
    target_tasks_per_s="$DISPATCH_TARGET" limit="$FLOOR_LABEL"
  uses sqlite3 time
  build
  check_drover
  DISPATCH_FLOOR="$BUILD_DIR/tools/bench/dispatch_floor"
  [[ -x "$DISPATCH_FLOOR" ]] || die "no dispatch_floor at $DISPATCH_FLOOR (build the target dispatch_floor)"
  local names=(drover) bins=("$DROVER")
  if [[ -n "$COMPARE_BUILD_DIR" ]]; then
    [[ -x "$COMPARE_BUILD_DIR/tools/cli/drover" ]] ||
      die "no drover binary at $COMPARE_BUILD_DIR/tools/cli/drover (--compare)"
    names+=(base)
    bins+=("$COMPARE_BUILD_DIR/tools/cli/drover")
  fi
  local peers=() p
  if [[ "$NO_PEERS" == 1 ]]; then
    rec_skip "dask, celery" "--no-peers given"
  else
    ensure_dask && peers+=(dask) || rec_skip dask "Dask distributed: not installed (see above)"
    ensure_celery && peers+=(celery) || rec_skip celery "Celery with Redis: not installed (see above)"
  fi
  write_noop_job "$DISPATCH_TASKS" "$WORK/dispatch.yaml"
  write_matrix_noop_job "$((DISPATCH_TASKS / 2))" "$WORK/pause-a.yaml"
  sed -i 's/^name: .*/name: bench-pause-a/' "$WORK/pause-a.yaml"
  echo
  echo "dispatch: $DISPATCH_TASKS threads noop tasks, durable (committed before ACK), $total in flight,"
  echo "          $RUNS runs each, interleaved"
  echo "  run:  drover run -j $total (coordinator and worker in one process over inproc://)"
  echo "  tcp:  drover coordinator + 2 drover workers (threads=$slots each) on tcp://127.0.0.1,"
  echo "        drover submit --wait (daemons started and registered before the clock starts)"
  echo "  tcp, default prefetch: the same with workers as shipped (drover worker's default"
  echo "        prefetch: 4 times the slots since session 35; the target's figure)"
  [[ -n "$COMPARE_BUILD_DIR" ]] && echo "  base: the same with $COMPARE_BUILD_DIR/tools/cli/drover"
  echo "  floor: $FLOOR_LABEL, tools/bench/dispatch_floor: drover's rows and schema, a commit"
  echo "         a turn, plain messages to 2 worker processes (slots=$slots each) on 127.0.0.1"
  for p in "${peers[@]}"; do
    echo "  $p: $(peer_label "$p"), $DISPATCH_PEER_TASKS no-op tasks on 127.0.0.1, timed by its client"
  done
  echo "  latency: dispatch to commit of each attempt (the store's started_ms, finished_ms)"
  echo "  pause: job A of $((DISPATCH_TASKS / 2)) tasks running through the coordinator, job B (the"
  echo "         $DISPATCH_TASKS-value spec above) submitted by another client once A dispatches:"
  echo "         A's longest gap between two dispatches"
  echo "  poll: the same job A, run once the job of the $DISPATCH_TASKS-value spec has ended, while"
  echo "        another client asks \`drover status\` of that job (every task listed) until A ends:"
  echo "        A's longest gap between two dispatches"
  echo "  own: the same job A, while another client asks \`drover status\` of A itself"
  machine
  local run i mode
  local -A peer_failed=()
  # Which binaries have `drover worker --prefetch` (a --compare base may not).
  local prefetches=()
  for i in "${!names[@]}"; do
    prefetches[i]=""
    "${bins[$i]}" worker --help 2>&1 | grep -q -- '--prefetch' && prefetches[i]=1
  done
  PEER_RATE=()
  FLOOR_RATE=()
  for ((run = 1; run <= RUNS; run++)); do
    # With --compare, drover and the base take turns at going first: a
    # build that always went first measured slower under drover run than
    # when the two took turns (docs/benchmarks.md, session 25).
    local order=("${!names[@]}")
    ((run % 2 == 0 && ${#names[@]} == 2)) && order=(1 0)
    for mode in run tcp tcpp; do
      for i in "${order[@]}"; do
        # A base from before prefetch (session 13) has no tcpp row.
        [[ "$mode" == tcpp && -z "${prefetches[$i]}" ]] && continue
        dispatch_once "${names[$i]}" "${bins[$i]}" "$mode" "$run" "$total" "$slots"
      done
    done
    for i in "${order[@]}"; do
      pause_once "${names[$i]}" "${bins[$i]}" "$run" "$slots"
      poll_once "${names[$i]}" "${bins[$i]}" "$run" "$slots" ended
      poll_once "${names[$i]}" "${bins[$i]}" "$run" "$slots" own
    done
    floor_once "$run" "$slots"
    for p in "${peers[@]}"; do
      [[ -z "${peer_failed[$p]:-}" ]] || continue
      if ! peer_once "$p" "$run"; then
        peer_failed[$p]=1
        rec_skip "$p" "run $run failed (its log is above); no further runs"
      fi
    done
  done
  echo
  printf '%-46s %10s  %-30s %7s %7s %9s %9s %10s %9s %10s\n' runner "tasks/s" "runs (tasks/s)" "p50 ms" \
    "p99 ms" "RSS MB" "first ms" "then /s" "CPU us" "workers us"
  local key rates label
  for mode in run tcp tcpp; do
    for i in "${!names[@]}"; do
      key="${names[$i]}/$mode"
      [[ -n "${DISPATCH_RATE[$key]:-}" ]] || continue
      read -ra rates <<<"${DISPATCH_RATE[$key]}"
      # shellcheck disable=SC2086
      printf '%-46s %10.0f  %-30s %7s %7s %9s %9s %10s %9s %10s\n' "$(dispatch_label "${names[$i]}" "$mode")" \
        "$(median "${rates[@]}")" "$(printf '%.0f ' "${rates[@]}")" "$(median ${DISPATCH_P50[$key]})" \
        "$(median ${DISPATCH_P99[$key]})" "$(median ${DISPATCH_RSS[$key]})" \
        "$(median ${DISPATCH_FIRST[$key]})" "$(median ${DISPATCH_PHASE[$key]})" \
        "$(median ${DISPATCH_CPU[$key]})" \
        "$([[ -n "${DISPATCH_WCPU[$key]:-}" ]] && median ${DISPATCH_WCPU[$key]})"
    done
  done
  echo "  first ms: from the command's start to the first dispatch (the spec loaded, the job"
  echo "  admitted); then /s: the dispatch phase alone, from the first dispatch to the last result"
  echo "  recorded. tasks/s, the target's figure, is end to end. CPU us: CPU time a task (user +"
  echo "  system, every thread) of the drover run process, or of the coordinator alone (the spec's"
  echo "  load included): steadier than a rate on a busy machine. workers us: the same of the two"
  echo "  workers together."
  for i in "${!names[@]}"; do
    [[ -n "${PAUSE_MS[${names[$i]}]:-}" ]] || continue
    # shellcheck disable=SC2086
    printf '%-46s %7s ms  runs: %s\n' "$(pause_label "${names[$i]}")" \
      "$(median ${PAUSE_MS[${names[$i]}]})" "${PAUSE_MS[${names[$i]}]# }"
  done
  local which key
  for which in ended own; do
    for i in "${!names[@]}"; do
      key="${names[$i]}/$which"
      [[ -n "${POLL_MS[$key]:-}" ]] || continue
      # shellcheck disable=SC2086
      printf '%-46s %7s ms  runs: %s  (statuses answered: %s)\n' \
        "$(poll_label "${names[$i]}" "$which")" \
        "$(median ${POLL_MS[$key]})" "${POLL_MS[$key]# }" "${POLLS[$key]# }"
    done
  done
  local tcp run_rate floor
  floor="$(median "${FLOOR_RATE[@]}")"
  printf '%-46s %10.0f  %-30s\n' "$FLOOR_LABEL" "$floor" "$(printf '%.0f ' "${FLOOR_RATE[@]}")"
  read -ra rates <<<"${DISPATCH_RATE[drover/tcp]}"
  tcp="$(median "${rates[@]}")"
  read -ra rates <<<"${DISPATCH_RATE[drover/run]}"
  run_rate="$(median "${rates[@]}")"
  rec_ratio "drover coordinator+2 workers / the limit" "$(ratio "$tcp" "$floor")"
  rec_ratio "drover run / the limit" "$(ratio "$run_rate" "$floor")"
  printf '  drover coordinator+2 workers / the limit: %.2fx, drover run / the limit: %.2fx\n' \
    "$(ratio "$tcp" "$floor")" "$(ratio "$run_rate" "$floor")"
  local tcpp
  read -ra rates <<<"${DISPATCH_RATE[drover/tcpp]}"
  tcpp="$(median "${rates[@]}")"
  rec_ratio "drover coordinator+2 workers, prefetch / without" "$(ratio "$tcpp" "$tcp")"
  rec_ratio "drover coordinator+2 workers with prefetch / the limit" "$(ratio "$tcpp" "$floor")"
  printf '  with --prefetch / without: %.2fx, with --prefetch / the limit: %.2fx\n' \
    "$(ratio "$tcpp" "$tcp")" "$(ratio "$tcpp" "$floor")"
  printf '  the limit / target: %.2fx (what this machine allows with this schema)\n' \
    "$(ratio "$floor" "$DISPATCH_TARGET")"
  for p in "${peers[@]}"; do
    [[ -n "${PEER_RATE[$p]:-}" ]] || continue
    read -ra rates <<<"${PEER_RATE[$p]}"
    local pm
    pm="$(median "${rates[@]}")"
    printf '%-46s %10.0f  %-30s\n' "$(peer_label "$p")" "$pm" "$(printf '%.0f ' "${rates[@]}")"
    rec_ratio "drover coordinator+2 workers / $p" "$(ratio "$tcp" "$pm")"
    rec_ratio "drover run / $p" "$(ratio "$run_rate" "$pm")"
    printf '  drover coordinator+2 workers / %s: %.1fx, drover run / %s: %.1fx\n' \
      "$p" "$(ratio "$tcp" "$pm")" "$p" "$(ratio "$run_rate" "$pm")"
  done
  if [[ -n "$COMPARE_BUILD_DIR" ]]; then
    local base_tcp
    read -ra rates <<<"${DISPATCH_RATE[base/tcp]}"
    base_tcp="$(median "${rates[@]}")"
    rec_ratio "drover / base, coordinator+2 workers" "$(ratio "$tcp" "$base_tcp")"
    if [[ -n "${DISPATCH_RATE[base/tcpp]:-}" ]]; then
      local base_tcpp
      read -ra rates <<<"${DISPATCH_RATE[base/tcpp]}"
      base_tcpp="$(median "${rates[@]}")"
      rec_ratio "drover / base, coordinator+2 workers as shipped" "$(ratio "$tcpp" "$base_tcpp")"
      printf '  drover / base, coordinator+2 workers as shipped: %.2fx\n' "$(ratio "$tcpp" "$base_tcpp")"
    fi
  fi
  # The target's figure is the workers as shipped: `drover worker`
  # prefetches unless told otherwise (as many tasks as its slots since
  # session 17, 4 times since session 35), as `drover run` does. The
  # --prefetch 0 row is printed beside it.
  rec_ratio "drover coordinator+2 workers (prefetch, the default) / target" \
    "$(ratio "$tcpp" "$DISPATCH_TARGET")" ">=1"
  rec_ratio "drover coordinator+2 workers --prefetch 0 / target" "$(ratio "$tcp" "$DISPATCH_TARGET")"
  rec_ratio "drover run / target" "$(ratio "$run_rate" "$DISPATCH_TARGET")" ">=1"
  awk -v t="$tcpp" -v t0="$tcp" -v r="$run_rate" -v target="$DISPATCH_TARGET" 'BEGIN {
    printf "target: coordinator + 2 workers (as shipped: prefetch) >= %d tasks/s: %.0f (%s); --prefetch 0: %.0f\n",
           target, t, (t >= target ? "met" : "missed"), t0
    printf "target: drover run >= %d tasks/s: %.0f (%s)\n", target, r, (r >= target ? "met" : "missed")
  }'
  if ((${#peers[@]})); then
    echo "persisted: drover commits every attempt and result to SQLite (WAL, synchronous=NORMAL) before"
    echo "  it ACKs; Celery keeps task messages and results in Redis (AOF, fsync every second), acks"
    echo "  a task when a worker receives it; Dask keeps everything in memory, nothing on disk."
  fi
  end_scenario
}
