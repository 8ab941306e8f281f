//go:build !unix && !windows

package acl

import (
	"errors"
	"io/fs"
	"os"
)

// errNoOwnership: without Unix ownership and modes or Windows ACLs this
// package cannot tell whether others can read a token, so it neither
// creates nor trusts one.
var errNoOwnership = errors.New("cannot verify ownership and permissions on this OS yet")

func mkdirPrivate(string) error                  { return errNoOwnership }
func createPrivateTemp(string) (*os.File, error) { return nil, errNoOwnership }
func linkNew(string, string) error               { return errNoOwnership }
func checkDirOwner(string, fs.FileInfo) error    { return errNoOwnership }
func checkFileOwner(*os.File, fs.FileInfo) error { return errNoOwnership }
