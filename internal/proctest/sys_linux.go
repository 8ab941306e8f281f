package proctest

import "syscall"

// sysProcAttr returns a copy of a with Pdeathsig SIGKILL unless set: the
// process dies with the test binary.
func sysProcAttr(a *syscall.SysProcAttr) *syscall.SysProcAttr {
	c := syscall.SysProcAttr{}
	if a != nil {
		c = *a
	}
	if c.Pdeathsig == 0 {
		c.Pdeathsig = syscall.SIGKILL
	}
	return &c
}
