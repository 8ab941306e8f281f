package proctest

import (
	"fmt"
	"os"
	"time"
)

// HelperLifetime bounds a helper process's life, so that none outlives a
// test binary that crashed before stopping it (Pdeathsig covers most of
// that; a SIGSTOPped helper is the rest).
const HelperLifetime = 2 * time.Minute

// RunRole runs this process's helper role, if it has one (Role), with
// the arguments after the program name, and exits: 0 when the role's
// function returns nil, 1 with the error on stderr otherwise, 3 past
// HelperLifetime. It returns only when the process runs the tests, so
// TestMain calls it first.
func RunRole(roles map[string]func(args []string) error) {
	role := Role()
	if role == "" {
		return
	}
	time.AfterFunc(HelperLifetime, func() {
		fmt.Fprintf(os.Stderr, "%s %d: still running after %v; exiting\n", role, os.Getpid(), HelperLifetime)
		os.Exit(3)
	})
	run, ok := roles[role]
	err := fmt.Errorf("unknown role %q", role)
	if ok {
		err = run(os.Args[1:])
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s %d: %v\n", role, os.Getpid(), err)
		os.Exit(1)
	}
	os.Exit(0)
}
