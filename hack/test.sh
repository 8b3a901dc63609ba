#!/usr/bin/env bash
# Runs every test of the module under the race detector (but pkg/quorum, below): first all
# packages but the end-to-end one in one `go test`, then the end-to-end package, whole or
# split into E2E_SHARDS shards run at the same time, each its own process with its own
# control plane. Each test runs exactly once: shards are built from `go test -list` and every
# listed test is given to one of them. Exits non-zero when any of them fails.
#
# The end-to-end tests wait for the other packages because on 2 cores they cannot share
# them: from a clean clone the image and plugin tests build their binaries cold for 10 to 13
# minutes, and an end-to-end test run beside that saw its health probes time out (a quorum
# monitor sample found 1 healthy of 4 voting members while every write went through).
# E2E_BESIDE=1 starts them together, for a machine with cores to spare.
#
#   E2E_SHARDS     how many end-to-end processes (default 1, the package whole; on a machine
#                  with more than two cores, more shards finish sooner)
#   TEST_TIMEOUT   go test -timeout (default 45m)
#   GO_TEST_FLAGS  more go test flags, for every process
#   E2E_LIST=1     print each shard's tests and run nothing
#
# pkg/quorum runs without the race detector, which can only see races between goroutines:
# the package and its tests start none (no `go` statement) and import only the standard
# library's pure packages, and its model checks take several times as long under -race (221 s
# against 28 s in two loaded runs). The day a `go` statement appears there, it runs under
# -race again by itself.
#
# hack/e2e-durations lists what each end-to-end test took in a measured run ("name seconds");
# the shards are balanced on it (longest first, each to the shard with least so far), and a
# test missing from it counts as 30 s.
set -euo pipefail
cd "$(dirname "$0")/.."

shards=${E2E_SHARDS:-1}
timeout=${TEST_TIMEOUT:-45m}
read -r -a extra <<<"${GO_TEST_FLAGS:-}"
e2e=./test/e2e/
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

pure=github.com/quorumguard/quorumguard/pkg/quorum
others=()
racefree=()
while IFS= read -r p; do
  if [ "$p" = "$pure" ] && ! grep -qE '(^|[[:space:];{])go[[:space:]]+[[:alnum:]_.]+(\(|[[:space:]]*func)' pkg/quorum/*.go; then
    racefree+=("$p")
  else
    others+=("$p")
  fi
done < <(go list ./... | grep -v '/test/e2e$')

tests=()
if [ "$shards" -gt 1 ] || [ -n "${E2E_LIST:-}" ]; then
  mapfile -t tests < <(go test -list '.*' "$e2e" | grep '^Test' | grep -v '^TestMain$')
  if [ "${#tests[@]}" -eq 0 ]; then
    echo "no end-to-end tests listed" >&2
    exit 1
  fi
fi

# shard i gets the tests of assign's line i, as one anchored -run pattern.
assign() {
  local n=$1
  shift
  awk -v n="$n" -v durations=hack/e2e-durations '
    FILENAME == durations { took[$1] = $2; next }
    { w = ($1 in took) ? took[$1] : 30; names[++m] = $1; weight[$1] = w }
    END {
      # longest first, ties by name, each to the lightest shard
      for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++)
        if (weight[names[j]] > weight[names[i]] || (weight[names[j]] == weight[names[i]] && names[j] < names[i])) {
          t = names[i]; names[i] = names[j]; names[j] = t
        }
      for (s = 0; s < n; s++) load[s] = 0
      for (i = 1; i <= m; i++) {
        best = 0
        for (s = 1; s < n; s++) if (load[s] < load[best]) best = s
        load[best] += weight[names[i]]
        list[best] = list[best] (list[best] == "" ? "" : "|") names[i]
      }
      for (s = 0; s < n; s++) print list[s]
    }' hack/e2e-durations <(printf '%s\n' "$@")
}

if [ -n "${E2E_LIST:-}" ]; then
  assign "$shards" "${tests[@]}" | awk '{ print "shard " NR ": " $0 }'
  exit 0
fi

pids=()
names=()
start() {
  local name=$1
  shift
  echo "started $name: $*" | cut -c1-200
  ("$@" >"$logs/$name" 2>&1; echo $? >"$logs/$name.rc") &
  pids+=($!)
  names+=("$name")
}

start packages go test -race -timeout "$timeout" "${extra[@]}" "${others[@]}"
if [ "${#racefree[@]}" -gt 0 ]; then
  start race-free go test -timeout "$timeout" "${extra[@]}" "${racefree[@]}"
fi
if [ -z "${E2E_BESIDE:-}" ]; then
  for pid in "${pids[@]}"; do
    wait "$pid" || true
  done
  echo "other packages done; starting the end-to-end tests"
fi
if [ "$shards" -le 1 ]; then
  start e2e go test -race -timeout "$timeout" "${extra[@]}" "$e2e"
else
  i=0
  while IFS= read -r pattern; do
    [ -n "$pattern" ] || continue
    i=$((i + 1))
    start "e2e-$i" go test -race -timeout "$timeout" "${extra[@]}" -run "^(${pattern})\$" "$e2e"
  done < <(assign "$shards" "${tests[@]}")
fi

failed=0
for k in "${!pids[@]}"; do
  wait "${pids[$k]}" || true
  name=${names[$k]}
  rc=$(cat "$logs/$name.rc" 2>/dev/null || echo 1)
  echo "=== $name (exit $rc)"
  cat "$logs/$name"
  [ "$rc" -eq 0 ] || failed=1
done
exit "$failed"
