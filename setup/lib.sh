# Helpers for setup steps. A failing step names the step, the command, the cause and the fix,
# and the setup stops there: it never goes on half-installed.
set -euo pipefail
# shellcheck source=setup/env.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/env.sh"

SETUP_STEP="${SETUP_STEP:-setup}"

log() { printf '[setup:%s] %s\n' "$SETUP_STEP" "$*" >&2; }

# fail CAUSE FIX [COMMAND]: report and exit.
fail() {
  local cause="$1" fix="$2" cmd="${3:-}"
  {
    printf '\n[setup:%s] FAILED\n' "$SETUP_STEP"
    [[ -n "$cmd" ]] && printf '  command: %s\n' "$cmd"
    printf '  cause:   %s\n' "$cause"
    printf '  fix:     %s\n' "$fix"
  } >&2
  exit 1
}

# run FIX -- CMD...: run CMD with its output in a step log; on failure show the log's tail and
# the fix. Output is kept in a log so long steps stay readable yet diagnosable.
run() {
  local fix="$1"; shift
  [[ "$1" == "--" ]] && shift
  local logfile
  logfile="$(mktemp "${TMPDIR:-/tmp}/alluxio-mesos-setup.XXXXXX")"
  local rc=0
  "$@" >"$logfile" 2>&1 || rc=$?
  if ((rc != 0)); then
    local tail_text
    tail_text="$(tail -n 25 "$logfile")"
    fail "exit status $rc; last output:
$(printf '%s\n' "$tail_text" | sed 's/^/    | /')" "$fix" "$*"
  fi
  rm -f "$logfile"
}

# need_cmd CMD FIX: fail unless CMD is on PATH.
need_cmd() {
  command -v "$1" >/dev/null 2>&1 || fail "'$1' is not installed" "$2" "command -v $1"
}

# registry_reachable URL NAME: fail early with a clear cause when a registry does not answer.
registry_reachable() {
  curl -fsS -o /dev/null -m 20 "$1" 2>/dev/null \
    || fail "the $2 registry at $1 does not answer" \
            "check this machine's access to the $2 registry, then rerun the same make target" \
            "curl -fsS $1"
}

# apt_install PKG...: install Debian packages that are missing (apt-get update once).
apt_install() {
  local missing=()
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  ((${#missing[@]} == 0)) && return 0
  [[ $(id -u) -eq 0 ]] || fail "Debian packages ${missing[*]} are missing and installing them needs root" \
    "run the setup as root, or install them with: sudo apt-get install ${missing[*]}"
  log "installing Debian packages: ${missing[*]}"
  if [[ ! -f /var/lib/apt/periodic/alluxio-mesos-updated ]] || [[ -z "$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v lock)" ]]; then
    run "check that Debian's package mirror is reachable" -- apt-get -o DPkg::Lock::Timeout=300 update
    mkdir -p /var/lib/apt/periodic && touch /var/lib/apt/periodic/alluxio-mesos-updated
  fi
  run "check that Debian's package mirror is reachable and the names exist in $DEBIAN_SUITE" -- \
    env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends "${missing[@]}"
}
