# shellcheck shell=bash
# tools/bench/lib/common.sh: what every scenario of tools/bench/bench uses:
# errors, the machine line, building, the no-op jobs, medians, and the
# records that become the JSON file (lib/report.py). Sourced by
# tools/bench/bench, which sets ROOT, WORK, BUILD_DIR and the options.

die_usage() {
  echo "bench: $*" >&2
  echo "run 'tools/bench/bench --help' for usage" >&2
  exit 2
}

die() {
  echo "bench: $*" >&2
  exit 1
}

positive_int() {  # NAME VALUE
  [[ "$2" =~ ^[1-9][0-9]*$ ]] || die_usage "$1 needs a positive integer, got '$2'"
}

now_ns() { date +%s%N; }

cpu_model() {
  local cpu
  cpu="$(grep -m1 '^model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//')"
  echo "${cpu:-unknown}"
}

machine() {
  echo "machine: nproc=$(nproc), cpu=$(cpu_model), kernel=$(uname -sr) $(uname -m), load $(cut -d' ' -f1-3 /proc/loadavg)"
}

# Seconds (3 decimals) between two now_ns readings.
seconds_between() { awk -v ns="$(($2 - $1))" 'BEGIN { printf "%.3f", ns / 1e9 }'; }

# N divided by the time between two now_ns readings.
rate_between() {  # N T0 T1
  awk -v n="$1" -v ns="$(($3 - $2))" 'BEGIN { printf "%.1f", n / (ns / 1e9) }'
}

median() {  # VALUES...
  printf '%s\n' "$@" | sort -g |
    awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# A / B to 4 significant digits ("-" when either is missing or B is 0).
ratio() {  # A B
  awk -v a="${1:-}" -v b="${2:-}" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "-"; else printf "%.4g", a / b }'
}

# Scales a default size by --size (a fraction), at least MIN.
scaled() {  # DEFAULT MIN
  awk -v d="$1" -v f="$SIZE" -v m="$2" 'BEGIN { v = int(d * f + 0.5); if (v < m) v = m; print v }'
}

# A free TCP port on 127.0.0.1 (bound and released: the caller binds it next).
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Builds the targets the chosen command needs, into BUILD_DIR (once).
BUILT=0
build() {
  [[ "$BUILT" == 0 && "$NO_BUILD" == 0 ]] || return 0
  BUILT=1
  local targets=(spawn_loop durable_loop threads_bench cluster_bench ipc_bench workers_bench dispatch_floor)
  [[ "$SKIP_DROVER" == 1 ]] || targets+=(drover)
  local log="$WORK/build.log"
  if [[ ! -f "$BUILD_DIR/CMakeCache.txt" ]]; then
    echo "configuring $BUILD_DIR ..."
    cmake -S "$ROOT" -B "$BUILD_DIR" >"$log" 2>&1 || { tail -n 30 "$log" >&2; die "cmake configure failed"; }
  fi
  echo "building ${targets[*]} in $BUILD_DIR ..."
  cmake --build "$BUILD_DIR" --parallel "$(nproc)" --target "${targets[@]}" >"$log" 2>&1 ||
    { tail -n 30 "$log" >&2; die "build failed (full log above, last 30 lines)"; }
}

# Writes a job of N instances of `run: [true]` (spawn) to FILE.
write_job() {  # N FILE
  {
    echo "version: 1"
    echo "name: bench-noop"
    echo "tasks:"
    echo "  noop:"
    echo "    run: [true]"
    printf '    matrix: {i: ['
    seq -s ', ' 0 $(($1 - 1)) | tr -d '\n'
    echo ']}'
  } >"$2"
}

# Writes a job of N instances of the threads backend's `noop` to FILE as a
# matrix of two keys (1,000 x N/1,000) when N is a multiple of 1,000, as a
# big job is written; of one key otherwise.
write_matrix_noop_job() {  # N FILE
  if (($1 < 1000 || $1 % 1000 != 0)); then
    write_noop_job "$1" "$2"
    return
  fi
  {
    echo "version: 1"
    echo "name: bench-scale"
    echo "tasks:"
    echo "  noop:"
    echo "    backend: threads"
    echo "    fn: noop"
    printf '    matrix:\n      i: ['
    seq -s ', ' 0 999 | tr -d '\n'
    printf ']\n      j: ['
    seq -s ', ' 0 $(($1 / 1000 - 1)) | tr -d '\n'
    echo ']'
  } >"$2"
}

# Writes a job of N instances of the threads backend's `noop` to FILE.
write_noop_job() {  # N FILE
  {
    echo "version: 1"
    echo "name: bench-dispatch"
    echo "tasks:"
    echo "  noop:"
    echo "    backend: threads"
    echo "    fn: noop"
    printf '    matrix: {i: ['
    seq -s ', ' 0 $(($1 - 1)) | tr -d '\n'
    echo ']}'
  } >"$2"
}

# Checks that the drover binary really runs tasks (and is not a stub):
# a 5-task job must exit 0 and print one line per finished task.
check_drover() {
  [[ -x "$DROVER" ]] || die "no drover binary at $DROVER"
  local job="$WORK/check.yaml" out="$WORK/check.out"
  write_job 5 "$job"
  if ! "$DROVER" run -j 2 --state-dir "$WORK/check-state" "$job" >"$out" 2>"$WORK/check.err"; then
    cat "$WORK/check.err" >&2
    die "drover run failed on a 5-task job"
  fi
  local lines
  lines="$(wc -l <"$out")"
  if ((lines < 5)); then
    die "drover run printed $lines lines for 5 tasks (expected one per finished task): is it built?"
  fi
  rm -rf -- "$WORK/check-state"
}

# ---- records: one JSON object a line in $RECORDS, assembled by lib/report.py ----

# A JSON string literal of TEXT.
json_str() {
  local s="$1"
  s="${s//\\/\\\\}"
  s="${s//\"/\\\"}"
  s="${s//$'\n'/\\n}"
  s="${s//$'\t'/\\t}"
  s="${s//$'\r'/\\r}"
  printf '"%s"' "$s"
}

# rec TYPE KEY=VALUE...: a record; a VALUE that is a number is written as
# one, anything else as a string.
rec() {
  local type="$1" kv key value line
  shift
  line="{\"type\":$(json_str "$type")"
  for kv in "$@"; do
    key="${kv%%=*}"
    value="${kv#*=}"
    if [[ "$value" =~ ^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$ ]]; then
      line+=",$(json_str "$key"):$value"
    else
      line+=",$(json_str "$key"):$(json_str "$value")"
    fi
  done
  printf '%s}\n' "$line" >>"$RECORDS"
}

# The scenario being measured: its command line and parameters.
SCENARIO=""
begin_scenario() {  # NAME DESCRIPTION [KEY=VALUE...]
  SCENARIO="$1"
  local description="$2"
  shift 2
  rec scenario scenario="$SCENARIO" description="$description" \
    command="tools/bench/bench $SCENARIO ${SCENARIO_ARGS[*]}" \
    load="$(cut -d' ' -f1-3 /proc/loadavg)" date="$(date -u +%FT%TZ)" "$@"
}
end_scenario() {
  rec scenario_end scenario="$SCENARIO" load="$(cut -d' ' -f1-3 /proc/loadavg)" \
    date="$(date -u +%FT%TZ)"
}

# One run's figure: RUNNER (a label), METRIC (e.g. tasks_per_s), RUN, VALUE.
rec_run() { rec run scenario="$SCENARIO" runner="$1" metric="$2" run="$3" value="$4"; }
# A ratio the scenario prints, with its target when it has one
# (TARGET like ">=0.9" or "<=2").
rec_ratio() { rec ratio scenario="$SCENARIO" name="$1" value="$2" ${3:+target="$3"}; }
# A runner or peer that did not run, and why.
rec_skip() { rec skip scenario="$SCENARIO" runner="$1" reason="$2"; echo "skipped: $1: $2"; }
# Any other figure (e.g. a median a program computed itself).
rec_figure() { rec figure scenario="$SCENARIO" name="$1" value="$2" ${3:+unit="$3"}; }
