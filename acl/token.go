package acl

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

const (
	tokenBytes    = 32   // random bytes in a new token, written hex-encoded
	minTokenLen   = 32   // shortest token file content accepted
	maxTokenLen   = 1024 // longest token file content accepted
	tokenFileMode = 0o600
	tokenDirMode  = 0o700
)

// EnsureTokenFile returns the agent token stored at path, creating it first
// if it is missing: the directory and then a file holding 32 random bytes,
// hex-encoded, that only this process's user can use. The file is created
// complete or not at all (written aside, then linked or renamed into place
// without replacing anything), so concurrent callers agree on one token.
//
// On Unix a new directory gets mode 0700 and the file mode 0600, and an
// existing file is used only if it is a regular file (not a symlink) owned
// by the current effective uid with no group or other permission bits, in
// a directory that only its owner (or root) can write.
//
// On Windows a new directory and the file get a protected DACL granting
// full access to this process's user, SYSTEM and Administrators only, and
// an existing file is used only if it is a regular file (not a symlink)
// owned by one of those three whose DACL grants no access to anyone else,
// in a directory, owned the same way, where no one else may add, delete
// or rename entries or change its owner or DACL. See token_windows.go.
//
// Elsewhere EnsureTokenFile fails rather than trust a file it cannot check.
func EnsureTokenFile(path string) ([]byte, error) {
	if path == "" {
		return nil, errors.New("acl: token file: no path given")
	}
	if err := mkdirPrivate(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("acl: token file %s: %w", path, err)
	}
	if err := checkTokenDir(filepath.Dir(path)); err != nil { // before writing into it
		return nil, fmt.Errorf("acl: token file %s: %w", path, err)
	}
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		if err := createTokenFile(path); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("acl: token file %s: %w", path, err)
		}
	}
	return ReadTokenFile(path)
}

// ReadTokenFile returns the agent token stored at path, after the checks
// of [EnsureTokenFile], without creating anything. Surrounding white space
// is not part of the token.
func ReadTokenFile(path string) ([]byte, error) {
	tok, err := readTokenFile(path)
	if err != nil {
		return nil, fmt.Errorf("acl: token file %s: %w", path, err)
	}
	return tok, nil
}

func readTokenFile(path string) ([]byte, error) {
	if err := checkTokenDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	before, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	if err := checkTokenFile(before); err != nil { // before opening a FIFO, say
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	after, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !os.SameFile(before, after) { // replaced between the check and the open
		return nil, errors.New("file changed while being opened")
	}
	if err := checkFileOwner(f, after); err != nil { // the file read below
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, maxTokenLen+2))
	if err != nil {
		return nil, err
	}
	tok := bytes.TrimSpace(data)
	switch {
	case len(data) > maxTokenLen+1:
		return nil, fmt.Errorf("longer than %d bytes", maxTokenLen)
	case len(tok) < minTokenLen:
		return nil, fmt.Errorf("token is %d bytes, want at least %d", len(tok), minTokenLen)
	}
	return tok, nil
}

// checkTokenFile refuses anything but a regular file; checkFileOwner then
// refuses one that is not private to this process's user.
func checkTokenFile(fi fs.FileInfo) error {
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return errors.New("is a symlink; want a regular file")
	case !fi.Mode().IsRegular():
		return fmt.Errorf("is not a regular file (mode %v)", fi.Mode())
	}
	return nil
}

// checkTokenDir refuses a directory others could write into.
func checkTokenDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	if err := checkDirOwner(dir, fi); err != nil {
		return fmt.Errorf("directory %s: %w", dir, err)
	}
	return nil
}

// createTokenFile writes a new token beside path and links (or renames) it
// into place; the error matches fs.ErrExist if another process created path
// first.
func createTokenFile(path string) error {
	raw := make([]byte, tokenBytes)
	if _, err := rand.Read(raw); err != nil {
		return err
	}
	tmp, err := createPrivateTemp(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // once linked, or if never renamed
	_, err = tmp.WriteString(hex.EncodeToString(raw) + "\n")
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return linkNew(tmp.Name(), path)
}
