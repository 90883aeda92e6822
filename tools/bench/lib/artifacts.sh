# shellcheck shell=bash
# tools/bench/lib/artifacts.sh: the artifacts scenario.
#
#   artifacts a 1 GiB artifact (ARTIFACT_MIB=N, or --size, for another size)
#          from a spawn task on one `drover worker` to a task on another
#          (labels pin them), through `drover coordinator` over TCP loopback,
#          against `cp` of the same file on the same disk in the same run:
#          MB/s of each, the ratio, and the peak RSS (VmHWM) of the
#          coordinator and both workers. The file crosses the coordinator's
#          store once each way (two copies), so half of cp's rate is the
#          bound; a bare TCP loopback copy of the file
#          (tools/bench/socket_copy.py: sendfile to a socket, recv and write)
#          is the other baseline, half of it the bound through two hops.
#          Each of --runs rounds runs the three in turn, drover with a fresh
#          coordinator and workers (empty store and caches); medians are
#          reported. A fourth line times the same two tasks under
#          `drover run`, where the file is linked into the store and out of
#          it instead of copied.


# Records one round of one path: its seconds and MB/s.
rec_artifacts_round() {  # MIB ROUND LABEL SECONDS
  rec_run "$3" seconds "$2" "$4"
  rec_run "$3" mb_per_s "$2" "$(awk -v mib="$1" -v t="$4" 'BEGIN { printf "%.1f", mib * 1.048576 / t }')"
}

vm_hwm_mb() {  # PID: peak RSS in MB, from /proc/PID/status
  awk '/^VmHWM:/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo "?"
}

# One drover hand-off of $dir/src.bin: a fresh coordinator and two fresh
# workers (empty store and caches, so every byte really travels), then
# `submit --wait` of make (worker a) -> use (worker b), timed alone.
# Appends the seconds to DROVER_SECONDS and the peak RSS to RSS_LINES.
artifacts_round() {  # DIR ROUND
  local dir="$1" round="$2" i w pids=()
  rm -rf -- "$dir/state" "$dir/a" "$dir/b"
  mkdir -p "$dir/a" "$dir/b"
  "$DROVER" coordinator --listen tcp://127.0.0.1:0 --state-dir "$dir/state" \
    >"$dir/coordinator.out" 2>"$dir/coordinator.err" &
  local coord_pid=$!
  DAEMON_PIDS+=("$coord_pid")
  ENDPOINT=""
  for ((i = 0; i < 200; i++)); do
    ENDPOINT="$(head -n1 "$dir/coordinator.out" 2>/dev/null | grep -o 'tcp://[0-9.]*:[0-9]*' || true)"
    [[ -n "$ENDPOINT" ]] && break
    sleep 0.1
  done
  [[ -n "$ENDPOINT" ]] || { cat "$dir/coordinator.err" >&2; die "the coordinator printed no endpoint"; }
  for w in a b; do
    (cd "$dir/$w" && exec "$DROVER" worker --connect "$ENDPOINT" --name "bench-$w" \
      --label "host=$w" --spool-dir "$dir/$w/spool" --slots spawn=1 \
      >"$dir/$w.out" 2>"$dir/$w.err") &
    pids+=($!)
    DAEMON_PIDS+=($!)
  done
  for ((i = 0; i < 200; i++)); do
    local n
    n="$(DROVER_COORDINATOR="$ENDPOINT" "$DROVER" workers --output json 2>/dev/null |
           grep -o '"bench-[ab]"' | sort -u | wc -l || true)"
    [[ "$n" == 2 ]] && break
    sleep 0.1
  done
  local t0 t1
  t0="$(now_ns)"
  DROVER_COORDINATOR="$ENDPOINT" "$DROVER" submit --wait "$dir/job.yaml" \
    >/dev/null 2>"$dir/err" || { cat "$dir/err" "$dir"/*.err >&2; die "the artifacts job failed"; }
  t1="$(now_ns)"
  DROVER_SECONDS+=("$(awk -v ns="$((t1 - t0))" 'BEGIN { printf "%.3f", ns / 1e9 }')")
  RSS_LINES+=("round $round: coordinator $(vm_hwm_mb "$coord_pid") MB, worker a $(vm_hwm_mb "${pids[0]}") MB, worker b $(vm_hwm_mb "${pids[1]}") MB")
  stop_daemons
}

# Writes DIR/src.bin (MIB MiB of random bytes), DIR/job.yaml (make on worker
# a, use on worker b) and DIR/run.yaml (the same two tasks for drover run).
write_artifacts_files() {  # DIR MIB
  local dir="$1" mib="$2"
  head -c "$((mib << 20))" /dev/urandom >"$dir/src.bin"
  {
    echo "version: 1"
    echo "name: artifacts-bench"
    echo "defaults: {timeout: 30m}"
    echo "tasks:"
    echo "  make: {on: {host: a}, run: \"ln '$dir/src.bin' big.bin\", artifacts: [big.bin]}"
    echo "  use: {needs: [make], on: {host: b}, run: 'test -s \"\$DROVER_INPUTS/make/big.bin\"'}"
  } >"$dir/job.yaml"
  # The same hand-off under `drover run` (one process, one disk): no
  # labels there, and the bytes are linked, not copied.
  {
    echo "version: 1"
    echo "name: artifacts-bench-run"
    echo "defaults: {timeout: 30m}"
    echo "tasks:"
    echo "  make: {run: \"ln '$dir/src.bin' big.bin\", artifacts: [big.bin]}"
    echo "  use: {needs: [make], run: 'test -s \"\$DROVER_INPUTS/make/big.bin\"'}"
  } >"$dir/run.yaml"
}

cmd_artifacts() {
  local mib="$ARTIFACT_SIZE_MIB"
  begin_scenario artifacts "a ${mib} MiB artifact from a task on worker a to a task on worker b through a coordinator on 127.0.0.1" \
    mib="$mib" runs="$RUNS" limit="cp; bare TCP loopback copy"
  uses cp python3
  build
  check_drover
  local dir="$WORK/artifacts" round t0 t1
  mkdir -p "$dir"
  echo
  echo "artifacts: a ${mib} MiB file from a task on worker a to a task on worker b,"
  echo "  through drover coordinator on tcp://127.0.0.1 (each worker its own spool),"
  echo "  vs cp and a bare TCP loopback copy of the same file; median of $RUNS rounds"
  machine
  echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
  write_artifacts_files "$dir" "$mib"
  local cp_s=() sock_s=() run_s=()
  DROVER_SECONDS=()
  RSS_LINES=()
  for ((round = 1; round <= RUNS; round++)); do
    t0="$(now_ns)"
    cp "$dir/src.bin" "$dir/copy.bin"
    t1="$(now_ns)"
    cp_s+=("$(awk -v ns="$((t1 - t0))" 'BEGIN { printf "%.3f", ns / 1e9 }')")
    rm -f -- "$dir/copy.bin"
    sock_s+=("$(python3 "$ROOT/tools/bench/socket_copy.py" "$dir/src.bin" "$dir/copy.bin")")
    rm -f -- "$dir/copy.bin"
    artifacts_round "$dir" "$round"
    rm -rf -- "$dir/run-state"
    t0="$(now_ns)"
    "$DROVER" run --no-progress --state-dir "$dir/run-state" "$dir/run.yaml" >/dev/null 2>"$dir/run.err" ||
      { cat "$dir/run.err" >&2; die "drover run of the artifacts job failed"; }
    t1="$(now_ns)"
    run_s+=("$(awk -v ns="$((t1 - t0))" 'BEGIN { printf "%.3f", ns / 1e9 }')")
    echo "round $round: cp ${cp_s[-1]} s, socket ${sock_s[-1]} s, drover ${DROVER_SECONDS[-1]} s, drover run ${run_s[-1]} s"
    rec_artifacts_round "$mib" "$round" "cp (same disk)" "${cp_s[-1]}"
    rec_artifacts_round "$mib" "$round" "bare TCP loopback copy" "${sock_s[-1]}"
    rec_artifacts_round "$mib" "$round" "drover: worker a -> coordinator -> worker b" "${DROVER_SECONDS[-1]}"
    rec_artifacts_round "$mib" "$round" "drover run (linked)" "${run_s[-1]}"
  done
  echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
  awk -v mib="$mib" -v c="$(median "${cp_s[@]}")" -v s="$(median "${sock_s[@]}")" \
      -v d="$(median "${DROVER_SECONDS[@]}")" -v r="$(median "${run_s[@]}")" 'BEGIN {
    mb = mib * 1.048576
    printf "%-52s %8.0f MB/s  (%.2f s)\n", "cp (same disk)", mb / c, c
    printf "%-52s %8.0f MB/s  (%.2f s)\n", "bare TCP loopback copy (sendfile -> write)", mb / s, s
    printf "%-52s %8.0f MB/s  (%.2f s)\n", "drover: worker a -> coordinator store -> worker b", mb / d, d
    printf "%-52s %8.0f MB/s  (%.2f s)\n", "drover run: the same, in one process (linked)", mb / r, r
    printf "drover / cp: %.2fx; the bound (two copies: into the store, out to b) is 0.5x: %.0f%% of it\n",
           c / d, (c / d) / 0.5 * 100
    printf "drover / bare socket: %.2fx; two socket hops bound it at 0.5x: %.0f%% of it\n",
           s / d, (s / d) / 0.5 * 100
  }'
  echo "peak RSS (VmHWM) per round:"
  printf '  %s\n' "${RSS_LINES[@]}"
  local c s d
  c="$(median "${cp_s[@]}")"
  s="$(median "${sock_s[@]}")"
  d="$(median "${DROVER_SECONDS[@]}")"
  rec_ratio "drover / cp (MB/s; two copies bound it at 0.5)" "$(ratio "$c" "$d")"
  rec_ratio "drover / bare socket copy (MB/s; two hops bound it at 0.5)" "$(ratio "$s" "$d")"
  rm -rf -- "$dir"
  end_scenario
}
