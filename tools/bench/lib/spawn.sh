# shellcheck shell=bash
# tools/bench/lib/spawn.sh: the spawn and rss scenarios.
#
#   spawn  no-op tasks (`true`), 2 in flight: `drover run -j 2` against
#          `xargs -P 2`, GNU `parallel -j 2` (installed on first use), a
#          raw posix_spawn loop (tools/bench/spawn_loop.c, the limit) and
#          the same loop doing the work a durable runner cannot skip
#          (tools/bench/durable_loop.c: pipes, an outputs file, a pidfd, a
#          SQLite record of each start and end), all in the same run,
#          interleaved, median of --runs runs.
#   rss    (also `scale`) peak RSS of `drover run -j 64` (coordinator and
#          embedded worker in one process) on a 1,000,000-instance matrix
#          job of threads no-ops (1,000 x 1,000), via /usr/bin/time -v,
#          against issue 13's 300 MB target (300 bytes a task), and the time
#          from its start to the first dispatch, against the 2 s target.

readonly RSS_TARGET_MB=300
# Issue 13's scale target: from `drover run` (or submit) to the first dispatch.
readonly FIRST_DISPATCH_TARGET_MS=2000
readonly RAW_RATIO_TARGET=0.9  # issue 13: drover >= 0.9x the raw loop

run_drover() {  # RUN
  "$DROVER" run -j "$JOBS" --state-dir "$WORK/state-$1" "$WORK/job.yaml" >/dev/null 2>"$WORK/err"
}
# --compare: the same with another build's drover, interleaved.
run_base() {  # RUN
  "$COMPARE_BUILD_DIR/tools/cli/drover" run -j "$JOBS" --state-dir "$WORK/state-$1" \
    "$WORK/job.yaml" >/dev/null 2>"$WORK/err"
}
run_xargs() { seq "$SPAWN_TASKS" | xargs -P "$JOBS" -n 1 true >/dev/null 2>"$WORK/err"; }
run_parallel() { seq "$SPAWN_TASKS" | parallel --will-cite -j "$JOBS" true >/dev/null 2>"$WORK/err"; }
run_spawn_loop() { "$SPAWN_LOOP" "$SPAWN_TASKS" "$JOBS" true >/dev/null 2>"$WORK/err"; }
# The raw loop plus the work a durable runner cannot skip, on one thread
# (tools/bench/durable_loop.c); its database and files are removed outside
# the timing, like drover's state.
run_durable_loop() {
  "$DURABLE_LOOP" "$WORK/state-$1" "$SPAWN_TASKS" "$JOBS" true >/dev/null 2>"$WORK/err"
}

declare -A SPAWN_LABEL=()
# Times one run of runner NAME; appends its tasks/s to RATES[NAME].
declare -A RATES=()
measure_spawn() {  # NAME RUN
  local t0 t1 rate
  t0="$(now_ns)"
  if ! "run_$1" "$2"; then
    cat "$WORK/err" >&2
    die "$1 failed (run $2)"
  fi
  t1="$(now_ns)"
  rm -rf -- "$WORK/state-$2"  # drover's state and logs; outside the timing
  rate="$(rate_between "$SPAWN_TASKS" "$t0" "$t1")"
  RATES[$1]="${RATES[$1]:-} $rate"
  rec_run "${SPAWN_LABEL[$1]}" tasks_per_s "$2" "$rate"
  printf '  run %d  %-10s %8.0f tasks/s\n' "$2" "$1" "$rate"
}

cmd_spawn() {
  SPAWN_LABEL=(
    [drover]="drover run -j $JOBS"
    [xargs]="xargs -P $JOBS"
    [parallel]="parallel -j $JOBS"
    [spawn_loop]="spawn_loop (raw)"
    [durable_loop]="durable_loop"
    [base]="base: drover run -j $JOBS"
  )
  begin_scenario spawn "no-op tasks (true), $JOBS in flight, interleaved, median of $RUNS runs" \
    tasks="$SPAWN_TASKS" jobs="$JOBS" runs="$RUNS" limit="spawn_loop (raw)"
  local runners=()
  [[ "$SKIP_DROVER" == 1 ]] && rec_skip drover "--skip-drover given" || runners+=(drover)
  if [[ -n "$COMPARE_BUILD_DIR" ]]; then
    [[ -x "$COMPARE_BUILD_DIR/tools/cli/drover" ]] ||
      die "no drover binary at $COMPARE_BUILD_DIR/tools/cli/drover (--compare)"
    runners+=(base)
  fi
  runners+=(xargs)
  uses xargs
  if [[ "$NO_PEERS" == 0 ]] && ensure_parallel; then
    runners+=(parallel)
  elif [[ "$NO_PEERS" == 1 ]]; then
    rec_skip parallel "--no-peers given"
  else
    rec_skip parallel "GNU parallel: not installed (see above)"
  fi
  runners+=(spawn_loop durable_loop)

  build
  [[ "$SKIP_DROVER" == 1 ]] || check_drover
  write_job "$SPAWN_TASKS" "$WORK/job.yaml"

  echo
  echo "spawn: $SPAWN_TASKS no-op tasks (true), $JOBS in flight, $RUNS runs each, interleaved"
  machine
  local run name
  RATES=()
  for ((run = 1; run <= RUNS; run++)); do
    for name in "${runners[@]}"; do measure_spawn "$name" "$run"; done
  done

  local -A med=()
  local rates=()
  for name in "${runners[@]}"; do
    read -ra rates <<<"${RATES[$name]}"
    med[$name]="$(median "${rates[@]}")"
  done

  echo
  printf '%-20s %10s  %-28s %s\n' runner "tasks/s" "runs (tasks/s)" "drover / runner"
  for name in "${runners[@]}"; do
    local r="-"
    if [[ -n "${med[drover]:-}" ]]; then
      r="$(ratio "${med[drover]}" "${med[$name]}")"
      local target=""
      case "$name" in
        spawn_loop) target=">=$RAW_RATIO_TARGET" ;;
        xargs) target=">1" ;;
      esac
      [[ "$name" == drover ]] || rec_ratio "drover / ${SPAWN_LABEL[$name]}" "$r" "$target"
      r="$(printf '%.2fx' "$r")"
    fi
    read -ra rates <<<"${RATES[$name]}"
    printf '%-20s %10.0f  %-28s %s\n' "${SPAWN_LABEL[$name]}" "${med[$name]}" \
      "$(printf '%.0f ' "${rates[@]}")" "$r"
  done

  if [[ -n "${med[drover]:-}" ]]; then
    echo
    awk -v d="${med[drover]}" -v raw="${med[spawn_loop]}" -v x="${med[xargs]}" -v t="$RAW_RATIO_TARGET" 'BEGIN {
      printf "target: drover >= %.1fx the raw loop: %.2fx (%s)\n", t, d / raw, (d / raw >= t ? "met" : "missed")
      printf "target: drover above xargs:        %.2fx (%s)\n", d / x, (d > x ? "met" : "missed")
    }'
  fi
  if [[ -n "${med[durable_loop]:-}" ]]; then
    awk -v w="${med[durable_loop]}" -v raw="${med[spawn_loop]}" -v d="${med[drover]:-0}" 'BEGIN {
      printf "the durable loop / the raw loop:   %.2fx (what the work a durable runner cannot skip costs)\n", w / raw
      if (d > 0) printf "drover / the durable loop:         %.2fx (what drover costs beyond that work)\n", d / w
    }'
    rec_ratio "durable_loop / spawn_loop (raw)" "$(ratio "${med[durable_loop]}" "${med[spawn_loop]}")" ""
  fi
  end_scenario
}

cmd_rss() {
  [[ -x /usr/bin/time ]] || die "/usr/bin/time is missing (apt-get install time)"
  begin_scenario rss "peak RSS of drover run -j $RSS_JOBS on an N-instance threads no-op matrix job" \
    tasks="$RSS_TASKS" jobs="$RSS_JOBS" target_mb="$RSS_TARGET_MB"
  uses time
  build
  check_drover
  write_matrix_noop_job "$RSS_TASKS" "$WORK/rss.yaml"
  echo
  echo "rss: drover run -j $RSS_JOBS on a $RSS_TASKS-instance threads no-op matrix job"
  machine
  local log="$WORK/time.log" t0 t1
  t0="$(now_ns)"
  if ! /usr/bin/time -v "$DROVER" run -j "$RSS_JOBS" --state-dir "$WORK/rss-state" "$WORK/rss.yaml" \
    >/dev/null 2>"$log"; then
    tail -n 40 "$log" >&2
    die "drover run failed on the rss job"
  fi
  t1="$(now_ns)"
  # From the command's start (load, SUBMIT, admission) to the first
  # attempt's start, both wall-clock milliseconds.
  local first_ms
  first_ms="$(python3 - "$WORK/rss-state/state.db" "$((t0 / 1000000))" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
(first,) = db.execute("SELECT MIN(started_ms) FROM attempts").fetchone()
print("" if first is None else first - int(sys.argv[2]))
PY
)" || die "cannot read the rss job's first attempt from its state.db"
  [[ -n "$first_ms" ]] || die "the rss job recorded no attempt"
  rm -rf -- "$WORK/rss-state"
  local kb mb
  kb="$(awk -F: '/Maximum resident set size/ { gsub(/ /, "", $2); print $2 }' "$log")"
  [[ -n "$kb" ]] || die "no 'Maximum resident set size' in /usr/bin/time output"
  mb="$(awk -v kb="$kb" 'BEGIN { printf "%.1f", kb / 1024 }')"
  rec_run "drover run -j $RSS_JOBS" peak_rss_mb 1 "$mb"
  rec_run "drover run -j $RSS_JOBS" tasks_per_s 1 "$(rate_between "$RSS_TASKS" "$t0" "$t1")"
  rec_run "drover run -j $RSS_JOBS" first_dispatch_ms 1 "$first_ms"
  rec_ratio "peak RSS MB / target MB" "$(ratio "$mb" "$RSS_TARGET_MB")" "<1"
  rec_ratio "first dispatch ms / target ms" "$(ratio "$first_ms" "$FIRST_DISPATCH_TARGET_MS")" "<1"
  awk -v mb="$mb" -v n="$RSS_TASKS" -v ns="$((t1 - t0))" -v target="$RSS_TARGET_MB" \
    -v first="$first_ms" -v first_target="$FIRST_DISPATCH_TARGET_MS" 'BEGIN {
    printf "peak RSS: %.1f MB (target < %d MB: %s), %.0f tasks/s over the run\n",
           mb, target, (mb < target ? "met" : "missed"), n / (ns / 1e9)
    printf "first dispatch: %d ms after drover run started (target < %d ms: %s)\n",
           first, first_target, (first < first_target ? "met" : "missed")
  }'
  end_scenario
}
