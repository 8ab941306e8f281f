package acl

import (
	"fmt"
	"strings"
)

// The Windows token-file check reads ACE SIDs from SDDL (token_windows.go);
// the parsing needs no Windows API, so it lives here, where it is tested
// and fuzzed on every OS.

// sddlACESIDs returns the account SIDs, as written, of the ACEs in sddl,
// the SDDL form of a lone DACL of plain ACEs: "D:" and flags, then ACEs of
// six fields each, "(type;flags;rights;object;inherited object;SID)".
func sddlACESIDs(sddl string) ([]string, error) {
	rest, ok := strings.CutPrefix(sddl, "D:")
	if !ok {
		return nil, fmt.Errorf("cannot parse %q: want a DACL, starting with \"D:\"", sddl)
	}
	i := strings.IndexByte(rest, '(')
	if i < 0 {
		return nil, nil // flags only: an empty DACL
	}
	var sids []string
	for rest = rest[i:]; rest != ""; {
		end := strings.IndexByte(rest, ')')
		if rest[0] != '(' || end < 0 {
			return nil, fmt.Errorf("cannot parse %q at %q", sddl, rest)
		}
		fields := strings.Split(rest[1:end], ";")
		if len(fields) != 6 || strings.ContainsRune(rest[1:end], '(') {
			return nil, fmt.Errorf("cannot parse ACE %q in %q", rest[:end+1], sddl)
		}
		sids = append(sids, fields[5])
		rest = rest[end+1:]
	}
	return sids, nil
}
