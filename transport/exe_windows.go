package transport

import (
	"errors"

	"golang.org/x/sys/windows"
)

// exeOf reads a peer's executable path right at accept: the image name
// the kernel holds for the process (QueryFullProcessImageNameW, Win32
// form such as C:\Program Files\x\x.exe), through a handle opened with
// PROCESS_QUERY_LIMITED_INFORMATION, the least access that reads it.
// Empty if unreadable: a process the broker may not open (another user's,
// unless the broker is an administrator or LocalSystem) has no known
// executable, which fails closed.
func exeOf(pid int) string {
	if pid <= 0 || uint64(pid) > uint64(^uint32(0)) {
		return ""
	}
	h, err := windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION, false, uint32(pid))
	if err != nil {
		return ""
	}
	defer windows.CloseHandle(h)
	for size := 512; size <= windows.MAX_LONG_PATH; size *= 4 {
		buf := make([]uint16, size)
		n := uint32(len(buf))
		err := windows.QueryFullProcessImageName(h, 0, &buf[0], &n)
		if err == nil {
			if n == 0 || n > uint32(len(buf)) {
				return ""
			}
			return windows.UTF16ToString(buf[:n])
		}
		if !errors.Is(err, windows.ERROR_INSUFFICIENT_BUFFER) {
			return ""
		}
	}
	return ""
}
