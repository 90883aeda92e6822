# shellcheck shell=bash
# tools/bench/lib/ipc.sh: the ipc scenario, the fork backend's message path.
#
#   ipc    ipc_bench (built by the `ipc_bench` target from
#          tools/bench/ipc_bench.cc): round trips of a small message through
#          a pool of one process and a sort of 1,000,000 numbers in a pool
#          process, for drover's C++ `cow` child (driven, as the worker
#          runs it, and on the backend's own reactor thread), Node's
#          fork_sort.js child under drover, Node's own fork parent and child
#          (tools/bench/node_fork_peer.js, the peer) and a raw socketpair
#          ping-pong with a forked echo child (the limit), and the same
#          ping-pong with the reply awaited in epoll_wait (an event loop's
#          floor), interleaved run by run in one process, medians. Ratios:
#          cow to raw (target 0.8x, p50 within 2x), cow to the epoll
#          ping-pong (drover's own code), and to Node; the sort's speed-up
#          over Node's (target 10x).

readonly IPC_RAW_TARGET=0.8
readonly IPC_P50_TARGET=2
readonly IPC_SORT_TARGET=10

declare -A IPC_MED=()  # "RUNNER METRIC" -> median, for the ratios
cmd_ipc() {
  local args=(--round-trips "$IPC_ROUND_TRIPS" --sort-size "$IPC_SORT_SIZE" --runs "$RUNS")
  begin_scenario ipc "round trips of a small message through a pool of 1 process, and a sort in a pool process" \
    round_trips="$IPC_ROUND_TRIPS" sort_size="$IPC_SORT_SIZE" runs="$RUNS" limit="raw socketpair ping-pong"
  if [[ "$NO_PEERS" == 1 ]]; then
    args+=(--skip-node)
    rec_skip "node (fork_sort.js child, Node's own fork)" "--no-peers given"
  elif ensure_node; then
    uses node
  else
    args+=(--skip-node)
    rec_skip "node (fork_sort.js child, Node's own fork)" "node: not installed (see above)"
  fi
  build
  echo
  echo "ipc: $IPC_ROUND_TRIPS round trips, sort of $IPC_SORT_SIZE numbers, $RUNS runs each, interleaved"
  machine
  local out="$WORK/ipc.out"
  if ! (cd "$ROOT" && "$BUILD_DIR/backends/fork/ipc_bench" "${args[@]}") >"$out" 2>"$WORK/err"; then
    cat "$out" "$WORK/err" >&2
    die "ipc_bench failed"
  fi
  grep -v '^figure ' "$out"
  local -A label=(
    [raw]="raw socketpair ping-pong (limit)"
    [epoll]="raw ping-pong through epoll"
    [cow]="drover cow child"
    [cow-thread]="drover cow child, reactor thread"
    [node]="drover + node fork_sort.js child"
    [peer]="node fork parent + child (peer)"
  )
  local tag runner metric values run v
  IPC_MED=()
  while read -r tag runner metric values; do
    [[ "$tag" == figure ]] || continue
    run=0
    for v in $values; do
      run=$((run + 1))
      rec_run "${label[$runner]}" "$metric" "$run" "$v"
    done
    # shellcheck disable=SC2086
    IPC_MED["$runner $metric"]="$(median $values)"
  done <"$out"
  local cow="${IPC_MED[cow round_trips_per_s]:-}" raw="${IPC_MED[raw round_trips_per_s]:-}"
  [[ -n "$cow" && -n "$raw" ]] || die "ipc_bench printed no round-trip figures"
  rec_ratio "cow round trips / raw" "$(ratio "$cow" "$raw")" ">=$IPC_RAW_TARGET"
  rec_ratio "cow p50 / raw p50" "$(ratio "${IPC_MED[cow p50_us]}" "${IPC_MED[raw p50_us]}")" "<=$IPC_P50_TARGET"
  if [[ -n "${IPC_MED[epoll round_trips_per_s]:-}" ]]; then
    rec_ratio "cow round trips / raw through epoll" "$(ratio "$cow" "${IPC_MED[epoll round_trips_per_s]}")"
    rec_ratio "raw through epoll / raw" "$(ratio "${IPC_MED[epoll round_trips_per_s]}" "$raw")"
  fi
  if [[ -n "${IPC_MED[peer round_trips_per_s]:-}" ]]; then
    rec_ratio "cow round trips / node's own fork" "$(ratio "$cow" "${IPC_MED[peer round_trips_per_s]}")"
    rec_ratio "raw round trips / node's own fork" "$(ratio "$raw" "${IPC_MED[peer round_trips_per_s]}")"
    rec_ratio "node's sort time / cow's sort time" \
      "$(ratio "${IPC_MED[peer sort_ms]}" "${IPC_MED[cow sort_ms]}")" ">=$IPC_SORT_TARGET"
  fi
  end_scenario
}
