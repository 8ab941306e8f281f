package acl

// The token file on Windows, where ACLs stand in for Unix modes.
//
// What is trusted: this process's user (the user SID of its process
// token), LocalSystem (S-1-5-18) and the Administrators group
// (S-1-5-32-544). SYSTEM and administrators can read any file anyway (they
// hold the backup and take-ownership privileges), so granting them access,
// or accepting them as a file's owner, gives no one more than they already
// have; they are trusted as root is on Unix. They must be accepted as
// owners, too: Windows may make Administrators, not the user, the owner of
// what an administrator creates without naming an owner (the policy
// "Default owner for objects created by members of the Administrators
// group", Administrators by default on Windows Server). Files this package
// creates name this process's user as their owner.
//
// A file is accepted only if its owner is trusted and its DACL allows no
// access at all to any other SID (OWNER RIGHTS, S-1-3-4, stands for the
// owner, who is trusted); a directory only if its owner is trusted and its
// DACL lets no other SID add, delete or rename entries or change the
// directory's owner or DACL: the counterpart of Unix's "not writable by
// group or others". Reading or listing the directory is allowed, as mode
// 0755 is on Unix: it reveals no token. A missing or NULL DACL, which
// grants everyone full access, is refused; deny ACEs take nothing away
// from what is checked and are ignored; an ACE that is neither a plain
// allow nor a plain deny ACE (object or conditional ACEs, which files
// rarely carry) is refused rather than interpreted.

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"syscall"

	"golang.org/x/sys/windows"
)

// Directory rights (winnt.h) that x/sys/windows does not name.
const (
	fileAddFile         = 0x0002 // FILE_ADD_FILE: create a file in it
	fileAddSubdirectory = 0x0004 // FILE_ADD_SUBDIRECTORY
	fileDeleteChild     = 0x0040 // FILE_DELETE_CHILD: delete or rename any entry

	// dirWriteAccess are the rights on a directory that let their holder
	// put a file of theirs at the token's path or change who may: others
	// must hold none of them. Generic rights are included because an ACE
	// may carry them unmapped.
	dirWriteAccess = fileAddFile | fileAddSubdirectory | fileDeleteChild |
		windows.DELETE | windows.WRITE_DAC | windows.WRITE_OWNER |
		windows.GENERIC_WRITE | windows.GENERIC_ALL
)

// mkdirPrivate creates dir and any missing parents, each with a protected
// DACL granting full access to this process's user, SYSTEM and
// Administrators only (inherited by new files and subdirectories), as
// os.MkdirAll(dir, 0700) does on Unix. Existing directories are left alone.
func mkdirPrivate(dir string) error {
	if fi, err := os.Stat(dir); err == nil {
		if fi.IsDir() {
			return nil
		}
		return &fs.PathError{Op: "mkdir", Path: dir, Err: syscall.ENOTDIR}
	}
	if parent := filepath.Dir(dir); parent != dir {
		if err := mkdirPrivate(parent); err != nil {
			return err
		}
	}
	sa, err := privateAttributes(true)
	if err != nil {
		return &fs.PathError{Op: "mkdir", Path: dir, Err: err}
	}
	p, err := windows.UTF16PtrFromString(dir)
	if err == nil {
		err = windows.CreateDirectory(p, sa)
	}
	if err != nil {
		if fi, serr := os.Lstat(dir); serr == nil && fi.IsDir() {
			return nil // created meanwhile; checkTokenDir judges it
		}
		return &fs.PathError{Op: "mkdir", Path: dir, Err: err}
	}
	return nil
}

// createPrivateTemp creates a new empty file in dir, open for writing, with
// a protected DACL granting full access to this process's user, SYSTEM and
// Administrators only. The descriptor is set as the file is created, so
// nobody else can ever open it, even briefly.
func createPrivateTemp(dir string) (*os.File, error) {
	name := filepath.Join(dir, ".token-"+rand.Text())
	sa, err := privateAttributes(false)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	p, err := windows.UTF16PtrFromString(name)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	h, err := windows.CreateFile(p, windows.GENERIC_WRITE, 0, sa, windows.CREATE_NEW, windows.FILE_ATTRIBUTE_NORMAL, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return os.NewFile(uintptr(h), name), nil
}

// linkNew renames oldpath to newpath unless newpath exists, in which case
// the error matches fs.ErrExist. (os.Rename would replace newpath; a hard
// link, as on Unix, would need NTFS.) The file keeps its security
// descriptor.
func linkNew(oldpath, newpath string) error {
	from, err := windows.UTF16PtrFromString(oldpath)
	if err != nil {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err}
	}
	to, err := windows.UTF16PtrFromString(newpath)
	if err != nil {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err}
	}
	if err := windows.MoveFileEx(from, to, 0); err != nil { // no MOVEFILE_REPLACE_EXISTING
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err}
	}
	return nil
}

// privateAttributes returns security attributes holding a descriptor owned
// by this process's user with a protected DACL (one that inherits nothing
// from the parent directory) granting full access to that user, SYSTEM and
// Administrators; for a directory the grants are inherited by new files
// and subdirectories.
func privateAttributes(dir bool) (*windows.SecurityAttributes, error) {
	user, err := currentUser()
	if err != nil {
		return nil, err
	}
	inherit := ""
	if dir {
		inherit = "OICI"
	}
	sddl := fmt.Sprintf("O:%[1]sD:P(A;%[2]s;FA;;;%[1]s)(A;%[2]s;FA;;;SY)(A;%[2]s;FA;;;BA)", user, inherit)
	sd, err := windows.SecurityDescriptorFromString(sddl)
	if err != nil {
		return nil, fmt.Errorf("security descriptor %s: %w", sddl, err)
	}
	return &windows.SecurityAttributes{
		Length:             uint32(reflect.TypeFor[windows.SecurityAttributes]().Size()),
		SecurityDescriptor: sd,
	}, nil
}

// currentUser returns the user SID of this process's token.
func currentUser() (*windows.SID, error) {
	tu, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		return nil, fmt.Errorf("cannot read this process's user: %w", err)
	}
	return tu.User.Sid, nil
}

// checkDirOwner requires the directory dir to be owned by a trusted SID
// and writable by trusted SIDs only (see the top of this file).
func checkDirOwner(dir string, _ fs.FileInfo) error {
	sd, err := windows.GetNamedSecurityInfo(dir, windows.SE_FILE_OBJECT,
		windows.OWNER_SECURITY_INFORMATION|windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		return fmt.Errorf("cannot read its security descriptor: %w", err)
	}
	return checkSecurity(sd, true)
}

// checkFileOwner requires the open token file f to be owned by a trusted
// SID and accessible to trusted SIDs only. It reads the descriptor of the
// open handle, so it judges the very file that is then read.
func checkFileOwner(f *os.File, _ fs.FileInfo) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var sd *windows.SECURITY_DESCRIPTOR
	cerr := rc.Control(func(fd uintptr) {
		sd, err = windows.GetSecurityInfo(windows.Handle(fd), windows.SE_FILE_OBJECT,
			windows.OWNER_SECURITY_INFORMATION|windows.DACL_SECURITY_INFORMATION)
	})
	if err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("cannot read its security descriptor: %w", err)
	}
	return checkSecurity(sd, false)
}

// checkSecurity applies the rules at the top of this file to sd, the
// descriptor of a directory or of the token file.
func checkSecurity(sd *windows.SECURITY_DESCRIPTOR, dir bool) error {
	if sd == nil {
		return errors.New("has no security descriptor, so everyone has full access")
	}
	user, err := currentUser()
	if err != nil {
		return err
	}
	trusted := func(sid *windows.SID) bool {
		return sid.Equals(user) || sid.IsWellKnown(windows.WinLocalSystemSid) ||
			sid.IsWellKnown(windows.WinBuiltinAdministratorsSid)
	}
	owner, _, err := sd.Owner()
	switch {
	case err != nil || owner == nil:
		return fmt.Errorf("cannot read its owner (%v)", err)
	case !trusted(owner):
		return fmt.Errorf("owned by %s, not by this process's user %s, SYSTEM or Administrators", sidName(owner), sidName(user))
	}
	dacl, _, err := sd.DACL()
	switch {
	case errors.Is(err, windows.ERROR_OBJECT_NOT_FOUND), err == nil && dacl == nil:
		return errors.New("has no DACL (a NULL DACL), which grants everyone full access")
	case err != nil:
		return fmt.Errorf("cannot read its DACL: %w", err)
	}
	aces, err := readACEs(dacl)
	if err != nil {
		return fmt.Errorf("DACL: %w", err)
	}
	limit := ^windows.ACCESS_MASK(0) // a file: any access
	if dir {
		limit = dirWriteAccess
	}
	for _, a := range aces {
		if a.deny || a.mask&limit == 0 || trusted(a.sid) || a.sid.IsWellKnown(windows.WinCreatorOwnerRightsSid) {
			continue
		}
		if dir {
			return fmt.Errorf("DACL lets %s write to it (add, delete or rename entries, or change its security: access mask %#x); "+
				"want that only for this process's user %s, SYSTEM and Administrators", sidName(a.sid), uint32(a.mask), sidName(user))
		}
		return fmt.Errorf("DACL grants %s access (mask %#x); want access only for this process's user %s, SYSTEM and Administrators",
			sidName(a.sid), uint32(a.mask), sidName(user))
	}
	return nil
}

// ace is one entry of a DACL.
type ace struct {
	deny bool
	mask windows.ACCESS_MASK
	sid  *windows.SID
}

// readACEs returns dacl's entries, which must all be plain allow or deny
// ACEs. x/sys/windows reads an ACE's type and mask (GetAce) but reaching
// the SID stored after them would take unsafe code, so the SIDs are taken,
// in order, from the DACL's SDDL form instead, and their number must match
// the DACL's ACE count.
func readACEs(dacl *windows.ACL) ([]ace, error) {
	aces := make([]ace, dacl.AceCount)
	for i := range aces {
		var a *windows.ACCESS_ALLOWED_ACE
		if err := windows.GetAce(dacl, uint32(i), &a); err != nil {
			return nil, fmt.Errorf("ACE %d: %w", i, err)
		}
		switch a.Header.AceType {
		case windows.ACCESS_ALLOWED_ACE_TYPE:
		case windows.ACCESS_DENIED_ACE_TYPE:
			aces[i].deny = true
		default:
			return nil, fmt.Errorf("ACE %d has type %d, which this check does not read; want only plain allow and deny ACEs", i, a.Header.AceType)
		}
		aces[i].mask = a.Mask
	}
	sd, err := windows.NewSecurityDescriptor()
	if err != nil {
		return nil, err
	}
	if err := sd.SetDACL(dacl, true, false); err != nil {
		return nil, err
	}
	sddl := sd.String()
	sids, err := sddlACESIDs(sddl)
	if err != nil {
		return nil, err
	}
	if len(sids) != len(aces) {
		return nil, fmt.Errorf("%q holds %d ACEs, the DACL %d", sddl, len(sids), len(aces))
	}
	for i, s := range sids {
		sid, err := windows.StringToSid(s) // also takes SDDL's aliases, e.g. "SY"
		if err != nil {
			return nil, fmt.Errorf("ACE %d: SID %q: %w", i, s, err)
		}
		aces[i].sid = sid
	}
	return aces, nil
}

// sidName returns sid in string form, followed by its account name when
// Windows knows it: "S-1-1-0 (Everyone)".
func sidName(sid *windows.SID) string {
	s := sid.String()
	if account, domain, _, err := sid.LookupAccount(""); err == nil && account != "" {
		if domain != "" {
			account = domain + `\` + account
		}
		s += " (" + account + ")"
	}
	return s
}
