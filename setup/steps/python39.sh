#!/usr/bin/env bash
# A real CPython 3.9, the oldest Python an agent may have, for the tests that run the executor
# bundle on it. An interpreter the machine already has wins ($ALLUXIO_MESOS_PYTHON39 set by hand,
# pyenv's 3.9.x, python3.9 on PATH). Otherwise Debian bullseye's python3.9 packages, and the
# libraries they need that this system lacks (libssl1.1, libffi7, libmpdec3 on bookworm), are
# unpacked into $ALLUXIO_MESOS_CACHE/python3.9 behind a `bin/python3.9` wrapper.
# Every file is checked: the bullseye index is verified with gpgv against Debian's archive
# keyring, Packages.xz against the signed Release file, each .deb against Packages' sha256.
# The choice is written to $ALLUXIO_MESOS_CACHE/python39.path; setup/env.sh exports it as
# ALLUXIO_MESOS_PYTHON39. ALLUXIO_MESOS_FORCE_DEBIAN_PY39=1 skips the search (to test the fallback).
. "$(dirname "$0")/../lib.sh"

path_file="$ALLUXIO_MESOS_CACHE/python39.path"
install_dir="$ALLUXIO_MESOS_CACHE/python3.9"
wrapper="$install_dir/bin/python3.9"
suite=bullseye
root_packages=(python3.9-minimal libpython3.9-minimal libpython3.9-stdlib python3.9)
# bullseye will move to archive.debian.org once its LTS ends; the second entry keeps this working.
read -r -a mirrors <<<"${ALLUXIO_MESOS_DEBIAN_MIRROR:-http://deb.debian.org/debian http://archive.debian.org/debian}"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg

# python39_ok PYTHON: print its version if it is a CPython 3.9 whose modules backed by system
# libraries load, run the way the tests run it (empty environment, isolated mode).
python39_ok() {
  [[ -n "$1" && -x "$1" ]] || return 1
  env -i "$1" -I -c '
import sys
assert sys.version_info[:2] == (3, 9), sys.version
import ctypes, decimal, hashlib, json, socket, ssl, zlib
ssl.create_default_context()
print(sys.version.split()[0])' 2>/dev/null
}

record_choice() {
  local python="$1" version="$2"
  printf '%s\n' "$python" >"$path_file.tmp"
  mv -f "$path_file.tmp" "$path_file"
  log "Python $version at $python (recorded in $path_file; setup/env.sh exports ALLUXIO_MESOS_PYTHON39)"
}

# Print the first working 3.9 this machine already has.
find_existing() {
  local recorded candidate candidates=()
  recorded="$(cat "$path_file" 2>/dev/null || true)"
  # env.sh exports the recorded choice; only a value set by hand counts as the user's choice.
  if [[ -n "${ALLUXIO_MESOS_PYTHON39:-}" && "$ALLUXIO_MESOS_PYTHON39" != "$recorded" ]]; then
    python39_ok "$ALLUXIO_MESOS_PYTHON39" >/dev/null \
      || log "ignoring ALLUXIO_MESOS_PYTHON39=$ALLUXIO_MESOS_PYTHON39: not a working Python 3.9"
    candidates+=("$ALLUXIO_MESOS_PYTHON39")
  fi
  for candidate in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.9*/bin/python3.9; do
    [[ -e "$candidate" ]] && candidates+=("$candidate")
  done
  candidate="$(command -v python3.9 || true)"
  [[ -n "$candidate" ]] && candidates+=("$candidate")
  for candidate in "${candidates[@]}"; do
    python39_ok "$candidate" >/dev/null && { printf '%s\n' "$candidate"; return 0; }
  done
  return 1
}

# Reads the gpgv-verified Release file and Packages.xz; checks Packages.xz against Release, then
# picks the root packages plus every library dependency (recursively) that dpkg does not have
# installed. Writes "name version filename sha256 size" lines to the plan file.
read -r -d '' resolver <<'PY' || true
import hashlib, lzma, subprocess, sys

release_path, packages_xz, index_name, plan_path, *roots = sys.argv[1:]

expected = None
in_sha256 = False
with open(release_path, encoding="utf-8") as release:
    for line in release:
        if not line.startswith(" "):
            in_sha256 = line.startswith("SHA256:")
        elif in_sha256:
            digest, size, name = line.split()
            if name == index_name:
                expected = (digest, int(size))
if expected is None:
    sys.exit("%s is not listed in the signed Release file" % index_name)
with open(packages_xz, "rb") as f:
    data = f.read()
actual = (hashlib.sha256(data).hexdigest(), len(data))
if actual != expected:
    sys.exit("%s has sha256/size %s, the signed Release file says %s" % (index_name, actual, expected))

packages = {}
for stanza in lzma.decompress(data).decode("utf-8").split("\n\n"):
    fields = {}
    for line in stanza.splitlines():
        if line and not line[0].isspace():
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    if "Package" in fields:
        packages.setdefault(fields["Package"], fields)

status = subprocess.run(
    ["dpkg-query", "-W", "-f", "${Package}\t${Status}\n"], capture_output=True, text=True, check=False
).stdout
installed = {line.split("\t")[0] for line in status.splitlines() if line.endswith("install ok installed")}


def dependency_groups(fields):
    for field in ("Pre-Depends", "Depends"):
        for group in fields.get(field, "").split(","):
            if group.strip():
                yield [alt.split()[0].split(":")[0] for alt in group.split("|")]


def is_library(name):
    # glibc always comes from this system: a second libc in the library path would break
    # everything the interpreter starts. Data and tool packages (tzdata, media-types, debconf)
    # are not needed to run the interpreter.
    return (name.startswith("lib") or name == "zlib1g") and name != "libc6"


# Bullseye's libraries are older than this system's, so an installed package of the same name
# (same soname) satisfies a bullseye dependency whatever its version.
chosen, seen, queue = [], set(), list(roots)
while queue:
    name = queue.pop(0)
    if name in seen:
        continue
    seen.add(name)
    if name not in packages:
        sys.exit("package %s is not in the index %s" % (name, index_name))
    chosen.append(packages[name])
    for alternatives in dependency_groups(packages[name]):
        if any(a in installed or a in seen for a in alternatives):
            continue
        pick = next((a for a in alternatives if a in packages and is_library(a)), None)
        if pick is not None:
            queue.append(pick)

with open(plan_path, "w", encoding="utf-8") as plan:
    for fields in chosen:
        plan.write("%s %s %s %s %s\n" % tuple(fields[k] for k in ("Package", "Version", "Filename", "SHA256", "Size")))
PY

install_from_debian() {
  need_cmd curl "apt-get install curl"
  need_cmd gpgv "apt-get install gpgv"
  need_cmd dpkg-deb "this fallback needs Debian's dpkg; or install a Python 3.9 (e.g. pyenv install 3.9) and rerun"
  need_cmd python3 "apt-get install python3"
  [[ -f "$keyring" ]] || apt_install debian-archive-keyring
  local arch work mirror="" candidate index plan_count total_kb
  arch="$(dpkg --print-architecture)"
  mkdir -p "$ALLUXIO_MESOS_CACHE"
  # Built beside its final place (same filesystem), moved in only once it works.
  work="$(mktemp -d "$ALLUXIO_MESOS_CACHE/.python3.9.XXXXXX")"
  # shellcheck disable=SC2064 # expand now: $work is local to this function
  trap "rm -rf '$work'" EXIT

  for candidate in "${mirrors[@]}"; do
    if curl -fsSL -m 60 -o "$work/InRelease" "$candidate/dists/$suite/InRelease" 2>/dev/null; then
      mirror="$candidate"
      break
    fi
  done
  [[ -n "$mirror" ]] || fail "no Debian archive answers with the $suite index (tried: ${mirrors[*]})" \
    "check access to deb.debian.org, set ALLUXIO_MESOS_DEBIAN_MIRROR to a mirror that carries $suite, or install a Python 3.9 (pyenv install 3.9) and rerun" \
    "curl -fsSL ${mirrors[0]}/dists/$suite/InRelease"
  run "the $suite index from $mirror is not signed by a key in $keyring: update debian-archive-keyring, or check what answers at $mirror" -- \
    gpgv --keyring "$keyring" --output "$work/Release" "$work/InRelease"

  index="main/binary-$arch/Packages.xz"
  log "fetching the $suite package index from $mirror"
  run "check access to $mirror" -- curl -fsSL -m 600 -o "$work/Packages.xz" "$mirror/dists/$suite/$index"
  printf '%s\n' "$resolver" >"$work/resolve.py"
  run "the $suite index does not match its signed Release file or lacks Python 3.9; see the cause above" -- \
    python3 "$work/resolve.py" "$work/Release" "$work/Packages.xz" "$index" "$work/plan.txt" "${root_packages[@]}"

  plan_count="$(wc -l <"$work/plan.txt")"
  total_kb="$(awk '{ s += $5 } END { print int(s / 1024) }' "$work/plan.txt")"
  log "fetching $plan_count packages from $suite (${total_kb} KiB): $(awk '{ printf "%s ", $1 }' "$work/plan.txt")"
  mkdir -p "$work/debs" "$work/python3.9/root" "$work/python3.9/bin"
  local name version filename sha256 deb actual
  while read -r name version filename sha256 _; do
    deb="$work/debs/${filename##*/}"
    run "check access to $mirror" -- curl -fsSL -m 600 -o "$deb" "$mirror/$filename"
    actual="$(sha256sum "$deb" | cut -d' ' -f1)"
    [[ "$actual" == "$sha256" ]] || fail "$filename has sha256 $actual, the signed $suite index says $sha256" \
      "the mirror served a different file than Debian published; use another mirror (ALLUXIO_MESOS_DEBIAN_MIRROR)" \
      "curl $mirror/$filename"
    run "the package $name $version is damaged; rerun to download it again" -- dpkg-deb -x "$deb" "$work/python3.9/root"
  done <"$work/plan.txt"
  cp "$work/plan.txt" "$work/python3.9/packages.txt"

  # Only the libraries fetched here are on the wrapper's library path: their sonames (libssl.so.1.1,
  # libffi.so.7...) are ones this system lacks, so programs the interpreter starts are unaffected.
  local lib_path="" dir
  for dir in "$work"/python3.9/root/{lib,usr/lib}/*-linux-gnu*; do
    [[ -d "$dir" ]] && lib_path+="${lib_path:+:}$install_dir/root${dir#"$work/python3.9/root"}"
  done
  local interpreter="$install_dir/root/usr/bin/python3.9"
  {
    printf '#!/bin/sh\n'
    printf "# Debian %s's CPython 3.9, unpacked by setup/steps/python39.sh; packages in ../packages.txt.\n" "$suite"
    printf '# It finds its standard library relative to its own location.\n'
    if [[ -n "$lib_path" ]]; then
      printf '# The library path adds only the %s libraries this system lacks.\n' "$suite"
      # shellcheck disable=SC2016 # expanded by the wrapper at run time, not here
      printf 'LD_LIBRARY_PATH="%s${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"\nexport LD_LIBRARY_PATH\n' "$lib_path"
    fi
    # shellcheck disable=SC2016
    printf 'exec "%s" "$@"\n' "$interpreter"
  } >"$work/python3.9/bin/python3.9"
  chmod 0755 "$work/python3.9/bin/python3.9"

  # Move the finished tree into place (a broken earlier one goes with the temp dir), then check
  # the wrapper where it will be used.
  [[ -e "$install_dir" ]] && mv "$install_dir" "$work/replaced"
  mv "$work/python3.9" "$install_dir"
  if ! python39_ok "$wrapper" >/dev/null; then
    mv "$install_dir" "$work/broken"
    fail "the unpacked $suite Python 3.9 does not start or lacks ssl/ctypes/decimal: $(env -i "$wrapper" -I -c 'import ssl, ctypes, decimal' 2>&1 | tail -n 3)" \
      "report this with the package list above; meanwhile install a Python 3.9 (pyenv install 3.9) and rerun" \
      "$wrapper -I -c 'import ssl, ctypes, decimal'"
  fi
}

mkdir -p "$ALLUXIO_MESOS_CACHE"
# Two setups at once would both unpack into the cache; the second waits and then finds it done.
exec 9>"$ALLUXIO_MESOS_CACHE/.python39.lock"
flock 9

if [[ "${ALLUXIO_MESOS_FORCE_DEBIAN_PY39:-0}" != 1 ]] && chosen="$(find_existing)"; then
  record_choice "$chosen" "$(python39_ok "$chosen")"
  exit 0
fi
if [[ "${ALLUXIO_MESOS_FORCE_DEBIAN_PY39:-0}" == 1 ]]; then
  log "ALLUXIO_MESOS_FORCE_DEBIAN_PY39=1: using Debian $suite's python3.9, not this machine's"
fi
if version="$(python39_ok "$wrapper")"; then
  log "cached: Debian $suite's Python $version in $install_dir"
else
  log "no Python 3.9 here: unpacking Debian $suite's python3.9 into $install_dir"
  install_from_debian
  version="$(python39_ok "$wrapper")"
fi
record_choice "$wrapper" "$version"
