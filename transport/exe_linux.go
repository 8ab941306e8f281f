package transport

import (
	"os"
	"strconv"
)

// exeOf reads a peer's executable path right at accept, while the pid
// still names the process that connected. Empty if unreadable.
func exeOf(pid int) string {
	if pid <= 0 {
		return ""
	}
	exe, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
	if err != nil {
		return ""
	}
	return exe
}
