# shellcheck shell=bash
# tools/bench/lib/workers.sh: `tools/bench/bench workers`, sourced by
# tools/bench/bench (helpers from lib/common.sh, stop_daemons from
# lib/dispatch.sh).
#
# Many workers against one coordinator (issue 13, "workers"): a matrix job
# of threads `noop` tasks through `drover coordinator`, once with 1,000
# simulated workers of one threads slot each (--workers N for another count)
# and once with 2 simulated workers of 32 slots, interleaved run by run;
# both with the prefetch `drover worker` asks for (4 x its slots: the
# target's figure), and both again with none (recorded: one-slot workers
# then cost a DISPATCH and a RESULT a task).
# The simulated workers (tools/bench/workers_bench.cc) are DEALER connections
# in one process (ZMTP spoken directly, tools/bench/zmtp_dealer.h, so that
# the load generator takes little of the CPU the coordinator runs on) that
# register, heartbeat and answer every DISPATCH at once with a RESULT, so
# the coordinator alone is measured; every result is still committed to
# SQLite before it is ACKed. Printed: tasks/s, the ratio of the
# many-worker figure to the 2-worker one (target: at least 0.5x), and every
# sign of a worker falsely taken for dead (target: none): "missed N
# heartbeats" in the coordinator's log, a DISCONNECT or a second WELCOME
# seen by a simulated worker, attempts the coordinator no longer wanted, a
# connection the coordinator closed.

declare -A WK_RATE=() WK_LOST=() WK_SILENCE=() WK_RSS=()

# One timed run: a fresh coordinator, COUNT simulated workers of SLOTS
# slots (registered before the clock starts), `submit --wait`. PREFETCH:
# what each worker takes beyond its slots (Hello.prefetch); empty, as
# `drover worker` asks (4 x slots); 0, none (one attempt a slot, a DISPATCH
# and a RESULT for each with one slot). Figures go under NAME/COUNT, with
# "/p0" after it for PREFETCH 0.
workers_once() {  # NAME BINARY COUNT SLOTS RUN [PREFETCH]
  local name="$1" bin="$2" count="$3" slots="$4" run="$5" prefetch="${6:-}"
  local dir="$WORK/workers-$name-$count-$run${prefetch:+-p$prefetch}" i
  mkdir -p "$dir"
  "$bin" coordinator --listen tcp://127.0.0.1:0 --state-dir "$dir/state" \
    >"$dir/coordinator.out" 2>"$dir/coordinator.err" &
  local coord=$!
  DAEMON_PIDS+=("$coord")
  local endpoint=""
  for ((i = 0; i < 200; i++)); do  # 20 s at most
    endpoint="$(head -n1 "$dir/coordinator.out" 2>/dev/null | grep -o 'tcp://[0-9.]*:[0-9]*' || true)"
    [[ -n "$endpoint" ]] && break
    kill -0 "$coord" 2>/dev/null || break
    sleep 0.1
  done
  [[ -n "$endpoint" ]] || { cat "$dir/coordinator.err" >&2; die "the coordinator printed no endpoint"; }
  "$WORKERS_BENCH" --connect "$endpoint" --workers "$count" --slots "$slots" \
    ${prefetch:+--prefetch "$prefetch"} --ready-file "$dir/ready" >"$dir/sim.out" 2>"$dir/sim.err" &
  local sim=$!
  DAEMON_PIDS+=("$sim")
  for ((i = 0; i < 600; i++)); do  # all registered, 60 s at most
    [[ -f "$dir/ready" ]] && break
    kill -0 "$sim" 2>/dev/null || break
    sleep 0.1
  done
  [[ -f "$dir/ready" ]] || { cat "$dir/sim.err" "$dir/coordinator.err" >&2; die "$count simulated workers did not all register"; }
  local t0 t1
  t0="$(now_ns)"
  DROVER_COORDINATOR="$endpoint" "$bin" submit --wait "$WORK/workers.yaml" >/dev/null 2>"$dir/submit.err" ||
    { cat "$dir/submit.err" >&2; die "$name: drover submit --wait failed ($count workers, run $run)"; }
  t1="$(now_ns)"
  local rss
  rss="$(awk '/^VmHWM:/ { printf "%.0f", $2 / 1024 }' "/proc/$coord/status" 2>/dev/null || echo 0)"
  kill -TERM "$sim" 2>/dev/null || true
  wait "$sim" 2>/dev/null || true
  local line missed
  line="$(grep '^workers=' "$dir/sim.out" || true)"
  [[ -n "$line" ]] || { cat "$dir/sim.err" >&2; die "workers_bench printed no counts"; }
  stop_daemons
  missed="$(grep -c 'missed .* heartbeats' "$dir/coordinator.err" || true)"
  # From the simulated workers' line: key=value pairs.
  local disconnects reregistered unknown broken silence
  disconnects="$(sed -n 's/.* disconnects=\([0-9]*\).*/\1/p' <<<"$line")"
  broken="$(sed -n 's/.* broken=\([0-9]*\).*/\1/p' <<<"$line")"
  reregistered="$(sed -n 's/.* reregistered=\([0-9]*\).*/\1/p' <<<"$line")"
  unknown="$(sed -n 's/.* unknown=\([0-9]*\).*/\1/p' <<<"$line")"
  silence="$(sed -n 's/.* max_silence_ms=\([0-9]*\).*/\1/p' <<<"$line")"
  local lost=$((missed + disconnects + reregistered + unknown + broken))
  local rate
  rate="$(rate_between "$WORKERS_TASKS" "$t0" "$t1")"
  local key="$name/$count${prefetch:+/p$prefetch}"
  WK_RATE[$key]="${WK_RATE[$key]:-} $rate"
  WK_LOST[$key]="${WK_LOST[$key]:-} $lost"
  WK_SILENCE[$key]="${WK_SILENCE[$key]:-} $silence"
  WK_RSS[$key]="${WK_RSS[$key]:-} $rss"
  rec_run "$(workers_label "$name" "$count" "$slots" "$prefetch")" tasks_per_s "$run" "$rate"
  rec_run "$(workers_label "$name" "$count" "$slots" "$prefetch")" falsely_lost "$run" "$lost"
  printf '  run %d  %-6s %5d workers x %2d slots, %-11s %9.0f tasks/s  falsely lost %d (missed %d, disconnects %d, re-registered %d, unknown %d, broken %d)  max silence %s ms  RSS %s MB\n' \
    "$run" "$name" "$count" "$slots" "$(prefetch_label "$prefetch")" "$rate" \
    "$lost" "$missed" "$disconnects" "$reregistered" "$unknown" "$broken" "$silence" "$rss"
  rm -rf -- "$dir"
}

# The median of the rates recorded under KEY (NAME/COUNT[/p0]).
wk_median() {  # KEY
  local rates
  read -ra rates <<<"${WK_RATE[$1]}"
  median "${rates[@]}"
}

prefetch_label() {  # PREFETCH: "" (as drover's worker asks) or 0
  if [[ -n "$1" ]]; then echo "no prefetch"; else echo "prefetch 4x"; fi
}

workers_label() {  # NAME COUNT SLOTS [PREFETCH]
  echo "$1 coordinator, $2 simulated workers x $3 slots${4:+, no prefetch}"
}

cmd_workers() {
  local many="$WORKERS_COUNT"
  begin_scenario workers "durable threads noop tasks through a coordinator with many one-slot simulated workers against 2 of 32 slots" \
    tasks="$WORKERS_TASKS" workers="$many" runs="$RUNS"
  build
  check_drover
  WORKERS_BENCH="$BUILD_DIR/tools/bench/workers_bench"
  [[ -x "$WORKERS_BENCH" ]] || die "no workers_bench at $WORKERS_BENCH (cmake --build $BUILD_DIR --target workers_bench)"
  local names=(drover) bins=("$DROVER")
  if [[ -n "$COMPARE_BUILD_DIR" ]]; then
    [[ -x "$COMPARE_BUILD_DIR/tools/cli/drover" ]] ||
      die "no drover binary at $COMPARE_BUILD_DIR/tools/cli/drover (--compare)"
    names+=(base)
    bins+=("$COMPARE_BUILD_DIR/tools/cli/drover")
  fi
  write_noop_job "$WORKERS_TASKS" "$WORK/workers.yaml"
  echo
  echo "workers: $WORKERS_TASKS threads noop tasks through drover coordinator on tcp://127.0.0.1,"
  echo "         durable (committed before ACK), $RUNS runs each, interleaved"
  echo "  $many simulated workers x 1 slot, against 2 simulated workers x 32 slots;"
  echo "  each asking for prefetch as drover's worker does (4 x its slots), and again with none"
  echo "  (tools/bench/workers_bench: DEALER connections in one process, ZMTP spoken directly; each answers a DISPATCH at once)"
  [[ -n "$COMPARE_BUILD_DIR" ]] && echo "  base: the same with $COMPARE_BUILD_DIR/tools/cli/drover"
  machine
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  local run i p
  for ((run = 1; run <= RUNS; run++)); do
    for i in "${!names[@]}"; do
      for p in "" 0; do
        workers_once "${names[$i]}" "${bins[$i]}" 2 32 "$run" "$p"
        workers_once "${names[$i]}" "${bins[$i]}" "$many" 1 "$run" "$p"
      done
    done
  done
  echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
  printf '%-44s %10s  %-28s %8s %13s %7s\n' runner "tasks/s" "runs (tasks/s)" "vs 2" "falsely lost" "RSS MB"
  local name count rates two suffix
  for i in "${!names[@]}"; do
    name="${names[$i]}"
    for suffix in "" /p0; do
      two="$(wk_median "$name/2$suffix")"
      for count in 2 "$many"; do
        read -ra rates <<<"${WK_RATE[$name/$count$suffix]}"
        local m lost_total
        m="$(median "${rates[@]}")"
        # shellcheck disable=SC2086
        lost_total="$(printf '%s\n' ${WK_LOST[$name/$count$suffix]} | awk '{ s += $1 } END { print s + 0 }')"
        # shellcheck disable=SC2086
        awk -v l="$name, $count workers, $(prefetch_label "${suffix#/p}")" -v m="$m" \
            -v runs="$(printf '%.0f ' "${rates[@]}")" -v two="$two" -v lost="$lost_total" \
            -v rss="$(median ${WK_RSS[$name/$count$suffix]})" 'BEGIN {
          printf "%-44s %10.0f  %-28s %7.2fx %13d %7s\n", l, m, runs, m / two, lost, rss
        }'
      done
    done
  done
  # The target: workers as drover's ask (prefetch). Without prefetch the
  # per-message cost shows (recorded, no target).
  local m lost m0 two0
  two="$(wk_median "drover/2")"
  m="$(wk_median "drover/$many")"
  two0="$(wk_median "drover/2/p0")"
  m0="$(wk_median "drover/$many/p0")"
  # shellcheck disable=SC2086
  lost="$(printf '%s\n' ${WK_LOST[drover/$many]} ${WK_LOST[drover/$many/p0]} ${WK_LOST[drover/2]} \
    ${WK_LOST[drover/2/p0]} | awk '{ s += $1 } END { print s + 0 }')"
  rec_ratio "drover, $many workers / 2 workers" "$(ratio "$m" "$two")" ">=0.5"
  rec_ratio "drover, $many workers / 2 workers, no prefetch" "$(ratio "$m0" "$two0")"
  rec_figure "workers falsely taken for dead, all runs" "$lost" workers
  if [[ -n "$COMPARE_BUILD_DIR" ]]; then
    local base
    base="$(wk_median "base/$many")"
    rec_ratio "drover / base, $many workers" "$(ratio "$m" "$base")"
    base="$(wk_median "base/$many/p0")"
    rec_ratio "drover / base, $many workers, no prefetch" "$(ratio "$m0" "$base")"
  fi
  awk -v m="$m" -v two="$two" -v m0="$m0" -v two0="$two0" -v n="$many" -v lost="$lost" 'BEGIN {
    r = m / two
    printf "target: %d workers >= 0.5x the 2-worker rate (prefetch as drover'"'"'s workers ask): %.2fx (%s); no worker falsely lost: %d (%s)\n",
           n, r, (r >= 0.5 ? "met" : "missed"), lost, (lost == 0 ? "met" : "missed")
    printf "without prefetch (a DISPATCH and a RESULT a task for one-slot workers): %.2fx\n", m0 / two0
  }'
  end_scenario
}
