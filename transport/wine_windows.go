package transport

// Workarounds for Wine (measured with Wine 8), which the Windows tests run
// under on Linux. Each runs only when underWine says so: real Windows
// behaves as go-winio expects and never takes these paths.

import (
	"errors"
	"sync"

	"golang.org/x/sys/windows"
)

// underWine reports whether this process runs under Wine rather than
// Windows: Wine's ntdll exports wine_get_version, Windows' does not.
var underWine = sync.OnceValue(func() bool {
	return windows.NewLazySystemDLL("ntdll.dll").NewProc("wine_get_version").Find() == nil
})

// wineRefuseLivePipe stands in for the check Windows makes itself. go-winio
// creates a pipe's first instance with FILE_CREATE, which Windows refuses
// if a pipe of that name exists; Wine creates another instance instead,
// which would put a second broker on a live pipe. So under Wine the pipe is
// opened first, as the Unix transport probes a socket: if that connects,
// finds every instance busy or is denied, the pipe is live.
func wineRefuseLivePipe(path string) error {
	h, err := openPipe(path)
	switch {
	case err == nil:
		pid, _ := serverPID(h)
		windows.CloseHandle(h)
		return brokerRunning(path, int(pid), nil)
	case errors.Is(err, windows.ERROR_PIPE_BUSY):
		return brokerRunning(path, pipeHolder(path), nil)
	case errors.Is(err, windows.ERROR_ACCESS_DENIED):
		return brokerRunning(path, 0, nil)
	}
	return nil // not found; anything else is for ListenPipe to report
}

// wineUseFirstInstance works around Wine connecting the first client of a
// new pipe to the instance ListenPipe creates only to own the name. On
// Windows that instance admits nobody; go-winio never serves it, so under
// Wine that client's first write would block forever. Opening and closing
// the pipe once uses the instance up.
func wineUseFirstInstance(path string) {
	if h, err := openPipe(path); err == nil {
		windows.CloseHandle(h)
	}
	// On failure (the descriptor keeps us out, say) every client fails
	// the same way, so there is nothing to work around.
}

// openPipe opens path as a client, without waiting for a busy pipe.
func openPipe(path string) (windows.Handle, error) {
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return windows.InvalidHandle, err
	}
	return windows.CreateFile(p, windows.GENERIC_READ|windows.GENERIC_WRITE, 0, nil, windows.OPEN_EXISTING, 0, 0)
}
