//go:build unix

package acl

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// mkdirPrivate creates dir and any missing parents with mode 0700.
func mkdirPrivate(dir string) error { return os.MkdirAll(dir, tokenDirMode) }

// createPrivateTemp creates a new empty file of mode 0600 in dir.
func createPrivateTemp(dir string) (*os.File, error) {
	f, err := os.CreateTemp(dir, ".token-*") // mode 0600 before the umask
	if err != nil {
		return nil, err
	}
	if err := f.Chmod(tokenFileMode); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return f, nil
}

// linkNew gives the file at oldpath the name newpath too, failing with an
// error that matches fs.ErrExist if newpath exists.
func linkNew(oldpath, newpath string) error { return os.Link(oldpath, newpath) }

// checkDirOwner requires the directory dir (Lstat gave fi) to belong to
// the effective uid or root and to be writable by its owner only.
func checkDirOwner(_ string, fi fs.FileInfo) error { return checkOwner(fi, true) }

// checkFileOwner requires the open token file f (its Stat is fi) to belong
// to the effective uid and to have no group or other permission bits.
func checkFileOwner(_ *os.File, fi fs.FileInfo) error { return checkOwner(fi, false) }

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
