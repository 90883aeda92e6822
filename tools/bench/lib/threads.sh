# shellcheck shell=bash
# tools/bench/lib/threads.sh: the threads scenario.
#
#   threads 200,000 noop tasks straight into the threads backend
#           (threads_bench) against the limit, the same number of empty
#           closures through a bare mutex-and-condvar queue
#           (threads_bench --bare, ten times as many), and a Node worker_threads pool
#           (piscina, from npm, installed on first use in
#           ~/.cache/drover-bench), 2 threads each, median of --runs runs.

readonly THREADS_PEER_TARGET=10  # drover >= 10x piscina

# Runs threads_bench ARGS...; records each run under LABEL; prints the median.
threads_bench_runs() {  # LABEL ARGS...
  local label="$1" out="$WORK/threads.out"
  shift
  "$BUILD_DIR/backends/threads/threads_bench" "$@" >"$out" 2>"$WORK/err" ||
    { cat "$out" "$WORK/err" >&2; die "threads_bench $* failed"; }
  awk '/^  run [0-9]+:/ { sub(/:/, "", $2); print $2, $3 }' "$out" |
    while read -r run value; do rec_run "$label" tasks_per_s "$run" "$value"; done
  awk '/^  run [0-9]+:/ { print $3 }' "$out" | { mapfile -t v; median "${v[@]}"; }
}

cmd_threads() {
  local tasks="$THREADS_TASKS"
  begin_scenario threads "noop tasks straight into the threads backend, $JOBS threads" \
    tasks="$tasks" slots="$JOBS" runs="$RUNS" limit="bare queue"
  build
  echo
  echo "threads: $tasks noop tasks, $JOBS threads, median of $RUNS runs each"
  machine
  local ours bare theirs=""
  ours="$(threads_bench_runs "drover threads backend" --tasks "$tasks" --slots "$JOBS" --runs "$RUNS")"
  # The bare queue runs 10 times as many closures: it is 10 to 30 times
  # faster, and a run of a few milliseconds is mostly noise.
  bare="$(threads_bench_runs "bare queue (limit)" --tasks "$((tasks * 10))" --slots "$JOBS" --runs "$RUNS" --bare 1)"
  if [[ "$NO_PEERS" == 1 ]]; then
    rec_skip piscina "--no-peers given"
  elif ensure_piscina; then
    uses node
    local out="$WORK/piscina.out"
    NODE_PATH="$NPM_CACHE/node_modules" node "$ROOT/tools/bench/piscina_peer.js" \
      "$tasks" "$JOBS" "$RUNS" >"$out" 2>"$WORK/err" || { cat "$out" "$WORK/err" >&2; die "piscina_peer.js failed"; }
    theirs="$(awk '/^median:/ { print $2 }' "$out")"
    awk '/^ *run [0-9]+:/ { sub(/:/, "", $2); print $2, $3 }' "$out" |
      while read -r run value; do rec_run "piscina (worker_threads)" tasks_per_s "$run" "$value"; done
    grep -q '^ *run [0-9]' "$out" || rec_figure "piscina (worker_threads) median" "$theirs" tasks_per_s
  else
    rec_skip piscina "not installed (see above)"
  fi
  [[ -n "$ours" && -n "$bare" ]] || die "threads_bench printed no median"
  printf '%-28s %12.0f tasks/s\n' "drover threads backend" "$ours"
  printf '%-28s %12.0f tasks/s\n' "bare queue (the limit)" "$bare"
  rec_ratio "drover / bare queue" "$(ratio "$ours" "$bare")"
  printf 'drover / bare queue: %.2fx\n' "$(ratio "$ours" "$bare")"
  if [[ -n "$theirs" ]]; then
    printf '%-28s %12.0f tasks/s\n' "piscina (worker_threads)" "$theirs"
    rec_ratio "drover / piscina" "$(ratio "$ours" "$theirs")" ">=$THREADS_PEER_TARGET"
    awk -v a="$ours" -v b="$theirs" -v t="$THREADS_PEER_TARGET" 'BEGIN {
      printf "drover / piscina: %.1fx (target >= %dx: %s)\n", a / b, t, (a / b >= t ? "met" : "missed")
    }'
  fi
  end_scenario
}
