# shellcheck shell=bash
# tools/bench/lib/cluster.sh: the cluster scenario.
#
#   cluster the classic Node hello-world server with `wrk -t2 -c64 -d10s`
#          (wrk installed on first use; --size scales the duration) on
#          127.0.0.1, 2 instances: (a) under Node's own `cluster` module
#          (tools/bench/node_cluster_peer.js), (b) the same server
#          (configs/examples/hello_server.js) under drover's cluster in each
#          mode it supports, (c) `drover serve hello` under drover's cluster
#          in each mode. Services run outside any job through cluster_bench
#          (the same Service the worker starts). Requests/s, p50/p99
#          latency, ratios to (a), and per-instance request counts from a
#          separate 3 s wrk run that counts responses by their X-Drover-Pid
#          header (a Lua script slows wrk, so it is kept out of the timed
#          run), and the connections each instance holds in the middle of
#          that run (ss -tnp). Median of --runs runs. Without Node (or with
#          --no-peers) only (c) runs, against a single `drover serve hello`
#          process with its own socket (d), the limit.


CLUSTER_PID=""  # the server of the current cluster run
CLUSTER_KIND=""  # node (the peer) or bench (cluster_bench, stopped by closing fd 9)
stop_cluster_server() {
  [[ -n "$CLUSTER_PID" ]] || return 0
  if [[ "$CLUSTER_KIND" == bench ]]; then
    exec 9>&-  # cluster_bench: the end of its stdin stops the service cleanly
  else
    kill -TERM "$CLUSTER_PID" 2>/dev/null || true
  fi
  local i
  for i in $(seq 100); do kill -0 "$CLUSTER_PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$CLUSTER_PID" 2>/dev/null || true
  wait "$CLUSTER_PID" 2>/dev/null || true
  CLUSTER_PID=""
}

# Starts runner NAME's server; sets CLUSTER_PID and CLUSTER_PORT.
start_cluster_server() {  # NAME
  local out="$WORK/server.out"
  : >"$out"
  case "$1" in
    node-cluster)
      CLUSTER_PORT="$(free_port)"
      node "$ROOT/tools/bench/node_cluster_peer.js" "$CLUSTER_PORT" 2 >"$out" 2>"$WORK/server.err" &
      CLUSTER_PID=$!
      CLUSTER_KIND=node
      ;;
    serve@single)
      CLUSTER_PORT="$(free_port)"
      "$DROVER" serve hello --listen "127.0.0.1:$CLUSTER_PORT" >"$out" 2>"$WORK/server.err" &
      CLUSTER_PID=$!
      CLUSTER_KIND=node
      ;;
    *)
      local mode="${1##*@}" what="${1%@*}" cmd
      if [[ "$what" == node ]]; then
        cmd=(node "$ROOT/configs/examples/hello_server.js")
      else
        cmd=("$DROVER" serve hello)
      fi
      exec 9> >("$CLUSTER_BENCH" --mode "$mode" --instances 2 \
                 -- "${cmd[@]}" >"$out" 2>"$WORK/server.err")
      CLUSTER_PID=$!
      CLUSTER_KIND=bench
      ;;
  esac
  # Ready: cluster_bench prints "ready PORT", the Node peer "ready", a
  # single `drover serve` "drover serve hello: listening on ...".
  local i
  for i in $(seq 300); do
    grep -q '^ready\|listening on' "$out" 2>/dev/null && break
    sleep 0.1
  done
  grep -q '^ready\|listening on' "$out" ||
    { cat "$WORK/server.err" >&2; die "$1: the server did not become ready"; }
  [[ "$CLUSTER_KIND" == node ]] || CLUSTER_PORT="$(awk '/^ready/ { print $2 }' "$out")"
}

# wrk's latency figure (e.g. 512.00us, 3.21ms, 1.02s) in milliseconds.
to_ms() {
  awk -v v="$1" 'BEGIN {
    if (v ~ /us$/) { sub(/us$/, "", v); print v / 1000 }
    else if (v ~ /ms$/) { sub(/ms$/, "", v); print v + 0 }
    else if (v ~ /s$/) { sub(/s$/, "", v); print v * 1000 }
    else print v
  }'
}

declare -A CL_RPS=() CL_P50=() CL_P99=() CL_COUNTS=() CL_CONNS=() CL_BAL=() CL_CBAL=()

# max/min of the counts in " PID=N PID=N ..." (2 instances expected: a
# missing one counts as 0, which makes it "inf").
balance() {  # COUNTS
  awk -v c="$1" 'BEGIN {
    n = split(c, parts, " "); max = 0; min = -1
    for (i = 1; i <= n; i++) { split(parts[i], kv, "="); v = kv[2] + 0
      if (v > max) max = v; if (min < 0 || v < min) min = v }
    if (n < 2) min = 0
    if (min > 0) printf "%.2f", max / min; else print "inf"
  }'
}

# " PID=N PID=N": established connections to 127.0.0.1:PORT per process
# holding their server side, from ss(8) (iproute2).
instance_connections() {  # PORT
  ss -Htnp state established "( sport = :$1 )" 2>/dev/null |
    grep -o 'pid=[0-9]*' | sort | uniq -c |
    awk '{ sub(/pid=/, "", $2); printf " %s=%s", $2, $1 }'
}
measure_cluster() {  # NAME RUN
  CLUSTER_PORT=""
  start_cluster_server "$1"
  local url="http://127.0.0.1:$CLUSTER_PORT/"
  wrk -t2 -c64 -d1s "$url" >/dev/null 2>&1 || true  # warm up
  local out="$WORK/wrk.out"
  wrk -t2 -c64 -d"${CLUSTER_SECONDS}s" --latency "$url" >"$out" 2>&1 || { cat "$out" >&2; die "$1: wrk failed"; }
  local rps p50 p99
  rps="$(awk '/^Requests\/sec:/ { print $2 }' "$out")"
  p50="$(to_ms "$(awk '$1 == "50%" { print $2 }' "$out")")"
  p99="$(to_ms "$(awk '$1 == "99%" { print $2 }' "$out")")"
  local counts conns
  wrk -t2 -c64 -d3s -s "$ROOT/tools/bench/count_pids.lua" "$url" >"$WORK/count.out" 2>&1 &
  local counter=$!
  # Mid-run, which process holds each of wrk's 64 connections: the kernel's
  # (or the supervisor's) split of connections, apart from how much CPU
  # each instance then gets to serve them.
  sleep 1.5
  conns="$(instance_connections "$CLUSTER_PORT")"
  wait "$counter" || true
  counts="$(awk '/^instances:/ { $1 = ""; print }' "$WORK/count.out")"
  stop_cluster_server
  CL_CONNS[$1]="$conns"
  CL_CBAL[$1]="${CL_CBAL[$1]:-} $(balance "$conns")"
  CL_RPS[$1]="${CL_RPS[$1]:-} $rps"
  CL_P50[$1]="${CL_P50[$1]:-} $p50"
  CL_P99[$1]="${CL_P99[$1]:-} $p99"
  CL_COUNTS[$1]="$counts"
  CL_BAL[$1]="${CL_BAL[$1]:-} $(balance "$counts")"
  rec_run "$(cluster_label "$1")" requests_per_s "$2" "$rps"
  rec_run "$(cluster_label "$1")" p50_ms "$2" "$p50"
  rec_run "$(cluster_label "$1")" p99_ms "$2" "$p99"
  printf '  run %d  %-22s %9.0f req/s  p50 %6.2f ms  p99 %6.2f ms  per instance:%s  connections:%s\n' \
         "$2" "$1" "$rps" "$p50" "$p99" "$counts" "$conns"
}

cluster_label() {  # NAME
  case "$1" in
    node-cluster) echo "(a) node cluster module" ;;
    node@*) echo "(b) hello_server.js, ${1#node@}" ;;
    serve@single) echo "(d) drover serve hello, 1 process" ;;
    serve@*) echo "(c) drover serve hello, ${1#serve@}" ;;
  esac
}

cmd_cluster() {
  begin_scenario cluster "hello world, 2 instances, wrk -t2 -c64 -d${CLUSTER_SECONDS}s on 127.0.0.1" \
    seconds="$CLUSTER_SECONDS" connections=64 runs="$RUNS" limit="(a) node cluster module"
  if ! ensure_wrk; then
    rec_skip "cluster (every runner)" "wrk: not installed (see above)"
    end_scenario
    return 0
  fi
  uses ss python3
  build
  [[ -x "$CLUSTER_BENCH" ]] || die "no cluster_bench at $CLUSTER_BENCH"
  [[ -x "$DROVER" ]] || die "no drover binary at $DROVER"
  trap 'stop_cluster_server' RETURN
  # The Node server does not speak the round-robin hand-off: no node@round-robin.
  local runners=() base_name=node-cluster
  if [[ "$NO_PEERS" == 0 ]] && ensure_node; then
    uses node
    runners+=(node-cluster node@reuseport node@shared)
  else
    rec_skip "(a) node cluster module, (b) hello_server.js" \
      "$( [[ "$NO_PEERS" == 1 ]] && echo "--no-peers given" || echo "node: not installed (see above)")"
    base_name=serve@single
  fi
  runners+=(serve@reuseport serve@shared serve@round-robin serve@single)
  echo
  echo "cluster: hello world, 2 instances, wrk -t2 -c64 -d${CLUSTER_SECONDS}s on 127.0.0.1, median of $RUNS runs"
  machine
  CL_RPS=() CL_P50=() CL_P99=() CL_COUNTS=() CL_CONNS=() CL_BAL=() CL_CBAL=()
  local run name
  for run in $(seq "$RUNS"); do
    for name in "${runners[@]}"; do measure_cluster "$name" "$run"; done
  done
  echo
  local base
  # shellcheck disable=SC2086
  base="$(median ${CL_RPS[$base_name]})"
  # Balance: max/min over the instances of the requests each served, and of
  # the connections each held, per run; the medians over the runs.
  printf '%-38s %10s %9s %9s  %-7s %s\n' "runner (median)" "req/s" "p50 ms" "p99 ms" \
         "vs $( [[ $base_name == node-cluster ]] && echo "(a)" || echo "(d)")" \
         "max/min requests, connections"
  for name in "${runners[@]}"; do
    local rps p50 p99 bal cbal label
    # shellcheck disable=SC2086
    rps="$(median ${CL_RPS[$name]})"
    # shellcheck disable=SC2086
    p50="$(median ${CL_P50[$name]})"
    # shellcheck disable=SC2086
    p99="$(median ${CL_P99[$name]})"
    # shellcheck disable=SC2086
    bal="$(median ${CL_BAL[$name]})"
    # shellcheck disable=SC2086
    cbal="$(median ${CL_CBAL[$name]})"
    label="$(cluster_label "$name")"
    local target=""
    if [[ "$base_name" == node-cluster ]]; then
      case "$name" in
        node@reuseport) target=">=1" ;;
        serve@single) ;;
        serve@*) target=">=2" ;;
      esac
    fi
    [[ "$name" == "$base_name" ]] ||
      rec_ratio "$label / $(cluster_label "$base_name")" "$(ratio "$rps" "$base")" "$target"
    awk -v l="$label" -v r="$rps" -v a="$p50" -v b="$p99" -v base="$base" \
        -v q="$bal" -v c="$cbal" 'BEGIN {
      printf "%-38s %10.0f %9.2f %9.2f  %5.2fx   %s, %s\n", l, r, a, b, r / base, q, c
    }'
  done
  echo "targets: (b) reuseport >= 1.0x (a) with max/min < 1.3; (c) >= 2x (a)"
  end_scenario
}
