#!/usr/bin/env bash
# setup.sh makes this Debian machine ready to run GOOS=windows Go tests
# under Wine (see test.sh). Safe to run again: every step is skipped when
# already done.
#
#  1. installs Wine (Debian's wine64 and wine) if `wine` is missing, after
#     an `apt-get update`; if that fails it says so and exits non-zero, so
#     CI fails rather than skip the Windows tests;
#  2. starts a persistent wineserver for the prefix ($WINEPREFIX, default
#     ~/.wine), with its output on /dev/null: a wineserver started by the
#     first test binary would inherit `go test`'s pipes and hang it;
#  3. creates the prefix (wineboot -i);
#  4. writes a stand-in bcryptprimitives.dll into the prefix's system32 if
#     it has none (Wine 8 has none; Go 1.22+ binaries need its ProcessPrng;
#     see bcryptprimitives.go);
#  5. checks that a Windows binary runs, so a broken prefix fails here.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export WINEDEBUG=${WINEDEBUG:--all}
export WINEPREFIX=${WINEPREFIX:-$HOME/.wine}

fail() {
	echo "setup.sh: $*" >&2
	exit 1
}

if ! command -v wine >/dev/null 2>&1 || ! command -v wineserver >/dev/null 2>&1; then
	sudo=
	if [ "$(id -u)" != 0 ]; then
		command -v sudo >/dev/null 2>&1 || fail "wine is missing and this user cannot install it (not root, no sudo)"
		sudo=sudo
	fi
	command -v apt-get >/dev/null 2>&1 || fail "wine is missing and there is no apt-get to install it (Debian or Ubuntu expected)"
	echo "setup.sh: installing wine (apt-get update, apt-get install wine64 wine)" >&2
	$sudo apt-get update -qq || fail "apt-get update failed: cannot install wine"
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends wine64 wine >/dev/null ||
		fail "apt-get install wine64 wine failed"
	command -v wine >/dev/null 2>&1 || fail "wine is still missing after apt-get install"
fi
command -v go >/dev/null 2>&1 || fail "go is not on PATH (needed to write bcryptprimitives.dll and to build the tests)"

mkdir -p "$WINEPREFIX"
# -p: stay up between test binaries instead of exiting 3 s after the last.
# A second one exits at once if a server already runs for this prefix.
wineserver -p </dev/null >/dev/null 2>&1 || true

if [ ! -f "$WINEPREFIX/drive_c/windows/system32/kernel32.dll" ]; then
	echo "setup.sh: creating wine prefix $WINEPREFIX" >&2
	wineboot -i </dev/null >/dev/null 2>&1 || fail "wineboot -i could not create the prefix $WINEPREFIX"
fi

dll="$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll"
if [ ! -f "$dll" ]; then
	echo "setup.sh: writing stand-in $dll" >&2
	go run "$here/bcryptprimitives.go" "$dll"
fi

wine wineboot </dev/null >/dev/null 2>&1
# cmd.exe ships with every prefix: if it cannot run, no test binary will.
out=$(wine cmd /c echo wine-ok </dev/null 2>/dev/null | tr -d '\r') || true
[ "$out" = wine-ok ] || fail "wine cannot run Windows programs in $WINEPREFIX (got \"$out\"); try removing the prefix"
