#!/usr/bin/env bash
# Multi-host test: a coordinator and two workers, each in its own network
# namespace, joined by veth pairs through a bridge that lives in a fourth
# namespace (a switch). A job runs across both workers over TCP; a task on
# one hands a file (an artifact) to a task on the other, with no shared
# directory; then one
# worker's cable is pulled while its tasks run, and the job must still
# succeed, with those tasks re-queued as worker-lost and finished on the
# other worker.
#
#   netns_test.sh DROVER_BINARY
#
# Needs root (ip netns, veth, bridge). Without it the test prints
# "SKIPPED: <reason>" and exits 77, which ctest reports as skipped.
# Everything it creates (namespaces, the veths and bridge inside them,
# processes, its temp directory) is removed on exit, whatever the outcome.
set -euo pipefail

readonly SKIP=77
readonly DROVER="${1:?usage: netns_test.sh DROVER_BINARY}"

# Short intervals keep the whole test well under a minute: a lost worker is
# declared dead after liveness x heartbeat = 2 s of silence.
readonly HEARTBEAT=250ms
readonly LIVENESS=8
readonly PORT=7700                 # private namespaces: no port can clash
readonly NET=10.213.77
readonly C_IP="$NET.1" W1_IP="$NET.2" W2_IP="$NET.3"
readonly ENDPOINT="tcp://$C_IP:$PORT"
readonly DEADLINE_S=60             # for each wait below

log() { printf '[multihost %(%T)T] %s\n' -1 "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }
skip() {
  printf '\n*** SKIPPED: multihost netns test: %s ***\n\n' "$*"
  exit "$SKIP"
}

# ---- can we run here at all? -------------------------------------------------
[ "$(id -u)" -eq 0 ] || skip "needs root to create network namespaces (running as uid $(id -u))"
command -v ip >/dev/null || skip "iproute2's 'ip' is not installed"
command -v python3 >/dev/null || skip "python3 (used to read drover's JSON) is not installed"
[ -x "$DROVER" ] || die "no drover binary at $DROVER"

# Namespace names carry our pid so that concurrent runs never collide.
readonly TAG="drv$$"
readonly NS_BR="$TAG-br" NS_C="$TAG-c" NS_W1="$TAG-w1" NS_W2="$TAG-w2"
readonly ALL_NS=("$NS_C" "$NS_W1" "$NS_W2" "$NS_BR")
WORK="$(mktemp -d "${TMPDIR:-/tmp}/drover-multihost.XXXXXX")"
readonly WORK
PIDS=()
CREATED_NS=()

cleanup() {
  local rc=$?
  set +e
  # Processes first: a namespace is only freed when nothing runs in it.
  local pid
  for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
  # Anything else still inside our namespaces (a task's orphaned sleep).
  local ns
  for ns in "${CREATED_NS[@]}"; do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null
  done
  # Deleting a namespace destroys the veth ends and the bridge inside it.
  for ns in "${CREATED_NS[@]}"; do ip netns del "$ns" 2>/dev/null; done
  if [ "$rc" -ne 0 ] && [ "$rc" -ne "$SKIP" ]; then
    local f
    for f in "$WORK"/*.log; do
      [ -s "$f" ] || continue
      echo "----- $(basename "$f") (last 40 lines) -----" >&2
      tail -n 40 "$f" >&2
    done
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the network -------------------------------------------------------------
make_ns() {
  ip netns add "$1" || return 1
  CREATED_NS+=("$1")
  ip -n "$1" link set lo up
}

# One host: a veth pair whose "eth0" end is in the host's namespace and
# whose other end ("port") is plugged into the bridge.
plug_host() {  # NS IP PORTNAME
  ip -n "$NS_BR" link add "$3" type veth peer name eth0 netns "$1"
  ip -n "$NS_BR" link set "$3" master br0 up
  ip -n "$1" addr add "$2/24" dev eth0
  ip -n "$1" link set eth0 up
}

if ! make_ns "$NS_BR" 2>"$WORK/netns.err"; then
  skip "cannot create a network namespace: $(tr '\n' ' ' <"$WORK/netns.err")"
fi
make_ns "$NS_C"; make_ns "$NS_W1"; make_ns "$NS_W2"
if ! ip -n "$NS_BR" link add br0 type bridge 2>"$WORK/bridge.err"; then
  skip "cannot create a bridge: $(tr '\n' ' ' <"$WORK/bridge.err")"
fi
ip -n "$NS_BR" link set br0 up
plug_host "$NS_C" "$C_IP" port-c
plug_host "$NS_W1" "$W1_IP" port-w1
plug_host "$NS_W2" "$W2_IP" port-w2
log "namespaces ${ALL_NS[*]} up; coordinator $C_IP, w1 $W1_IP, w2 $W2_IP"

wait_for() {  # DESCRIPTION COMMAND...: polls COMMAND until it succeeds
  local what="$1"; shift
  local end=$((SECONDS + DEADLINE_S))
  until "$@"; do
    [ -z "${COORD_PID:-}" ] || kill -0 "$COORD_PID" 2>/dev/null \
      || die "the coordinator died while waiting for $what"
    [ "$SECONDS" -lt "$end" ] || die "timed out after ${DEADLINE_S}s waiting for $what"
    sleep 0.1
  done
}

# ---- the daemons -------------------------------------------------------------
start_in() {  # NS NAME COMMAND...: starts COMMAND in NS, in $WORK/NAME
  local ns="$1" name="$2"; shift 2
  mkdir -p "$WORK/$name"
  # The subshell and `ip netns exec` both exec, so $! is drover's own pid.
  (cd "$WORK/$name" && exec ip netns exec "$ns" "$@" >"$WORK/$name.out" 2>"$WORK/$name.log") &
  PIDS+=("$!")
  log "started $name (pid $!) in $ns: $*"
}

start_in "$NS_C" coordinator "$DROVER" coordinator --listen "$ENDPOINT" \
  --state-dir "$WORK/coordinator/state" --insecure \
  --heartbeat "$HEARTBEAT" --liveness "$LIVENESS"
COORD_PID="${PIDS[-1]}"

# The coordinator prints its bound endpoint as its first line once it listens.
coordinator_listening() {
  kill -0 "$COORD_PID" 2>/dev/null || die "the coordinator exited early"
  [ -n "$(head -n1 "$WORK/coordinator.out")" ]
}
wait_for "the coordinator to listen" coordinator_listening
log "coordinator listens on $(head -n1 "$WORK/coordinator.out")"

for w in w1 w2; do
  ns_var="NS_${w^^}"
  start_in "${!ns_var}" "$w" "$DROVER" worker --connect "$ENDPOINT" \
    --slots spawn=2 --label "host=$w" --name "$w" --spool-dir "$WORK/$w/spool" \
    --heartbeat "$HEARTBEAT" --liveness "$LIVENESS"
done

# Every client command runs in the coordinator's namespace, like an operator
# logged in on that host.
# Each is bounded: a client never outlives the test's deadline.
client() {
  timeout "$DEADLINE_S" ip netns exec "$NS_C" env DROVER_COORDINATOR="$ENDPOINT" "$DROVER" "$@"
}

# json_query EXPR: evaluates a Python expression over the JSON document on
# stdin (bound to `d`) and prints the result.
json_query() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }

workers_alive() {
  local n
  n="$(client workers --output json 2>>"$WORK/client.log" | json_query \
    'sum(1 for w in (d["workers"]) if w["state"] == "ready")' \
    2>>"$WORK/client.log")" || return 1
  [ "$n" = 2 ]
}
wait_for "both workers to register" workers_alive
log "both workers registered"

# ---- 1. a job spreads over both hosts ---------------------------------------
cat >"$WORK/spread.yaml" <<'EOF'
version: 1
name: multihost-spread
tasks:
  shard:
    matrix: {n: [1, 2, 3, 4]}
    run: sleep 0.5 && echo shard ${matrix.n}
EOF
client submit "$WORK/spread.yaml" --wait --lost-timeout 5s >"$WORK/spread.submit" 2>>"$WORK/client.log" \
  || die "the spread job did not succeed: $(cat "$WORK/spread.submit")"
SPREAD_JOB="$(grep -Eo '[0-9]{8}-[0-9]{6}-[0-9a-f]+' "$WORK/spread.submit" | head -n1)"
[ -n "$SPREAD_JOB" ] || die "no job id in the output of submit: $(cat "$WORK/spread.submit")"
client status "$SPREAD_JOB" --output json >"$WORK/spread.json"
used="$(json_query 'sorted({t["worker"] for t in d["tasks"]})' <"$WORK/spread.json")"
ok="$(json_query 'all(t["status"] == "succeeded" for t in d["tasks"]) and len(d["tasks"]) == 4' <"$WORK/spread.json")"
[ "$ok" = True ] || die "spread job: not all 4 tasks succeeded: $(cat "$WORK/spread.json")"
[ "$used" = "['w1', 'w2']" ] || die "spread job ran on $used, expected both w1 and w2"
log "spread job $SPREAD_JOB succeeded on $used"

# ---- 2. an artifact travels from one host to the other ----------------------
# Each worker has its own working and spool directory: only the protocol
# (w1 -> coordinator's store -> w2) can carry the file.
cat >"$WORK/artifact.yaml" <<'EOF'
version: 1
name: multihost-artifact
tasks:
  make:
    on: {host: w1}
    run: >-
      head -c 5000000 /dev/urandom > data.bin &&
      set -- $(sha256sum data.bin) && echo "sha256=$1" >> "$DROVER_OUTPUT"
    artifacts: [data.bin]
  check:
    needs: make
    on: {host: w2}
    env: {WANT: "${tasks.make.outputs.sha256}"}
    run: >-
      set -- $(sha256sum "$DROVER_INPUTS/make/data.bin") &&
      echo "sha256=$1" >> "$DROVER_OUTPUT" && test "$1" = "$WANT"
EOF
client submit "$WORK/artifact.yaml" --wait --lost-timeout 5s >"$WORK/artifact.submit" 2>>"$WORK/client.log" \
  || die "the artifact job did not succeed: $(cat "$WORK/artifact.submit")"
ART_JOB="$(grep -Eo '[0-9]{8}-[0-9]{6}-[0-9a-f]+' "$WORK/artifact.submit" | head -n1)"
[ -n "$ART_JOB" ] || die "no job id in the output of submit: $(cat "$WORK/artifact.submit")"
client status "$ART_JOB" --output json >"$WORK/artifact.json"
placed="$(json_query '" ".join(t["name"] + "@" + t["worker"] for t in d["tasks"])' <"$WORK/artifact.json")"
[ "$placed" = "make@w1 check@w2" ] || die "the artifact job ran as '$placed', expected make@w1 check@w2"
read -r made seen <<<"$(json_query '" ".join(t["outputs"].get("sha256", "-") for t in d["tasks"])' <"$WORK/artifact.json")"
[[ "$made" =~ ^[0-9a-f]{64}$ ]] && [ "$made" = "$seen" ] \
  || die "w2 saw other bytes than w1 made: sha256 $made on w1, $seen on w2"
# The bytes are in the coordinator's store and in w2's cache, each under
# their sha256, and nowhere half-written.
[ -f "$WORK/coordinator/state/artifacts/sha256/${made:0:2}/$made" ] \
  || die "the coordinator's store has no blob $made"
[ -f "$WORK/w2/spool/cache/sha256/${made:0:2}/$made" ] || die "w2's cache has no blob $made"
leftovers="$(find "$WORK/coordinator/state/artifacts/tmp" "$WORK/w2/spool/cache/tmp" -type f | wc -l)"
[ "$leftovers" = 0 ] || die "$leftovers temporary files left in the store or w2's cache"
log "artifact job $ART_JOB: 5 MB from w1 to w2 through the coordinator, sha256 ${made:0:12}... at both ends"

# ---- 3. a worker's cable is pulled mid-task ---------------------------------
cat >"$WORK/cut.yaml" <<'EOF'
version: 1
name: multihost-cut
defaults: {retries: 3, retry_backoff: 100ms}
tasks:
  slow:
    matrix: {n: [1, 2, 3, 4]}
    # On w1 an attempt outlasts the test, so the cut always lands while it
    # runs (a fixed short sleep raced the cut on a loaded machine); on w2
    # it takes a second.
    run: 'if [ "$DROVER_WORKER" = w1 ]; then sleep 120; else sleep 1; fi; echo slow ${matrix.n} done'
EOF
(exec ip netns exec "$NS_C" env DROVER_COORDINATOR="$ENDPOINT" "$DROVER" \
  submit "$WORK/cut.yaml" --wait --lost-timeout 5s >"$WORK/cut.submit" 2>>"$WORK/client.log") &
SUBMIT_PID=$!
PIDS+=("$SUBMIT_PID")

# Wait until w1 runs some of the tasks, then pull its cable on the switch.
CUT_JOB=""
w1_running() {
  [ -n "$CUT_JOB" ] || CUT_JOB="$(grep -Eo '[0-9]{8}-[0-9]{6}-[0-9a-f]+' "$WORK/cut.submit" | head -n1)"
  [ -n "$CUT_JOB" ] || return 1
  local n
  n="$(client status "$CUT_JOB" --output json 2>>"$WORK/client.log" | json_query \
    'sum(1 for t in d["tasks"] if t["status"] == "running" and t["worker"] == "w1")' \
    2>>"$WORK/client.log")" || return 1
  [ "${n:-0}" -ge 1 ]
}
wait_for "w1 to run tasks of the second job" w1_running
client status "$CUT_JOB" --output json >"$WORK/before-cut.json"
ON_W1="$(json_query '" ".join(sorted(t["name"] for t in d["tasks"] if t["status"] == "running" and t["worker"] == "w1"))' <"$WORK/before-cut.json")"
ip -n "$NS_BR" link set port-w1 down
CUT_AT=$SECONDS
log "cut w1's link while it ran: $ON_W1"

# The job must end (submit --wait returns) and succeed.
submit_done() { ! kill -0 "$SUBMIT_PID" 2>/dev/null; }
wait_for "the second job to end" submit_done
submit_rc=0
wait "$SUBMIT_PID" || submit_rc=$?
[ "$submit_rc" -eq 0 ] || die "submit --wait exited $submit_rc after the cut: $(cat "$WORK/cut.submit")"
log "the second job ended $((SECONDS - CUT_AT))s after the cut"

client status "$CUT_JOB" --output json >"$WORK/cut.json"
ok="$(json_query 'd["job"]["state"] == "succeeded" and all(t["status"] == "succeeded" for t in d["tasks"])' <"$WORK/cut.json")"
[ "$ok" = True ] || die "the job did not succeed after the cut: $(cat "$WORK/cut.json")"
for task in $ON_W1; do
  moved="$(json_query "[(t['worker'], t['attempts']) for t in d['tasks'] if t['name'] == '$task'][0]" <"$WORK/cut.json")"
  case "$moved" in
    "('w2', "*) ;;
    *) die "task $task ran on w1 when its link was cut, then: (worker, attempts) = $moved; expected it to finish on w2" ;;
  esac
  attempts="$(json_query "[t['attempts'] for t in d['tasks'] if t['name'] == '$task'][0]" <"$WORK/cut.json")"
  [ "$attempts" -ge 2 ] || die "task $task finished on w2 in $attempts attempt(s); the lost attempt on w1 must count"
done
lost_state="$(client workers --output json | json_query \
  '[w.get("state") for w in (d["workers"]) if w["name"] == "w1"]')"
log "after the cut the coordinator shows w1 as $lost_state"
[ "$lost_state" = "['lost']" ] || die "the coordinator shows w1 as $lost_state, expected lost"

log "PASS: tasks $ON_W1 of job $CUT_JOB were re-queued from w1 (cut) and finished on w2"
