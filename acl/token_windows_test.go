package acl

import (
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/windows"
)

// underWine reports whether the test runs under Wine (scripts/wine) rather
// than Windows, as transport/wine_windows.go tells: Wine's ntdll exports
// wine_get_version, Windows' does not.
var underWine = sync.OnceValue(func() bool {
	return windows.NewLazySystemDLL("ntdll.dll").NewProc("wine_get_version").Find() == nil
})

// wineSynthesizesDACLs is why some assertions are skipped under Wine.
// Measured with Wine 8: Wine does not keep the descriptor a file or
// directory is created or updated with. It maps the DACL to Unix mode bits
// and reports a DACL rebuilt from the mode: full access for SYSTEM and the
// owner, and, for group or other bits, an ACE for Everyone (S-1-1-0) with
// the rights the bits give. So a written DACL reads back without its
// Administrators ACE and protected flag, and a NULL DACL reads back as
// Everyone with full access (mode 0777) rather than as a NULL DACL.
const wineSynthesizesDACLs = "Wine 8 reports a DACL rebuilt from the Unix mode bits, not the one written"

func currentUserSID(t *testing.T) *windows.SID {
	t.Helper()
	user, err := currentUser()
	if err != nil {
		t.Fatal(err)
	}
	return user
}

// securityOf reads the owner and DACL of the file or directory at path.
func securityOf(t *testing.T, path string) *windows.SECURITY_DESCRIPTOR {
	t.Helper()
	sd, err := windows.GetNamedSecurityInfo(path, windows.SE_FILE_OBJECT,
		windows.OWNER_SECURITY_INFORMATION|windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		t.Fatalf("GetNamedSecurityInfo(%s): %v", path, err)
	}
	return sd
}

// daclSDDL returns the SDDL form of sd's DACL alone, "D:P(A;;FA;;;SY)...",
// with SIDs spelled as Windows spells them.
func daclSDDL(t *testing.T, sd *windows.SECURITY_DESCRIPTOR) string {
	t.Helper()
	dacl, _, err := sd.DACL()
	if err != nil {
		t.Fatalf("DACL: %v", err)
	}
	control, _, err := sd.Control()
	if err != nil {
		t.Fatal(err)
	}
	only, err := windows.NewSecurityDescriptor()
	if err != nil {
		t.Fatal(err)
	}
	if err := only.SetDACL(dacl, true, false); err != nil {
		t.Fatal(err)
	}
	if err := only.SetControl(windows.SE_DACL_PROTECTED, control&windows.SE_DACL_PROTECTED); err != nil {
		t.Fatal(err)
	}
	return only.String()
}

// setDACL replaces the DACL of path with the one in sddl ("D:...").
func setDACL(t *testing.T, path, sddl string) {
	t.Helper()
	sd, err := windows.SecurityDescriptorFromString(sddl)
	if err != nil {
		t.Fatalf("SecurityDescriptorFromString(%q): %v", sddl, err)
	}
	dacl, _, err := sd.DACL()
	if err != nil {
		t.Fatal(err)
	}
	err = windows.SetNamedSecurityInfo(path, windows.SE_FILE_OBJECT,
		windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION, nil, nil, dacl, nil)
	if err != nil {
		t.Fatalf("SetNamedSecurityInfo(%s, %s): %v", path, sddl, err)
	}
}

func TestEnsureTokenFileWindows(t *testing.T) {
	user := currentUserSID(t)
	t.Logf("under Wine: %t; user %s", underWine(), user)
	path := filepath.Join(tempDir(t), "AppData", "eventbus", "agent.token")
	tok, err := EnsureTokenFile(path)
	if err != nil {
		t.Fatalf("EnsureTokenFile: %v", err)
	}
	checkNewToken(t, path, tok)

	for _, tt := range []struct {
		path, inherit string
	}{
		{path, ""},
		{filepath.Dir(path), "OICI"},
		{filepath.Dir(filepath.Dir(path)), "OICI"}, // created as a parent
	} {
		sd := securityOf(t, tt.path)
		if owner, _, err := sd.Owner(); err != nil || !owner.Equals(user) {
			t.Errorf("owner of %s = %v, %v; want %s", tt.path, owner, err, user)
		}
		got := daclSDDL(t, sd)
		if underWine() {
			// The mode Wine derived from the DACL must give group and
			// others nothing, or Wine would report an Everyone ACE.
			if strings.Contains(got, ";WD)") {
				t.Errorf("DACL of %s = %s under Wine; want no ACE for Everyone (WD)", tt.path, got)
			}
			t.Logf("DACL of %s = %s; exact DACL not checked: %s", tt.path, got, wineSynthesizesDACLs)
			continue
		}
		want := strings.ReplaceAll("D:P(A;I;FA;;;U)(A;I;FA;;;SY)(A;I;FA;;;BA)", ";I;", ";"+tt.inherit+";")
		wantSD, err := windows.SecurityDescriptorFromString(strings.ReplaceAll(want, ";U)", ";"+user.String()+")"))
		if err != nil {
			t.Fatal(err)
		}
		if want := daclSDDL(t, wantSD); got != want {
			t.Errorf("DACL of %s = %s; want %s", tt.path, got, want)
		}
	}
}

// TestEnsureTokenFileRefusesWindows changes a token file or its directory
// the way a careless operator might, and checks that the token is refused
// with an error naming the path and what is wrong.
func TestEnsureTokenFileRefusesWindows(t *testing.T) {
	user := currentUserSID(t).String()
	nullDACL := "NULL DACL"
	if underWine() {
		nullDACL = "grants S-1-1-0" // see wineSynthesizesDACLs
	}
	tests := []struct {
		name   string
		change func(t *testing.T, path string)
		err    string // "" if the token is still accepted
	}{
		{"Everyone may read the file", func(t *testing.T, path string) {
			setDACL(t, path, "D:P(A;;FA;;;"+user+")(A;;FR;;;WD)")
		}, "grants S-1-1-0"},
		{"Users may change the file", func(t *testing.T, path string) {
			setDACL(t, path, "D:P(A;;FA;;;"+user+")(A;;FA;;;SY)(A;;0x12019f;;;BU)")
		}, "grants S-1-5-32-545"},
		{"the file has a NULL DACL", func(t *testing.T, path string) {
			err := windows.SetNamedSecurityInfo(path, windows.SE_FILE_OBJECT, windows.DACL_SECURITY_INFORMATION, nil, nil, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
		}, nullDACL},
		{"Everyone may write to the directory", func(t *testing.T, path string) {
			setDACL(t, filepath.Dir(path), "D:P(A;OICI;FA;;;"+user+")(A;OICI;FA;;;WD)")
		}, "lets S-1-1-0"},
		{"Everyone may list the directory", func(t *testing.T, path string) {
			setDACL(t, filepath.Dir(path), "D:P(A;OICI;FA;;;"+user+")(A;;0x1200a9;;;WD)")
		}, ""},
		{"Anonymous Logon is denied the file", func(t *testing.T, path string) {
			setDACL(t, path, "D:P(D;;FA;;;AN)(A;;FA;;;"+user+")")
		}, ""},
	}
	wineCannot := map[string]string{
		"Users may change the file": "Wine 8 maps a DACL to Unix mode bits and drops ACEs for groups such as Users, " +
			"so it would report no ACE for Users (TestCheckSecurity checks the rule)",
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if why := wineCannot[tt.name]; why != "" && underWine() {
				t.Skip(why)
			}
			path := filepath.Join(tempDir(t), "eventbus", "agent.token")
			if _, err := EnsureTokenFile(path); err != nil {
				t.Fatalf("EnsureTokenFile: %v", err)
			}
			tt.change(t, path)
			tok, err := ReadTokenFile(path)
			switch {
			case tt.err == "" && err != nil:
				t.Errorf("ReadTokenFile = %v; want the token", err)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), path)):
				t.Errorf("ReadTokenFile = %q, %v; want an error naming %s and %q", tok, err, path, tt.err)
			}
			if _, err2 := EnsureTokenFile(path); (err2 == nil) != (err == nil) {
				t.Errorf("EnsureTokenFile = %v, ReadTokenFile = %v; want both to fail or both to succeed", err2, err)
			}
			if err != nil {
				t.Logf("refused: %v", err)
			}
			// Let the best-effort cleanup remove what it can.
			setDACL(t, filepath.Dir(path), "D:(A;OICI;FA;;;"+user+")")
			setDACL(t, path, "D:(A;;FA;;;"+user+")")
		})
	}
}

// TestCheckSecurity runs the owner and DACL rules on descriptors written
// in SDDL, including owners and ACEs that cannot be put on a file without
// privileges (or that Wine would not keep).
func TestCheckSecurity(t *testing.T) {
	user := currentUserSID(t).String()
	const readWrite = "0x12019f" // FILE_GENERIC_READ | FILE_GENERIC_WRITE
	tests := []struct {
		name string
		sddl string
		dir  bool
		err  string // "" if accepted
	}{
		{"private file", "O:" + user + "D:P(A;;FA;;;" + user + ")(A;;FA;;;SY)(A;;FA;;;BA)", false, ""},
		{"owned by Administrators", "O:BAD:(A;;FA;;;BA)(A;;FA;;;" + user + ")", false, ""},
		{"owned by SYSTEM", "O:SYD:(A;;FA;;;SY)(A;;FA;;;" + user + ")", false, ""},
		{"owned by Users", "O:BUD:(A;;FA;;;" + user + ")", false, "owned by S-1-5-32-545"},
		{"owned by Everyone", "O:WDD:(A;;FA;;;" + user + ")", false, "owned by S-1-1-0"},
		{"empty DACL", "O:" + user + "D:P", false, ""},
		{"NULL DACL", "O:" + user + "D:NO_ACCESS_CONTROL", false, "NULL DACL"},
		{"no DACL", "O:" + user, false, "NULL DACL"},
		{"Everyone reads", "O:" + user + "D:(A;;FA;;;" + user + ")(A;;FR;;;WD)", false, "grants S-1-1-0"},
		{"Authenticated Users read", "O:" + user + "D:(A;;0x120089;;;AU)", false, "grants S-1-5-11"},
		{"Everyone synchronizes", "O:" + user + "D:(A;;0x100000;;;WD)", false, "grants S-1-1-0"},
		{"inherit-only ACE for Users", "O:" + user + "D:(A;OICIIO;FA;;;BU)", true, "lets S-1-5-32-545"},
		{"Everyone denied", "O:" + user + "D:(D;;FA;;;WD)(A;;FA;;;" + user + ")", false, ""},
		{"OWNER RIGHTS", "O:" + user + "D:(A;;FA;;;OW)", false, ""},
		{"CREATOR OWNER", "O:" + user + "D:(A;;FA;;;CO)", false, "grants S-1-3-0"},
		{"zero access for Everyone", "O:" + user + "D:(A;;0x0;;;WD)", false, ""},
		{"directory others list", "O:" + user + "D:(A;OICI;FA;;;" + user + ")(A;OICI;0x1200a9;;;WD)", true, ""},
		{"directory others add files", "O:" + user + "D:(A;;0x2;;;BU)", true, "lets S-1-5-32-545"},
		{"directory others add subdirectories", "O:" + user + "D:(A;;0x4;;;BU)", true, "lets S-1-5-32-545"},
		{"directory others delete entries", "O:" + user + "D:(A;;0x40;;;BU)", true, "lets S-1-5-32-545"},
		{"directory others delete it", "O:" + user + "D:(A;;SD;;;BU)", true, "lets S-1-5-32-545"},
		{"directory others change its DACL", "O:" + user + "D:(A;;WD;;;BU)", true, "lets S-1-5-32-545"},
		{"directory others take it", "O:" + user + "D:(A;;WO;;;BU)", true, "lets S-1-5-32-545"},
		{"directory others generic write", "O:" + user + "D:(A;;GW;;;BU)", true, "lets S-1-5-32-545"},
		{"directory others read and write", "O:" + user + "D:(A;;" + readWrite + ";;;BU)", true, "lets S-1-5-32-545"},
		{"directory owned by Users", "O:BUD:(A;;FA;;;" + user + ")", true, "owned by S-1-5-32-545"},
		{"object ACE", "O:" + user + "D:(OA;;FA;;;WD)", false, "type 5"},
	}
	wineCannot := map[string]string{
		"NULL DACL": "Wine 8 parses D:NO_ACCESS_CONTROL as an empty DACL, not a NULL one (TestCheckSecurityNullDACL builds one)",
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if why := wineCannot[tt.name]; why != "" && underWine() {
				t.Skip(why)
			}
			sd, err := windows.SecurityDescriptorFromString(tt.sddl)
			if err != nil {
				if underWine() {
					t.Skipf("Wine cannot build %q: %v", tt.sddl, err)
				}
				t.Fatalf("SecurityDescriptorFromString(%q): %v", tt.sddl, err)
			}
			err = checkSecurity(sd, tt.dir)
			switch {
			case tt.err == "" && err != nil:
				t.Errorf("checkSecurity(%s, dir %t) = %v; want nil", tt.sddl, tt.dir, err)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Errorf("checkSecurity(%s, dir %t) = %v; want an error containing %q", tt.sddl, tt.dir, err, tt.err)
			}
		})
	}
}

// TestCheckSecurityNullDACL builds a descriptor with a NULL DACL (present
// but empty of any ACL, which grants everyone full access) without SDDL.
func TestCheckSecurityNullDACL(t *testing.T) {
	sd, err := windows.NewSecurityDescriptor()
	if err != nil {
		t.Fatal(err)
	}
	if err := sd.SetOwner(currentUserSID(t), false); err != nil {
		t.Fatal(err)
	}
	if err := sd.SetDACL(nil, true, false); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []bool{false, true} {
		if err := checkSecurity(sd, dir); err == nil || !strings.Contains(err.Error(), "NULL DACL") {
			t.Errorf("checkSecurity(NULL DACL, dir %t) = %v; want an error containing \"NULL DACL\"", dir, err)
		}
	}
}
