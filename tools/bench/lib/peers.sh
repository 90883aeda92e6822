# shellcheck shell=bash
# tools/bench/lib/peers.sh: the peers and tools a scenario needs, installed
# on first use (Debian packages through apt-get, npm packages into
# ~/.cache/drover-bench), and their versions, recorded for the JSON file.
# A peer that cannot be installed is announced loudly on stderr and
# recorded as "not installed" with the reason; the scenario then runs
# without it, and says so in its table.

# The Debian interpreter: python3-distributed and python3-celery install
# into its dist-packages, which a python3 from elsewhere on PATH (pyenv,
# a venv) does not see.
readonly DEBIAN_PYTHON=/usr/bin/python3
readonly NPM_CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/drover-bench"

APT_UPDATED=0
APT_ERROR=""
# Installs Debian PACKAGES; on failure runs `apt-get update` once and tries
# again. Sets APT_ERROR to the last lines of apt's complaint on failure.
apt_install() {  # PACKAGE...
  local sudo=() log="$WORK/apt.log"
  APT_ERROR=""
  if [[ "$(id -u)" != 0 ]]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
      sudo=(sudo -n)
    else
      APT_ERROR="not root and no password-less sudo"
      return 1
    fi
  fi
  command -v apt-get >/dev/null || { APT_ERROR="no apt-get on this machine"; return 1; }
  echo "installing $* (Debian) ..." >&2
  export DEBIAN_FRONTEND=noninteractive
  if "${sudo[@]}" apt-get install -y -qq --no-install-recommends "$@" >"$log" 2>&1; then
    return 0
  fi
  if [[ "$APT_UPDATED" == 0 ]]; then
    APT_UPDATED=1
    "${sudo[@]}" apt-get update -qq >>"$log" 2>&1 || true
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends "$@" >>"$log" 2>&1 && return 0
  fi
  APT_ERROR="apt-get install $* failed: $(grep -E '^(E|W):' "$log" | tail -n 2 | tr '\n' ' ')"
  [[ -n "${APT_ERROR##*failed: }" ]] || APT_ERROR="apt-get install $* failed (exit status; $log)"
  return 1
}

# The version line of a tool or peer, or "" when it is not there.
version_of() {  # NAME
  local v=""
  case "$1" in
    node) v="$(node --version 2>/dev/null)" ;;
    npm) v="$(npm --version 2>/dev/null)" ;;
    piscina) v="$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' \
                  "$NPM_CACHE/node_modules/piscina/package.json" 2>/dev/null | head -n1)" ;;
    xargs) v="$(xargs --version 2>/dev/null | head -n1)" ;;
    parallel) v="$(parallel --version 2>/dev/null | head -n1)" ;;
    wrk) v="$(wrk -v 2>&1 | head -n1 | grep '^wrk' | cut -d' ' -f1-2 || true)" ;;
    python3) v="$(python3 --version 2>&1)" ;;
    debian-python3) v="$("$DEBIAN_PYTHON" --version 2>&1)" ;;
    dask) v="distributed $("$DEBIAN_PYTHON" -c 'import distributed; print(distributed.__version__)' 2>/dev/null)" ;;
    celery) v="celery $("$DEBIAN_PYTHON" -c 'import celery; print(celery.__version__)' 2>/dev/null)" ;;
    redis-py) v="redis-py $("$DEBIAN_PYTHON" -c 'import redis; print(redis.__version__)' 2>/dev/null)" ;;
    redis-server) v="$(redis-server --version 2>/dev/null | head -n1 | cut -d' ' -f1-3)" ;;
    sqlite3) v="sqlite3 $(sqlite3 --version 2>/dev/null | cut -d' ' -f1)" ;;
    cp) v="$(cp --version 2>/dev/null | head -n1)" ;;
    time) v="$(/usr/bin/time --version 2>&1 | head -n1)" ;;
    ss) v="$(ss -V 2>/dev/null | head -n1)" ;;
    cmake) v="$(cmake --version 2>/dev/null | head -n1)" ;;
    compiler) v="$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$BUILD_DIR/CMakeCache.txt" 2>/dev/null)"
              [[ -z "$v" ]] || v="$("$v" --version 2>/dev/null | head -n1)" ;;
  esac
  [[ "$v" =~ [0-9] ]] && echo "$v"
  return 0
}

declare -A PEER_STATE=()  # NAME -> ok | missing (already recorded)
# Records NAME's version (once a run) and marks it usable.
peer_ok() {  # NAME [HOW]
  [[ -z "${PEER_STATE[$1]:-}" ]] || return 0
  PEER_STATE[$1]=ok
  rec peer name="$1" status="${2:-present}" version="$(version_of "$1")"
}
# Announces loudly that peer NAME is unavailable, and records why.
peer_missing() {  # NAME REASON
  [[ -z "${PEER_STATE[$1]:-}" ]] || return 0
  PEER_STATE[$1]=missing
  rec peer name="$1" status="not installed" reason="$2"
  {
    echo "========================================================================"
    echo "bench: peer $1: not installed: $2"
    echo "       (the figures below are without it; the JSON file records why)"
    echo "========================================================================"
  } >&2
}
peer_usable() { [[ "${PEER_STATE[$1]:-}" == ok ]]; }

# Makes sure tool NAME works, installing Debian PACKAGE (a space-separated
# list) on first use.
# CHECK is a command that succeeds when the tool is usable. Returns 1 (and
# reports) when it cannot be had.
ensure_debian() {  # NAME PACKAGE CHECK...
  local name="$1" package="$2" packages
  shift 2
  [[ "${PEER_STATE[$name]:-}" == missing ]] && return 1
  if "$@" >/dev/null 2>&1; then peer_ok "$name"; return 0; fi
  read -ra packages <<<"$package"
  if apt_install "${packages[@]}" && "$@" >/dev/null 2>&1; then
    peer_ok "$name" "installed by the bench (Debian $package)"
    return 0
  fi
  peer_missing "$name" "${APT_ERROR:-installed Debian $package, but '$*' still fails}"
  return 1
}

is_gnu_parallel() { parallel --version 2>/dev/null | head -n1 | grep -q 'GNU parallel'; }
has_wrk() { command -v wrk; }
has_node() { command -v node && command -v npm; }
has_redis() { command -v redis-server; }
has_dask() { "$DEBIAN_PYTHON" -c 'import distributed'; }
has_celery() { "$DEBIAN_PYTHON" -c 'import celery, redis'; }

ensure_parallel() {
  # moreutils ships another `parallel`; GNU parallel's package replaces it.
  ensure_debian parallel parallel is_gnu_parallel
}
ensure_wrk() { ensure_debian wrk wrk has_wrk; }
ensure_node() { ensure_debian node "nodejs npm" has_node && peer_ok npm; }
ensure_dask() { ensure_debian debian-python3 python3 test -x "$DEBIAN_PYTHON" && ensure_debian dask python3-distributed has_dask; }
ensure_celery() {
  ensure_debian debian-python3 python3 test -x "$DEBIAN_PYTHON" &&
    ensure_debian redis-server redis-server has_redis &&
    ensure_debian celery "python3-celery python3-redis" has_celery && peer_ok redis-py
}

# piscina from npm into NPM_CACHE (NODE_PATH points there).
ensure_piscina() {
  [[ "${PEER_STATE[piscina]:-}" == missing ]] && return 1
  ensure_node || { peer_missing piscina "node/npm missing"; return 1; }
  if [[ ! -d "$NPM_CACHE/node_modules/piscina" ]]; then
    echo "installing piscina@4 from npm into $NPM_CACHE ..." >&2
    mkdir -p "$NPM_CACHE"
    if ! (cd "$NPM_CACHE" && npm install --silent --no-audit --no-fund piscina@4 >"$WORK/npm.log" 2>&1); then
      peer_missing piscina "npm install piscina@4 failed: $(tail -n 2 "$WORK/npm.log" | tr '\n' ' ')"
      return 1
    fi
    peer_ok piscina "installed by the bench (npm)"
    return 0
  fi
  peer_ok piscina
}

# Records the version of a tool that is always there (coreutils, ...).
uses() {  # NAME...
  local name
  for name in "$@"; do peer_ok "$name"; done
}
