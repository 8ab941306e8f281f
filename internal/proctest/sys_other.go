//go:build !linux

package proctest

import "syscall"

// sysProcAttr returns a: only Linux has Pdeathsig.
func sysProcAttr(a *syscall.SysProcAttr) *syscall.SysProcAttr { return a }
