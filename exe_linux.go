package eventbus

import (
	"os"
	"strconv"
)

// peerExe reads a peer's executable path right at accept, while the pid
// still names the process that connected (SPEC §3). Empty if unreadable.
func peerExe(pid int) string {
	if pid <= 0 {
		return ""
	}
	exe, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
	if err != nil {
		return ""
	}
	return exe
}
