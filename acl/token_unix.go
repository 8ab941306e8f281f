//go:build unix

package acl

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// checkOwner requires fi to belong to the effective uid (or, for a
// directory, root) and, for a file, to have no group or other permission
// bits; a directory must not be writable by group or others.
func checkOwner(fi fs.FileInfo, dir bool) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("cannot read its owner")
	}
	euid := uint32(os.Geteuid())
	perm := fi.Mode().Perm()
	switch {
	case st.Uid != euid && !(dir && st.Uid == 0):
		return fmt.Errorf("owned by uid %d, not by this process's uid %d", st.Uid, euid)
	case dir && perm&0o022 != 0:
		return fmt.Errorf("mode %#o lets group or others write", perm)
	case !dir && perm&0o077 != 0:
		return fmt.Errorf("mode %#o has group or other permission bits; want 0600", perm)
	}
	return nil
}
