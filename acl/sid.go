package acl

import (
	"fmt"
	"strconv"
	"strings"
)

// maxSubAuthorities is the most sub-authorities a Windows SID holds
// (SID_MAX_SUB_AUTHORITIES).
const maxSubAuthorities = 15

// canonicalSID returns s, a Windows security identifier in string form,
// S-1-<authority>-<subauthority>..., as Windows prints it and
// transport.PeerOf reports it: upper-case S and decimal numbers without
// leading zeros. A policy's SIDs are compared with peers' as strings, so
// "s-1-5-018" must become "S-1-5-18". The authority must be below 2^32
// (every authority Windows defines is; larger ones print in hex) and there
// must be 1 to 15 sub-authorities of 32 bits each.
func canonicalSID(s string) (string, error) {
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("%q is not a SID (%s); want S-1-<authority>-<subauthority>..., e.g. S-1-5-18 or S-1-5-21-1004336348-1177238915-682003330-1001", s, why)
	}
	parts := strings.Split(s, "-")
	switch {
	case len(parts) < 4:
		return bad("too few parts")
	case parts[0] != "S" && parts[0] != "s":
		return bad("it does not begin with S-")
	case parts[1] != "1":
		return bad("revision is not 1")
	case len(parts)-3 > maxSubAuthorities:
		return bad(fmt.Sprintf("more than %d sub-authorities", maxSubAuthorities))
	}
	out := []string{"S", "1"}
	for _, p := range parts[2:] {
		n, err := strconv.ParseUint(p, 10, 32)
		if err != nil { // ParseUint also refuses signs and empty parts
			return bad(fmt.Sprintf("%q is not a number from 0 to %d", p, uint32(1<<32-1)))
		}
		out = append(out, strconv.FormatUint(n, 10))
	}
	return strings.Join(out, "-"), nil
}
