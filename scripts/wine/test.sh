#!/usr/bin/env bash
# test.sh runs the Windows (amd64) build of Go tests under Wine, after
# setup.sh has made sure Wine is ready, prints every test that ran and
# ends with the line
#
#   wine: N passed, N failed, N skipped
#
# counted from `go test -v` (subtests included). It exits non-zero if any
# test or package failed; a package that fails without a failing test (a
# build error, a crash) counts as one failure.
#
#   scripts/wine/test.sh [go test flags and packages]
#
# The default packages are the client library's and the broker's (their
# tests over named pipes), acl (the policy, and the agent token file created and
# checked with Windows ACLs), the transport (its conformance suite on named
# pipes) and integration/crossos (broker, publisher and subscribers as
# separate processes over a pipe).
#
# It stops the wineserver when done, so nothing outlives the run; set
# EVENTBUS_WINE_KEEP=1 to leave it up for more runs (or for running
# `GOOS=windows go test -exec wine ...` by hand).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export WINEDEBUG=${WINEDEBUG:--all}
export WINEPREFIX=${WINEPREFIX:-$HOME/.wine}

log=$(mktemp)
cleanup() {
	rm -f "$log"
	if [ "${EVENTBUS_WINE_KEEP:-}" != 1 ]; then
		wineserver -k </dev/null >/dev/null 2>&1 || true
	fi
}
trap cleanup EXIT

start=$(date +%s)
"$root/scripts/wine/setup.sh"
echo "wine: $(wine --version 2>/dev/null), prefix $WINEPREFIX, ready in $(($(date +%s) - start))s"

[ $# -gt 0 ] || set -- . ./broker/ ./acl/ ./transport/... ./integration/crossos/
cd "$root"

echo "GOOS=windows GOARCH=amd64 go test -exec wine -count=1 -v $*"
status=0
GOOS=windows GOARCH=amd64 go test -exec wine -count=1 -v "$@" >"$log" 2>&1 || status=$?

# What ran: every test and subtest with its result, and each package.
grep -E '^ *--- (PASS|FAIL|SKIP)|^(ok|FAIL|---) |^FAIL$' "$log" || true
if [ "$status" != 0 ]; then
	echo "--- full output of the failed run:"
	cat "$log"
fi
passed=$(grep -cE '^ *--- PASS' "$log" || true)
failed=$(grep -cE '^ *--- FAIL' "$log" || true)
skipped=$(grep -cE '^ *--- SKIP' "$log" || true)
if [ "$status" != 0 ] && [ "$failed" = 0 ]; then
	echo "wine: go test failed (exit $status) without a failing test: a build error or a crash"
	failed=1
fi
echo "wine: took $(($(date +%s) - start))s in all"
echo "wine: $passed passed, $failed failed, $skipped skipped"
exit "$status"
