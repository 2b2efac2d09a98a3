#!/usr/bin/env bash
# The sandbox host image, built from Debian packages only (no registry is reachable):
#   1. debootstrap a root filesystem with the recipe's packages (cached as a tarball),
#   2. `docker import` it as alluxio-mesos-host-base:<rootfs hash>,
#   3. `docker build` the recipe's Dockerfile FROM that local image -> alluxio-mesos-host:<recipe hash>.
# The tags come from `python -m sandbox.hosts.image`; an existing tag means there is nothing to do.
. "$(dirname "$0")/../lib.sh"

[[ -x "$ALLUXIO_MESOS_VENV/bin/python" ]] || fail "the project virtualenv $ALLUXIO_MESOS_VENV is missing" \
  "run 'setup/bootstrap.sh venv' first"
# Only stdout is evaluated: it holds nothing but shlex-quoted assignments.
recipe_errors="$(mktemp)"
recipe_vars="$(cd "$ALLUXIO_MESOS_REPO" && "$ALLUXIO_MESOS_VENV/bin/python" -m sandbox.hosts.image shell-vars 2>"$recipe_errors")" \
  || fail "the host image recipe is invalid: $(cat "$recipe_errors")" "fix the file named above in sandbox/hosts/image/" \
          "python -m sandbox.hosts.image shell-vars"
rm -f "$recipe_errors"
eval "$recipe_vars"

docker info >/dev/null 2>&1 || fail "the Docker engine does not answer 'docker info'" \
  "run 'setup/bootstrap.sh docker' (as root) and rerun this step" "docker info"

if docker image inspect "$HOST_IMAGE_TAG" >/dev/null 2>&1; then
  log "image $HOST_IMAGE_TAG is present ($(docker image inspect -f '{{.Size}}' "$HOST_IMAGE_TAG" | awk '{printf "%.0f MB", $1/1e6}'))"
  exit 0
fi

images_dir="$ALLUXIO_MESOS_CACHE/images"
rootfs_tarball="$images_dir/host-rootfs-$HOST_ROOTFS_KEY.tar.zst"
mkdir -p "$images_dir"
build_dir=""

# Two setups at once (say `make test` and `make up`) would both debootstrap; the second waits for
# the first and then finds the image built.
exec 9>"$images_dir/.host-image.lock"
if ! flock -n 9; then
  log "another host image build is running; waiting for it"
  flock 9
fi
if docker image inspect "$HOST_IMAGE_TAG" >/dev/null 2>&1; then
  log "image $HOST_IMAGE_TAG was built meanwhile"
  exit 0
fi

# debootstrap mounts /proc and /sys inside the target and leaves them mounted when it fails;
# unmount before deleting so that rm never walks into the host's /proc or /sys.
cleanup_build() {
  [[ -n "$build_dir" && -d "$build_dir" ]] || return 0
  local mnt
  awk -v prefix="$build_dir/" 'index($2, prefix) == 1 { print $2 }' /proc/mounts | sort -r \
    | while read -r mnt; do umount -l "$mnt" 2>/dev/null || true; done
  rm -rf --one-file-system "$build_dir"
}
trap cleanup_build EXIT

# run_with_progress LABEL FIX -- CMD...: like `run`, but prints the command's latest progress line
# every 20 seconds, because debootstrap takes minutes and is silent under `run`.
run_with_progress() {
  local label="$1" fix="$2"; shift 2
  [[ "$1" == "--" ]] && shift
  local logfile="$build_dir/$label.log" started=$SECONDS pid rc=0 ticks=0
  "$@" >"$logfile" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    ticks=$((ticks + 1))
    if ((ticks % 20 == 0)); then
      log "$label: $((SECONDS - started))s, $(grep -E '^I: ' "$logfile" | tail -n 1 | cut -c4-100)"
    fi
  done
  wait "$pid" || rc=$?
  if ((rc != 0)); then
    fail "exit status $rc; last output:
$(tail -n 25 "$logfile" | sed 's/^/    | /')" "$fix" "$*"
  fi
  log "$label done in $((SECONDS - started))s"
}

build_rootfs_tarball() {
  [[ $(id -u) -eq 0 ]] || fail "debootstrap needs root (it creates device nodes and chroots)" \
    "run 'setup/bootstrap.sh host-image' as root"
  apt_install debootstrap debian-archive-keyring zstd
  local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  [[ -f "$keyring" ]] || fail "the Debian archive keyring $keyring is missing" \
    "apt-get install --reinstall debian-archive-keyring"
  build_dir="$(mktemp -d "$images_dir/.build-$HOST_ROOTFS_KEY.XXXXXX")"
  local rootfs="$build_dir/rootfs"
  log "debootstrap $DEBOOTSTRAP_SUITE ($DEBOOTSTRAP_VARIANT) from $DEBOOTSTRAP_MIRROR with $DEBOOTSTRAP_INCLUDE; this takes a few minutes"
  # The explicit keyring makes signature checking mandatory: debootstrap fails instead of
  # continuing unverified.
  run_with_progress debootstrap \
    "check that $DEBOOTSTRAP_MIRROR is reachable and the packages in sandbox/hosts/image/packages.txt exist in $DEBOOTSTRAP_SUITE; the full log is $build_dir/debootstrap.log" -- \
    debootstrap --variant="$DEBOOTSTRAP_VARIANT" --components="$DEBOOTSTRAP_COMPONENTS" \
      --include="$DEBOOTSTRAP_INCLUDE" --keyring="$keyring" \
      "$DEBOOTSTRAP_SUITE" "$rootfs" "$DEBOOTSTRAP_MIRROR"
  run "see the message above; sandbox/hosts/image/finish-rootfs.sh prepares the tree for archiving" -- \
    sh "$HOST_RECIPE_DIR/finish-rootfs.sh" "$rootfs"
  log "archiving the root filesystem ($(du -sm --one-file-system "$rootfs" | cut -f1) MB)"
  run "check free space in $images_dir" -- bash -o pipefail -c \
    "tar -C '$rootfs' --one-file-system --numeric-owner --xattrs --xattrs-include='*' -cf - . | zstd -q -T0 -o '$build_dir/rootfs.tar.zst'"
  mv "$build_dir/rootfs.tar.zst" "$rootfs_tarball"
  cleanup_build
  build_dir=""
  # Tarballs of older recipes are never used again.
  find "$images_dir" -maxdepth 1 -name 'host-rootfs-*.tar.zst' ! -name "host-rootfs-$HOST_ROOTFS_KEY.tar.zst" \
    -print -delete | sed 's/^/[setup:host-image] removed the stale tarball /' >&2
  log "cached $rootfs_tarball ($(du -m "$rootfs_tarball" | cut -f1) MB)"
}

if ! docker image inspect "$HOST_BASE_TAG" >/dev/null 2>&1; then
  if [[ -f "$rootfs_tarball" ]]; then
    log "using the cached root filesystem $rootfs_tarball"
  else
    build_rootfs_tarball
  fi
  need_cmd zstd "apt-get install zstd"
  log "importing the root filesystem as $HOST_BASE_TAG"
  run "the cached tarball may be damaged: delete $rootfs_tarball and rerun this step" -- bash -o pipefail -c \
    "zstd -q -dc '$rootfs_tarball' | docker import --message 'debootstrap $DEBOOTSTRAP_SUITE, alluxio-mesos rootfs $HOST_ROOTFS_KEY' - '$HOST_BASE_TAG'"
fi

log "building $HOST_IMAGE_TAG from $HOST_BASE_TAG"
# The legacy builder resolves FROM against the local image store only, and --pull=false makes
# sure nothing is ever fetched from a registry.
run "see the docker build output above; the recipe is in sandbox/hosts/image/" -- \
  env DOCKER_BUILDKIT=0 docker build --pull=false --build-arg "BASE=$HOST_BASE_TAG" \
    --label "org.alluxio-mesos.recipe=$HOST_IMAGE_KEY" --label "org.alluxio-mesos.rootfs=$HOST_ROOTFS_KEY" \
    -t "$HOST_IMAGE_TAG" "$HOST_RECIPE_DIR"
log "built $HOST_IMAGE_TAG ($(docker image inspect -f '{{.Size}}' "$HOST_IMAGE_TAG" | awk '{printf "%.0f MB", $1/1e6}'))"

# Images of older recipes are never used again; docker refuses to remove one a container still uses.
for old in $(docker images --format '{{.Repository}}:{{.Tag}}' alluxio-mesos-host) \
           $(docker images --format '{{.Repository}}:{{.Tag}}' alluxio-mesos-host-base); do
  [[ "$old" == "$HOST_IMAGE_TAG" || "$old" == "$HOST_BASE_TAG" ]] && continue
  if docker rmi "$old" >/dev/null 2>&1; then
    log "removed the outdated image $old"
  else
    log "kept the outdated image $old: a container still uses it"
  fi
done
