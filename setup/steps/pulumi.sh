#!/usr/bin/env bash
# The real Pulumi engine at the version of the `pulumi` SDK pin, built from the Go module proxy:
# the CLI, the Python language host (+ its exec script) and the dynamic-provider plugin script.
# Pulumi publishes no binaries we can reach from here, only its Go modules, so we compile them.
. "$(dirname "$0")/../lib.sh"

version="v$PULUMI_VERSION"
bin_dir="$ALLUXIO_MESOS_PULUMI_BIN"
version_dir="$(dirname "$bin_dir")"
binaries=(pulumi pulumi-language-python pulumi-language-python-exec pulumi-resource-pulumi-python)
sdk_module=github.com/pulumi/pulumi/sdk/v3
pkg_module=github.com/pulumi/pulumi/pkg/v3
langhost_module=github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3
version_symbol=github.com/pulumi/pulumi/sdk/v3/go/common/version.Version

[[ "$PULUMI_VERSION" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || fail \
  "setup/env.sh derived PULUMI_VERSION='$PULUMI_VERSION' from pyproject.toml; expected X.Y.Z" \
  "pin the SDK exactly in pyproject.toml's dependencies, e.g. \"pulumi==3.163.0\""

# The engine and the SDK talk over gRPC and must be the same release; a mismatch shows up much later
# as obscure protocol errors, so refuse it here.
check_sdk_version() {
  local py="$ALLUXIO_MESOS_VENV/bin/python" sdk
  [[ -x "$py" ]] || fail "there is no virtualenv at $ALLUXIO_MESOS_VENV" \
    "run setup/bootstrap.sh venv first"
  sdk="$("$py" -c 'import importlib.metadata as m; print(m.version("pulumi"))' 2>/dev/null)" \
    || fail "the pulumi SDK is not installed in $ALLUXIO_MESOS_VENV" "run setup/bootstrap.sh venv" \
            "$py -c 'import importlib.metadata as m; print(m.version(\"pulumi\"))'"
  [[ "$sdk" == "$PULUMI_VERSION" ]] || fail \
    "the virtualenv has the pulumi SDK $sdk but pyproject.toml pins pulumi==$PULUMI_VERSION" \
    "run setup/bootstrap.sh venv to reinstall the pinned dependencies"
}

engine_is_installed() {
  local b
  for b in "${binaries[@]}"; do [[ -x "$bin_dir/$b" ]] || return 1; done
  [[ "$("$bin_dir/pulumi" version 2>/dev/null)" == "$version" ]]
}

check_sdk_version
if engine_is_installed; then
  log "Pulumi engine $version already built in $bin_dir"
  exit 0
fi

# --- Go toolchain and module proxy ------------------------------------------------------------
need_cmd go "install Go 1.24 or newer (the upstream tarball from go.dev, or golang-go from bookworm-backports) and put it on PATH"
need_cmd curl "run setup/bootstrap.sh system"
need_cmd flock "install util-linux (Debian: apt-get install util-linux)"

# A dedicated Go workspace in the cache: fresh clones and reruns reuse the downloads and the build
# cache, and nothing lands in the user's own ~/go.
export GOPATH="$ALLUXIO_MESOS_CACHE/go/path"
export GOMODCACHE="$ALLUXIO_MESOS_CACHE/go/mod"
export GOCACHE="$ALLUXIO_MESOS_CACHE/go/build"
export GOFLAGS="-mod=mod -buildvcs=false"
export CGO_ENABLED=0
# A newer toolchain would be a download from outside the module proxy; fail clearly instead.
export GOTOOLCHAIN=local
# Only the proxy is reachable: a "direct" fallback would try git over the internet and bury the
# real cause under a git error, so keep the first proxy of the configured list only.
goproxy="$(go env GOPROXY)"
goproxy="${goproxy%%[,|]*}"
goproxy="${goproxy%/}"
[[ "$goproxy" == http* ]] || fail "GOPROXY is '$(go env GOPROXY)'; this build needs a Go module proxy" \
  "unset GOPROXY (the default is https://proxy.golang.org) or point it at a reachable module proxy"
export GOPROXY="$goproxy"
registry_reachable "$GOPROXY/$pkg_module/@v/list" "Go module proxy"

mkdir -p "$version_dir" "$GOPATH" "$GOMODCACHE" "$GOCACHE"
# Two setups at once (two terminals, make up + make test) would race on the same staging names.
exec 9>"$version_dir/.build.lock"
if ! flock -n 9; then
  log "another setup is building Pulumi $version; waiting for it"
  flock 9
fi
if engine_is_installed; then
  log "Pulumi engine $version was built by the other setup"
  exit 0
fi

# Leftovers of a build that was killed outright (the lock says none is running now).
rm -rf "$version_dir"/bin.staging.*
work="$(mktemp -d "${TMPDIR:-/tmp}/alluxio-mesos-pulumi.XXXXXX")"
staging="$(mktemp -d "$version_dir/bin.staging.XXXXXX")"
chmod 0755 "$staging"
build_pid=""
cleanup() {
  if [[ -n "$build_pid" ]]; then
    kill "$build_pid" 2>/dev/null || true
    wait "$build_pid" 2>/dev/null || true
  fi
  rm -rf "$work" "$staging" "$staging.old"
}
trap cleanup EXIT
# Turn signals into a normal exit so the EXIT trap cleans up after Ctrl-C too.
trap 'log "interrupted; removing the partial build"; exit 130' INT TERM HUP

# proxy_get MODULE FILE OUT: fetch one @v file from the proxy; a missing version is named plainly.
proxy_get() {
  local module="$1" file="$2" out="$3" url code
  # The proxy protocol spells upper-case letters as '!' + lower case.
  url="$GOPROXY/$(sed 's/[A-Z]/!\L&/g' <<<"$module")/@v/$file"
  code="$(curl -sS -m 60 -o "$out" -w '%{http_code}' "$url" 2>"$out.err")" || fail \
    "could not fetch $url: $(cat "$out.err")" "check this machine's access to the Go module proxy" "curl $url"
  case "$code" in
    200) ;;
    403 | 404 | 410) fail "the Go module proxy does not have $module at ${file%.*} ($code: $(head -c 200 "$out"))" \
      "use a pulumi SDK version whose engine is on the proxy: change the pulumi== pin in pyproject.toml, then rerun" \
      "curl $url" ;;
    *) fail "the Go module proxy answered HTTP $code for $url" "retry; if it persists, check the proxy" "curl $url" ;;
  esac
}

# json_field FILE KEY.SUBKEY...: one field of a JSON document, empty when absent.
json_field() {
  python3 -c '
import json, sys
value = json.load(open(sys.argv[1]))
for key in sys.argv[2].split("."):
    value = value.get(key, {}) if isinstance(value, dict) else {}
print(value if isinstance(value, str) else "")' "$1" "$2"
}

# --- What to build ------------------------------------------------------------------------------
log "resolving Pulumi $version on $GOPROXY"
proxy_get "$pkg_module" "$version.info" "$work/pkg.info"
proxy_get "$pkg_module" "$version.mod" "$work/pkg.mod"
commit="$(json_field "$work/pkg.info" Origin.Hash)"
commit_time="$(json_field "$work/pkg.info" Time)"
[[ -n "$commit_time" ]] || fail "the proxy's $pkg_module@$version.info has no Time" \
  "retry; if it persists, check the Go module proxy" "curl $GOPROXY/$pkg_module/@v/$version.info"
pinned_langhost=""
for entry in "${PULUMI_LANGHOST_PSEUDO_VERSIONS[@]}"; do
  [[ "${entry%%=*}" == "$PULUMI_VERSION" ]] && pinned_langhost="${entry#*=}"
done
# The language host module has no tags of its own: Go addresses it by a pseudo-version of the
# commit that pkg's tag points to (the same commit the release's language host was built from).
if [[ "$commit" =~ ^[0-9a-f]{40}$ ]]; then
  langhost_version="v3.0.0-$(date -u -d "$commit_time" +%Y%m%d%H%M%S)-${commit:0:12}"
  [[ -z "$pinned_langhost" || "$pinned_langhost" == "$langhost_version" ]] || fail \
    "the proxy says pkg $version is commit ${commit:0:12} ($langhost_version), but setup/versions.sh pins $pinned_langhost" \
    "correct PULUMI_LANGHOST_PSEUDO_VERSIONS in setup/versions.sh" "curl $GOPROXY/$pkg_module/@v/$version.info"
elif [[ -n "$pinned_langhost" ]]; then
  langhost_version="$pinned_langhost"
  log "the proxy reports no commit for $pkg_module@$version; using the pinned language host $langhost_version"
else
  fail "the proxy's $pkg_module@$version.info has no Origin.Hash, so the language host's commit is unknown" \
    "add \"$PULUMI_VERSION=v3.0.0-<commit time>-<12 hex of the commit>\" of the pkg/$version tag to PULUMI_LANGHOST_PSEUDO_VERSIONS in setup/versions.sh" \
    "curl $GOPROXY/$pkg_module/@v/$version.info"
fi
# Whichever way it was found, the language host must be the commit of pkg's tag: same commit time.
proxy_get "$langhost_module" "$langhost_version.info" "$work/langhost.info"
langhost_time="$(json_field "$work/langhost.info" Time)"
[[ "$(date -u -d "$langhost_time" +%s)" == "$(date -u -d "$commit_time" +%s)" ]] || fail \
  "$langhost_module@$langhost_version is from $langhost_time, but $pkg_module@$version is from $commit_time" \
  "correct PULUMI_LANGHOST_PSEUDO_VERSIONS in setup/versions.sh to the commit of the pkg/$version tag" \
  "curl $GOPROXY/$langhost_module/@v/$langhost_version.info"
proxy_get "$langhost_module" "$langhost_version.mod" "$work/langhost.mod"
log "CLI from $pkg_module@$version, language host from $langhost_module@$langhost_version"

# sum.golang.org is only reachable through the proxy, and the proxy's copy of it has no entry for
# this untagged pseudo-version (404), which makes `go build` refuse the module. Exempt exactly
# this one module from the checksum database when, and only when, the database lacks it; its zip
# then comes from the proxy over TLS, and everything else stays verified.
sumdb_lookup="$GOPROXY/sumdb/sum.golang.org/lookup/$langhost_module@$langhost_version"
sumdb_code="$(curl -sS -m 60 -o /dev/null -w '%{http_code}' "$sumdb_lookup" 2>/dev/null || true)"
if [[ "$sumdb_code" == 404 || "$sumdb_code" == 410 ]]; then
  log "the checksum database has no entry for $langhost_module@$langhost_version;" \
    "trusting the module proxy's copy of that module only"
  export GONOSUMDB="${GONOSUMDB:+$GONOSUMDB,}$langhost_module"
fi

# The Go release each module declares; GOTOOLCHAIN=local turns "too old" into a clear error here.
go_have="$(go env GOVERSION)"
go_have="${go_have#go}"
for mod in pkg langhost; do
  go_need="$(go mod edit -json "$work/$mod.mod" | python3 -c 'import json, sys; print(json.load(sys.stdin)["Go"])')"
  if [[ "$(printf '%s\n%s\n' "$go_need" "$go_have" | sort -V | head -n1)" != "$go_need" ]]; then
    fail "the Pulumi $version sources need Go $go_need; this machine has Go $go_have" \
      "install Go $go_need or newer and put it first on PATH" "go version"
  fi
done

# make_wrapper DIR UPSTREAM_MOD REQUIREMENT...: a throwaway main module standing in for an upstream
# module whose go.mod we cannot use (its replaces point into the monorepo). It repeats the upstream
# go directive (it sets the binary's GODEBUG defaults) and the upstream replaces that are not local
# paths; the local ones point at code of the same commit, which the requirements already name.
make_wrapper() {
  local dir="$1" upstream="$2"
  shift 2
  mkdir -p "$dir"
  local edits
  mapfile -t edits < <(go mod edit -json "$upstream" | python3 -c '
import json, sys
mod = json.load(sys.stdin)
print("-go=" + mod["Go"])
for r in mod.get("Replace") or []:
    new = r["New"]
    if "Version" not in new:
        continue  # a local path inside the pulumi repository
    old = r["Old"]["Path"] + ("@" + r["Old"]["Version"] if r["Old"].get("Version") else "")
    print("-replace=" + old + "=" + new["Path"] + "@" + new["Version"])
')
  [[ "${edits[0]:-}" == -go=* ]] || fail "could not read the go directive and replaces of $upstream" \
    "check that the proxy served a valid go.mod: go mod edit -json $upstream" "go mod edit -json $upstream"
  local req output
  for req in "$@"; do edits+=("-require=$req"); done
  output="$(cd "$dir" && go mod init alluxio-mesos.local/pulumi-build 2>&1 && go mod edit "${edits[@]}" 2>&1)" \
    || fail "could not create the wrapper module in $dir: $output" \
      "check that the Go toolchain works (go version), then rerun" "go mod edit ${edits[*]}"
}

# build_with_progress LABEL DIR OUT PACKAGE: go build, printing a heartbeat while it runs, because a
# cold build takes many minutes on a small machine and silence looks like a hang.
build_with_progress() {
  local label="$1" dir="$2" out="$3" package="$4" logfile="$work/$1.log" start pid rc ticks=0
  start=$(date +%s)
  # nice: this machine's cores are shared; the build may be slow but must not starve others.
  (cd "$dir" && exec nice -n 10 go build -v -trimpath -ldflags "-X $version_symbol=$version" \
    -o "$out" "$package") >"$logfile" 2>&1 &
  pid=$!
  build_pid=$pid
  while kill -0 "$pid" 2>/dev/null; do
    sleep 5
    ticks=$((ticks + 1))
    if ((ticks % 6 == 0)) && kill -0 "$pid" 2>/dev/null; then
      log "$label: $(( $(date +%s) - start ))s, $(grep -c '^go: downloading' "$logfile" || true) modules" \
        "downloaded, $(grep -vc '^go: ' "$logfile" || true) packages compiled"
    fi
  done
  rc=0
  wait "$pid" || rc=$?
  build_pid=""
  if ((rc != 0)); then
    fail "go build exited with status $rc; last output:
$(tail -n 25 "$logfile" | sed 's/^/    | /')" \
      "if a module download failed, check the Go module proxy and rerun; otherwise report the error" \
      "cd $dir && go build -o $out $package"
  fi
  log "$label built in $(( $(date +%s) - start ))s"
}

make_wrapper "$work/cli" "$work/pkg.mod" "$pkg_module@$version" "$sdk_module@$version"
make_wrapper "$work/langhost" "$work/langhost.mod" \
  "$langhost_module@$langhost_version" "$pkg_module@$version" "$sdk_module@$version"

build_with_progress pulumi "$work/cli" "$staging/pulumi" "$pkg_module/cmd/pulumi"
build_with_progress pulumi-language-python "$work/langhost" "$staging/pulumi-language-python" "$langhost_module"

# The two Python entry points ship as scripts inside the SDK module, not as Go programs.
sdk_dir="$(cd "$work/cli" && go mod download -json "$sdk_module@$version" \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')" \
  || fail "could not download $sdk_module@$version" "check the Go module proxy" "go mod download -json $sdk_module@$version"
for script in python/cmd/pulumi-language-python-exec python/dist/pulumi-resource-pulumi-python; do
  [[ -f "$sdk_dir/$script" ]] || fail "$sdk_module@$version has no $script" \
    "this Pulumi release moved its Python scripts; update setup/steps/pulumi.sh to the new location"
  install -m 0755 "$sdk_dir/$script" "$staging/"
done

built="$("$staging/pulumi" version 2>&1)" || true
[[ "$built" == "$version" ]] || fail "the freshly built pulumi reports version '$built', expected $version" \
  "report this: the version link flag $version_symbol no longer matches the SDK" "$staging/pulumi version"

# Swap the finished directory in with renames, so an interrupted build never leaves a bin/ that
# looks complete.
if [[ -e "$bin_dir" ]]; then
  mv "$bin_dir" "$staging.old"
fi
mv "$staging" "$bin_dir"
rm -rf "$staging.old"
log "Pulumi engine $version ready in $bin_dir"
