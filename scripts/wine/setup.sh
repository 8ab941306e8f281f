#!/usr/bin/env bash
# setup.sh makes this Debian machine ready to run GOOS=windows Go tests
# under Wine (see test.sh). Safe to run again: every step is skipped when
# already done.
#
#  1. installs Wine (Debian's wine64 and wine) if `wine` is missing;
#  2. starts a persistent wineserver for the prefix ($WINEPREFIX, default
#     ~/.wine), with its output on /dev/null: a wineserver started by the
#     first test binary would inherit `go test`'s pipes and hang it;
#  3. creates the prefix (wineboot -i);
#  4. writes a stand-in bcryptprimitives.dll into the prefix's system32 if
#     it has none (Wine 8 has none; Go 1.22+ binaries need its ProcessPrng;
#     see bcryptprimitives.go).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export WINEDEBUG=${WINEDEBUG:--all}
export WINEPREFIX=${WINEPREFIX:-$HOME/.wine}

if ! command -v wine >/dev/null 2>&1; then
	sudo=
	[ "$(id -u)" = 0 ] || sudo=sudo
	echo "setup.sh: installing wine" >&2
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends wine64 wine >/dev/null
fi

mkdir -p "$WINEPREFIX"
# -p: stay up between test binaries instead of exiting 3 s after the last.
# A second one exits at once if a server already runs for this prefix.
wineserver -p </dev/null >/dev/null 2>&1 || true

if [ ! -f "$WINEPREFIX/drive_c/windows/system32/kernel32.dll" ]; then
	echo "setup.sh: creating wine prefix $WINEPREFIX" >&2
	wineboot -i </dev/null >/dev/null 2>&1
fi

dll="$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll"
if [ ! -f "$dll" ]; then
	echo "setup.sh: writing stand-in $dll" >&2
	go run "$here/bcryptprimitives.go" "$dll"
fi

wine wineboot </dev/null >/dev/null 2>&1
