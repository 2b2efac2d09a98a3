#!/usr/bin/env bash
# A real Alluxio server distribution, assembled from Maven Central artifacts (no official tarball
# can be downloaded here) and cached as a deterministic tarball:
#   $ALLUXIO_MESOS_CACHE/alluxio/$ALLUXIO_VERSION/alluxio-$ALLUXIO_VERSION-bin.tar.gz (+ .sha256)
# Maven resolves the master, worker, shell and local under-storage with all their dependencies
# (verifying Maven Central's checksums, -C) into a local repository under the cache; the recipe
# (pom, conf files, layout) lives in setup/alluxio/. Warm runs only re-check the sha256.
. "$(dirname "$0")/../lib.sh"

recipe_dir="$ALLUXIO_MESOS_REPO/setup/alluxio"
name="alluxio-$ALLUXIO_VERSION"
out_dir="$ALLUXIO_MESOS_CACHE/alluxio/$ALLUXIO_VERSION"
tarball_name="$name-bin.tar.gz"
tarball="$out_dir/$tarball_name"
sha_file="$tarball.sha256"
# Fingerprint of the recipe the cached tarball was built from: editing the pom or a conf file
# must rebuild it even though the Alluxio version is unchanged.
recipe_stamp="$tarball.recipe"
m2="$ALLUXIO_MESOS_CACHE/m2"
maven_central="https://repo.maven.apache.org/maven2/"
# Every entry of the tarball gets this mtime (2023-11-14 22:13:20 UTC), so rebuilding from the
# same inputs gives the same bytes and the same sha256.
tarball_mtime=1700000000

recipe_fingerprint() {
  local f
  {
    printf 'alluxio %s\n' "$ALLUXIO_VERSION"
    while IFS= read -r f; do
      printf '%s %s\n' "${f#"$ALLUXIO_MESOS_REPO"/}" "$(sha256sum <"$f" | cut -d' ' -f1)"
    done < <({ find "$recipe_dir" -type f; printf '%s\n' "$ALLUXIO_MESOS_REPO/setup/steps/alluxio.sh"; } | LC_ALL=C sort)
  } | sha256sum | cut -d' ' -f1
}

# cached_tarball_ok: true when the cached tarball is complete, intact and built by this recipe.
cached_tarball_ok() {
  [[ -f "$tarball" && -f "$sha_file" && -f "$recipe_stamp" ]] || return 1
  if [[ "$(cat "$recipe_stamp")" != "$fingerprint" ]]; then
    log "the recipe in setup/alluxio changed since $tarball_name was built; rebuilding"
    return 1
  fi
  if ! (cd "$out_dir" && sha256sum --check --status "$(basename "$sha_file")"); then
    log "$tarball_name does not match its .sha256 (interrupted or corrupted); rebuilding"
    return 1
  fi
}

fingerprint="$(recipe_fingerprint)"
if cached_tarball_ok; then
  log "cached: $tarball ($(du -h "$tarball" | cut -f1), sha256 $(cut -d' ' -f1 "$sha_file"))"
  exit 0
fi

need_cmd mvn "install Maven 3.6 or newer (Debian: apt-get install maven)"
need_cmd java "install a JDK 11 or 17 (Debian: apt-get install openjdk-17-jdk-headless)"
need_cmd tar "install GNU tar (Debian: apt-get install tar)"
need_cmd gzip "install gzip (Debian: apt-get install gzip)"
# The repository root is not browsable through every proxy; a real metadata file always is.
registry_reachable "${maven_central}org/alluxio/alluxio-parent/maven-metadata.xml" "Maven Central"

mkdir -p "$out_dir" "$m2"
# One build at a time per cache (setups may run concurrently on a shared machine); whoever waited
# finds the other's result and stops there.
need_cmd flock "install util-linux (Debian: apt-get install util-linux)"
exec 9>"$out_dir/.lock"
if ! flock -n 9; then
  log "another setup is building $tarball_name; waiting for it"
  flock 9
  if cached_tarball_ok; then
    log "cached: $tarball (built by the other setup)"
    exit 0
  fi
fi
# Holding the lock, any build directory left here was abandoned by a killed run.
rm -rf "$out_dir"/.build.*
# Build next to the destination (same filesystem) so the final mv is atomic.
work="$(mktemp -d "$out_dir/.build.XXXXXX")"
progress_pid=""
cleanup() {
  [[ -n "$progress_pid" ]] && kill "$progress_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
# Without these, bash dies on Ctrl-C/SIGTERM without running the EXIT trap.
trap 'exit 130' INT
trap 'exit 143' TERM

sed "s/@ALLUXIO_VERSION@/$ALLUXIO_VERSION/g" "$recipe_dir/pom.xml" >"$work/pom.xml"
log "resolving Alluxio $ALLUXIO_VERSION (master, worker, shell, underfs-local) from Maven Central into $m2"
# Maven runs quietly (its per-file output would drown the setup log); report progress instead.
(
  while sleep 15; do
    log "... $(find "$m2" -name '*.pom' 2>/dev/null | wc -l) poms and $(find "$m2" -name '*.jar' 2>/dev/null | wc -l) jars in the local Maven repository so far"
  done
) &
progress_pid=$!
run "check that Maven Central ($maven_central) is reachable from this machine. A checksum error means a corrupted download: delete the named file under $m2 and rerun" -- \
  mvn -B -q -C -Dstyle.color=never -f "$work/pom.xml" -Dmaven.repo.local="$m2" \
  -Dserver.classpath.file="$work/server.classpath" -Dufs.classpath.file="$work/ufs.classpath" validate
kill "$progress_pid" 2>/dev/null || true
wait "$progress_pid" 2>/dev/null || true
progress_pid=""

stage="$work/stage/$name"
mkdir -p "$stage/assembly/server" "$stage/lib" "$stage/conf" "$stage/logs"

# coordinates JAR: group:artifact:version[:classifier] of a jar inside the local repository.
coordinates() {
  local rel="${1#"$m2"/}"
  local version_dir artifact_dir version artifact group file classifier
  version_dir="$(dirname "$rel")"
  artifact_dir="$(dirname "$version_dir")"
  version="$(basename "$version_dir")"
  artifact="$(basename "$artifact_dir")"
  group="$(dirname "$artifact_dir" | tr / .)"
  file="$(basename "$rel" .jar)"
  classifier="${file#"$artifact-$version"}"
  printf '%s:%s:%s%s' "$group" "$artifact" "$version" "${classifier/#-/:}"
}

# stage_jar JAR DEST_DIR: copy one resolved jar and record where it came from.
stage_jar() {
  local jar="$1" dest="$2" base
  base="$(basename "$jar")"
  [[ "$jar" == "$m2"/* && -f "$jar" ]] || fail "Maven reported $jar, which is not a jar in $m2" \
    "delete $work/pom.xml's output and rerun; if it persists, the pom in setup/alluxio is wrong"
  [[ ! -e "$dest/$base" ]] || fail "two artifacts resolve to the same file name $base" \
    "the dependency set changed; give the jars distinct names in setup/steps/alluxio.sh (e.g. prefix the groupId)"
  cp "$jar" "$dest/$base"
  printf '%s %s %s\n' "$(coordinates "$jar")" "$(sha256sum <"$jar" | cut -d' ' -f1)" \
    "${dest#"$stage"/}/$base" >>"$stage/assembly/ARTIFACTS"
}

log "laying out $name"
: >"$stage/assembly/server.classpath"
: >"$stage/assembly/ARTIFACTS"
jar_count=0
while IFS= read -r jar; do
  [[ -n "$jar" ]] || continue
  stage_jar "$jar" "$stage/assembly/server"
  basename "$jar" >>"$stage/assembly/server.classpath"
  jar_count=$((jar_count + 1))
done < <(tr ':' '\n' <"$work/server.classpath"; echo) # Maven writes no final newline
((jar_count > 0)) || fail "Maven resolved no server jars" "see setup/alluxio/pom.xml"
while IFS= read -r jar; do
  [[ -n "$jar" ]] && stage_jar "$jar" "$stage/lib"
done < <(tr ':' '\n' <"$work/ufs.classpath"; echo)
[[ -f "$stage/lib/alluxio-underfs-local-$ALLUXIO_VERSION.jar" ]] \
  || fail "alluxio-underfs-local-$ALLUXIO_VERSION.jar was not resolved" "see setup/alluxio/pom.xml"

cp "$recipe_dir/conf/"* "$stage/conf/"
cp "$recipe_dir/LICENSE" "$recipe_dir/README" "$stage/"
printf '%s\n' "$ALLUXIO_VERSION" >"$stage/VERSION"

log "packing $tarball_name ($jar_count server jars, $(du -sh "$stage" | cut -f1) unpacked)"
# Deterministic: entries sorted by name, one fixed mtime, owner 0:0 by number, normalised modes,
# GNU format (no pax headers carrying atimes), and gzip without a name or timestamp (-n).
(
  cd "$work/stage"
  LC_ALL=C tar --sort=name --format=gnu --mtime="@$tarball_mtime" \
    --owner=0 --group=0 --numeric-owner --mode='u=rwX,go=rX' -cf - "$name"
) | gzip -n -6 >"$work/$tarball_name" \
  || fail "packing the tarball failed" "check free space in $out_dir" "tar | gzip > $work/$tarball_name"
tar -tzf "$work/$tarball_name" "$name/assembly/server.classpath" >/dev/null \
  || fail "the new tarball cannot be read back" "check free space in $out_dir and rerun" "tar -tzf $work/$tarball_name"
(cd "$work" && sha256sum "$tarball_name" >"$tarball_name.sha256")
printf '%s\n' "$fingerprint" >"$work/$tarball_name.recipe"

# Tarball first, then its checksum, then the recipe stamp: an interruption in between leaves a
# mismatch that the next run detects and rebuilds.
mv -f "$work/$tarball_name" "$tarball"
mv -f "$work/$tarball_name.sha256" "$sha_file"
mv -f "$work/$tarball_name.recipe" "$recipe_stamp"
log "built $tarball ($(du -h "$tarball" | cut -f1), sha256 $(cut -d' ' -f1 "$sha_file"))"
