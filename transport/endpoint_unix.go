//go:build linux || darwin || freebsd

// How Listen makes a socket path its own (docs/SECURITY.md §1): a checked
// directory, a lock file, and a socket bound in a private directory and
// renamed into place with its final mode.

package transport

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

const (
	// lockSuffix names the lock file beside the socket.
	lockSuffix = ".lock"
	// lockAttempts bounds the retries when the lock file is replaced
	// between opening and locking it.
	lockAttempts = 10
	// tmpPrefix starts the name of the private directory the socket is
	// bound in, beside the socket; tmpSocket is the socket's name there.
	tmpPrefix = ".eb"
	tmpSocket = "s"
)

// socketDir is the socket's directory, opened and checked. What follows
// runs relative to this descriptor where the system allows, so whatever
// later happens to the directory's path cannot redirect it.
type socketDir struct {
	path string
	fd   int
}

func (d *socketDir) close() { unix.Close(d.fd) }

// openSocketDir creates a missing socket directory with mode 0700, opens
// it without following a symlink and checks it (see check).
func openSocketDir(dir string, shared bool) (*socketDir, error) {
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, dirMode); err != nil {
			return nil, listenError(dir, err)
		}
		// Checked even when just created: another user may have created
		// it first, and MkdirAll accepts an existing directory.
		fi, err = os.Lstat(dir)
	}
	switch {
	case err != nil:
		return nil, listenError(dir, err)
	case fi.Mode().Type() == fs.ModeSymlink:
		return nil, newError(ErrUnsafeDir, nil,
			"socket directory %s is a symlink, which whoever can write its directory can redirect; give the real directory", dir)
	case !fi.IsDir():
		return nil, fmt.Errorf("transport: listen: socket directory %s is not a directory (mode %v)", dir, fi.Mode())
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, listenError(dir, os.NewSyscallError("open", err))
	}
	d := &socketDir{path: dir, fd: fd}
	if err := d.check(shared); err != nil {
		d.close()
		return nil, err
	}
	return d, nil
}

// check refuses a directory that someone else could use to replace the
// socket: one owned by a uid other than ours or root's, or that group or
// others may write. A sticky world-writable directory such as /tmp is
// refused too: the socket belongs in a private subdirectory. shared
// (AllowSharedDir) accepts any directory.
func (d *socketDir) check(shared bool) error {
	var st unix.Stat_t
	if err := unix.Fstat(d.fd, &st); err != nil {
		return listenError(d.path, os.NewSyscallError("fstat", err))
	}
	euid := uint32(os.Geteuid())
	mode := modeOf(&st)
	if shared || ((st.Uid == euid || st.Uid == 0) && mode.Perm()&0o022 == 0) {
		return nil
	}
	owners := "root"
	if euid != 0 {
		owners = "uid " + strconv.FormatUint(uint64(euid), 10) + " or root"
	}
	return newError(ErrUnsafeDir, nil,
		"socket directory %s is not private: owner uid %d, mode %v; it must be owned by %s and not writable by group or others, unless allowed as shared",
		d.path, st.Uid, mode, owners)
}

// endpointLock is the lock file that gives one broker the path: an
// exclusive flock held for the listener's life, with the holder's pid in
// the file for the error a second broker reports.
type endpointLock struct {
	f  *os.File
	id fileID
}

// lockEndpoint takes the lock beside path, or fails with ErrBrokerRunning
// naming the holder.
func lockEndpoint(d *socketDir, path string) (*endpointLock, error) {
	lockPath := path + lockSuffix
	name := filepath.Base(lockPath)
	for range lockAttempts {
		// O_NONBLOCK: a FIFO planted there must not block the open.
		fd, err := unix.Openat(d.fd, name, unix.O_RDWR|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0o600)
		if err != nil {
			return nil, listenError(lockPath, os.NewSyscallError("open", err))
		}
		f := os.NewFile(uintptr(fd), lockPath)
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			f.Close()
			return nil, listenError(lockPath, os.NewSyscallError("fstat", err))
		}
		if st.Mode&unix.S_IFMT != unix.S_IFREG {
			f.Close()
			return nil, newError(fs.ErrExist, nil, "listen %s: the lock file %s is not a regular file (mode %v)", path, lockPath, modeOf(&st))
		}
		if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
			pid := readPID(f)
			f.Close()
			if errors.Is(err, unix.EWOULDBLOCK) {
				return nil, brokerRunning(path, pid, nil)
			}
			return nil, listenError(lockPath, os.NewSyscallError("flock", err))
		}
		// A broker removes the file before unlocking it (release), so a
		// lock won on a file no longer at the path guards nothing.
		var cur unix.Stat_t
		if err := unix.Fstatat(d.fd, name, &cur, unix.AT_SYMLINK_NOFOLLOW); err != nil || idOf(&cur) != idOf(&st) {
			f.Close()
			continue
		}
		if err := writePID(f); err != nil {
			f.Close()
			return nil, listenError(lockPath, err)
		}
		return &endpointLock{f: f, id: idOf(&st)}, nil
	}
	return nil, fmt.Errorf("transport: listen %s: the lock file %s was replaced %d times while being locked", path, lockPath, lockAttempts)
}

// release removes the lock file, if it is still this one, then unlocks
// it: in that order, so a broker waiting to lock the old file finds it
// gone and retries on a new one.
func (l *endpointLock) release() error {
	err := removeIfSame(l.f.Name(), l.id)
	if err != nil {
		err = fmt.Errorf("transport: close %s: %w", l.f.Name(), err)
	}
	return errors.Join(err, l.f.Close())
}

func writePID(f *os.File) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return err
}

// readPID returns the pid in a lock file, 0 if there is none yet (its
// holder writes it just after locking).
func readPID(f *os.File) int {
	buf := make([]byte, 32)
	n, _ := f.ReadAt(buf, 0)
	pid, err := strconv.Atoi(strings.TrimSpace(string(buf[:n])))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// bindAndListen creates the socket so that it appears at path with its
// final mode and nobody can connect before then. bind creates it in a
// fresh 0700 directory beside path that only we can enter, where chmod
// cannot be raced; a rename puts it at path (same filesystem, so atomic,
// and never over a file that appeared meanwhile); only then does listen
// let connections in (before listen, connect is refused).
func bindAndListen(d *socketDir, path string, mode os.FileMode) (_ *listener, err error) {
	tmp, err := os.MkdirTemp(d.path, tmpPrefix)
	if err != nil {
		return nil, listenError(d.path, err)
	}
	tmpName := filepath.Base(tmp)
	defer unix.Unlinkat(d.fd, tmpName, unix.AT_REMOVEDIR) // empty by then
	tfd, err := openPrivateDir(d, tmpName, tmp)
	if err != nil {
		return nil, err
	}
	defer unix.Close(tfd)
	bound := filepath.Join(tmp, tmpSocket)
	if len(bound) > maxPathLen {
		return nil, fmt.Errorf("transport: listen %s: the socket is bound first at %s, %d bytes; %s allows at most %d (use a longer socket name or a shorter directory)",
			path, bound, len(bound), osName, maxPathLen)
	}
	fd, err := socketCloexec()
	if err != nil {
		return nil, listenError(path, os.NewSyscallError("socket", err))
	}
	f := os.NewFile(uintptr(fd), path) // owns fd; FileListener dups it
	defer f.Close()
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: bound}); err != nil {
		return nil, listenError(bound, os.NewSyscallError("bind", err))
	}
	defer unix.Unlinkat(tfd, tmpSocket, 0) // if still there, on failure
	// bind took a path: make sure the socket is in the directory checked.
	var st unix.Stat_t
	if err := unix.Fstatat(tfd, tmpSocket, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil || st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return nil, newError(ErrUnsafeDir, err, "listen %s: the socket bound at %s is not in the directory created for it", path, bound)
	}
	if err := unix.Fchmodat(tfd, tmpSocket, uint32(mode.Perm()), 0); err != nil {
		return nil, listenError(bound, os.NewSyscallError("chmod", err))
	}
	if err := renameNoReplace(tfd, tmpSocket, d.fd, filepath.Base(path)); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return nil, newError(fs.ErrExist, err, "listen %s: a file appeared at the path while the socket was made; refusing to replace it", path)
		}
		return nil, listenError(path, os.NewSyscallError("rename", err))
	}
	created := idOf(&st) // a rename keeps the inode
	defer func() {
		if err != nil {
			_ = removeIfSame(path, created) // best effort; the first error is what matters
		}
	}()
	if err := unix.Listen(fd, backlog); err != nil {
		return nil, listenError(path, os.NewSyscallError("listen", err))
	}
	return newListener(f, path, created)
}

// openPrivateDir opens the directory Listen just created, name in d, and
// makes sure it is ours alone: a directory (no symlink swapped in), owned
// by our euid, mode exactly 0700.
func openPrivateDir(d *socketDir, name, path string) (int, error) {
	fd, err := unix.Openat(d.fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, listenError(path, os.NewSyscallError("open", err))
	}
	// The umask may have taken bits from MkdirTemp's 0700; the setgid bit
	// may have come from the parent.
	if err := unix.Fchmod(fd, uint32(dirMode)); err != nil {
		unix.Close(fd)
		return -1, listenError(path, os.NewSyscallError("fchmod", err))
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, listenError(path, os.NewSyscallError("fstat", err))
	}
	euid := uint32(os.Geteuid())
	if got := modeOf(&st); st.Uid != euid || got != fs.ModeDir|dirMode {
		unix.Close(fd)
		return -1, newError(ErrUnsafeDir, nil, "directory %s created for the socket is not private: owner uid %d, mode %v; want uid %d, mode %v",
			path, st.Uid, got, euid, fs.ModeDir|dirMode)
	}
	return fd, nil
}

// fileID identifies a file while it exists: device and inode.
type fileID struct{ dev, ino uint64 }

func idOf(st *unix.Stat_t) fileID { return fileID{uint64(st.Dev), uint64(st.Ino)} }

// removeIfSame removes path only if it is still the file id. While its
// creator holds the socket or lock file open, the inode cannot be reused,
// so a match really is that file.
func removeIfSame(path string, id fileID) error {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil || idOf(&st) != id {
		return nil // gone, or replaced by a newer broker's
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// modeOf is st's mode as os.FileMode, for messages and checks.
func modeOf(st *unix.Stat_t) os.FileMode {
	m := uint32(st.Mode)
	mode := os.FileMode(m & 0o777)
	for bit, fm := range map[uint32]os.FileMode{unix.S_ISUID: os.ModeSetuid, unix.S_ISGID: os.ModeSetgid, unix.S_ISVTX: os.ModeSticky} {
		if m&bit != 0 {
			mode |= fm
		}
	}
	switch m & unix.S_IFMT {
	case unix.S_IFREG:
	case unix.S_IFDIR:
		mode |= os.ModeDir
	case unix.S_IFLNK:
		mode |= os.ModeSymlink
	case unix.S_IFSOCK:
		mode |= os.ModeSocket
	case unix.S_IFIFO:
		mode |= os.ModeNamedPipe
	case unix.S_IFCHR:
		mode |= os.ModeDevice | os.ModeCharDevice
	case unix.S_IFBLK:
		mode |= os.ModeDevice
	default:
		mode |= os.ModeIrregular
	}
	return mode
}
