#!/usr/bin/env bash
# The Docker engine the sandbox hosts run on. If an engine already answers, nothing is touched.
# Otherwise Debian's docker.io is installed and dockerd is started in the background: machines
# without systemd (containers, Firecracker VMs) have no service manager to do it for us.
. "$(dirname "$0")/../lib.sh"

DOCKERD_LOG="${DOCKERD_LOG:-/var/log/alluxio-mesos-dockerd.log}"
DOCKERD_PIDFILE="${DOCKERD_PIDFILE:-/var/run/docker.pid}"
DOCKERD_DATA_ROOT="${DOCKERD_DATA_ROOT:-/var/lib/docker}"
DOCKERD_START_TIMEOUT="${DOCKERD_START_TIMEOUT:-90}"

engine_answers() { docker info >/dev/null 2>&1; }

describe_engine() {
  docker info --format \
    'engine {{.ServerVersion}} (storage driver {{.Driver}}, cgroup {{.CgroupVersion}}, {{.Images}} images, {{.Containers}} containers)' \
    2>/dev/null
}

if command -v docker >/dev/null 2>&1 && engine_answers; then
  log "a Docker engine already answers: $(describe_engine)"
  exit 0
fi

[[ $(id -u) -eq 0 ]] || fail "no Docker engine answers, and installing or starting dockerd needs root" \
  "run 'setup/bootstrap.sh docker' as root, or start a Docker engine yourself and make 'docker info' answer" \
  "docker info"

# Two setups at once must not start two daemons: the second waits, then finds the engine running.
exec 9>/var/lock/alluxio-mesos-docker.lock
if ! flock -n 9; then
  log "another setup is installing or starting dockerd; waiting for it"
  flock 9
fi
if command -v docker >/dev/null 2>&1 && engine_answers; then
  log "a Docker engine answers: $(describe_engine)"
  exit 0
fi

# Docker's own packages (docker-ce*) conflict with Debian's docker.io. If their daemon is present we
# simply start it below; a lone docker-ce-cli is a conflict we do not resolve behind the user's back.
package_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
if ! command -v dockerd >/dev/null 2>&1; then
  for pkg in docker-ce-cli docker-ce-rootless-extras; do
    if package_installed "$pkg"; then
      fail "Docker's package $pkg is installed without its daemon, and Debian's docker.io conflicts with it" \
        "either install and start docker-ce from Docker's repository, or remove $pkg (apt-get remove $pkg) and rerun this step" \
        "dpkg-query -W $pkg"
    fi
  done
  for client in /usr/bin/docker "$(command -v docker 2>/dev/null || true)"; do
    [[ -n "$client" && -e "$client" ]] || continue
    owner="$(dpkg -S "$client" 2>/dev/null | cut -d: -f1 || true)"
    if [[ -n "$owner" && "$owner" != "docker.io" ]]; then
      fail "$client belongs to the Debian package '$owner', which would conflict with docker.io's files" \
        "remove '$owner' (apt-get remove $owner) or install its matching daemon, then rerun this step" \
        "dpkg -S $client"
    fi
  done

  # Installing docker.io runs its init script; without a policy the package would start a dockerd
  # with its defaults before we choose a configuration. Deny service starts for the install only.
  policy=/usr/sbin/policy-rc.d
  if [[ ! -e "$policy" ]]; then
    printf '#!/bin/sh\n# temporary, from alluxio-mesos setup/steps/docker.sh\nexit 101\n' >"$policy"
    chmod 0755 "$policy"
    trap 'rm -f "$policy"' EXIT
  fi
  apt_install docker.io containerd runc tini iptables
  [[ -e "$policy" ]] && grep -q 'alluxio-mesos setup/steps/docker.sh' "$policy" && rm -f "$policy"
  trap - EXIT
fi
need_cmd dockerd "install Debian's docker.io (apt-get install docker.io)"
need_cmd docker "install Debian's docker.io (apt-get install docker.io)"

client_path="$(command -v docker)"
if [[ -z "$(dpkg -S "$client_path" 2>/dev/null || true)" ]]; then
  log "note: the docker client on PATH ($client_path, $(docker --version 2>/dev/null || echo 'version unknown')) is not from a Debian package; it negotiates the API version with dockerd"
fi

# --- choose a configuration that works on this kernel -------------------------------------------

# overlay2 needs a kernel with overlayfs and an upper filesystem that supports it (ext4, xfs with
# d_type); probe with a real mount in the data root's filesystem rather than trusting uname.
# Runs inside `if`, where set -e does not apply, so every step checks its own result.
probe_overlay() {
  local dir ok=1
  mkdir -p "$DOCKERD_DATA_ROOT" 2>/dev/null || return 1
  dir="$(mktemp -d "$DOCKERD_DATA_ROOT/.overlay-probe.XXXXXX" 2>/dev/null)" || return 1
  [[ -n "$dir" && -d "$dir" ]] || return 1
  if mkdir "$dir/lower" "$dir/upper" "$dir/work" "$dir/merged" \
    && mount -t overlay overlay -o "lowerdir=$dir/lower,upperdir=$dir/upper,workdir=$dir/work" "$dir/merged" 2>/dev/null; then
    touch "$dir/merged/probe" 2>/dev/null && ok=0
    umount "$dir/merged" || ok=1
  fi
  rm -rf --one-file-system "$dir"
  return $ok
}
if probe_overlay; then
  storage_driver=overlay2
else
  storage_driver=vfs
  log "overlayfs does not mount under $DOCKERD_DATA_ROOT; falling back to the vfs storage driver (slower, more disk)"
fi

# Debian points iptables at the nft backend. Some VM kernels only have one of the two backends, so
# use whichever answers; without either, containers still reach each other and the host over the
# bridge, only port publishing through NAT is lost.
iptables_flags=()
if iptables -t nat -L -n >/dev/null 2>&1; then
  log "iptables: $(iptables -V 2>/dev/null)"
elif command -v iptables-legacy >/dev/null 2>&1 && iptables-legacy -t nat -L -n >/dev/null 2>&1; then
  log "the nft iptables backend does not work on this kernel; switching the iptables alternative to legacy"
  run "check that iptables-legacy works: iptables-legacy -t nat -L -n" -- update-alternatives --set iptables /usr/sbin/iptables-legacy
  run "check that ip6tables-legacy works" -- update-alternatives --set ip6tables /usr/sbin/ip6tables-legacy
else
  log "no iptables backend works on this kernel; starting dockerd with --iptables=false (bridge IPs still reachable from this host)"
  iptables_flags=(--iptables=false --ip-masq=false)
fi

# --- start dockerd ------------------------------------------------------------------------------

# A pidfile left by a dockerd that died (VM restart, kill -9) makes the next dockerd refuse to start.
if [[ -f "$DOCKERD_PIDFILE" ]]; then
  old_pid="$(cat "$DOCKERD_PIDFILE" 2>/dev/null || true)"
  if [[ -n "$old_pid" ]] && kill -0 "$old_pid" 2>/dev/null; then
    fail "dockerd is running (pid $old_pid from $DOCKERD_PIDFILE) but 'docker info' does not answer" \
      "look at $DOCKERD_LOG and the socket /var/run/docker.sock; stop that dockerd (kill $old_pid) and rerun this step" \
      "docker info"
  fi
  log "removing the stale pidfile $DOCKERD_PIDFILE (pid ${old_pid:-?} is gone)"
  rm -f "$DOCKERD_PIDFILE"
fi

mkdir -p "$(dirname "$DOCKERD_LOG")"
dockerd_cmd=(dockerd --pidfile "$DOCKERD_PIDFILE" --data-root "$DOCKERD_DATA_ROOT"
  --storage-driver "$storage_driver" --exec-opt native.cgroupdriver=cgroupfs "${iptables_flags[@]}")
log "starting ${dockerd_cmd[*]} (log: $DOCKERD_LOG)"
printf '\n==== %s alluxio-mesos setup starts: %s\n' "$(date -Is)" "${dockerd_cmd[*]}" >>"$DOCKERD_LOG"
# Own session, stdin closed, output to the log: dockerd outlives this script and its terminal.
# 9>&- : dockerd must not inherit (and hold forever) the setup lock.
setsid "${dockerd_cmd[@]}" </dev/null >>"$DOCKERD_LOG" 2>&1 9>&- &
dockerd_pid=$!
disown "$dockerd_pid" 2>/dev/null || true

dockerd_failed() {
  fail "$1; last lines of $DOCKERD_LOG:
$(tail -n 25 "$DOCKERD_LOG" | sed 's/^/    | /')" \
    "read the dockerd log above; common causes: another dockerd/containerd holding /var/run/docker.sock or $DOCKERD_DATA_ROOT, a kernel without overlay/bridge/veth support; then rerun 'setup/bootstrap.sh docker'" \
    "${dockerd_cmd[*]}"
}

waited=0
until engine_answers; do
  kill -0 "$dockerd_pid" 2>/dev/null || dockerd_failed "dockerd (pid $dockerd_pid) exited during startup"
  if ((waited >= DOCKERD_START_TIMEOUT)); then
    kill "$dockerd_pid" 2>/dev/null || true
    dockerd_failed "dockerd (pid $dockerd_pid) did not answer 'docker info' within ${DOCKERD_START_TIMEOUT}s; it was stopped"
  fi
  ((waited > 0 && waited % 5 == 0)) && log "waiting for dockerd to answer (${waited}s of ${DOCKERD_START_TIMEOUT}s)"
  sleep 1
  waited=$((waited + 1))
done
log "dockerd (pid $dockerd_pid) answers: $(describe_engine)"
