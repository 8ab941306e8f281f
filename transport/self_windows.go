package transport

import (
	"fmt"
	"os"

	"golang.org/x/sys/windows"
)

func self() (Peer, error) {
	p := Peer{UID: noID, GID: noID, PID: os.Getpid()}
	sid, err := tokenSID(windows.GetCurrentProcessToken())
	if err != nil {
		return p, fmt.Errorf("transport: own identity: %w", err)
	}
	p.SID = sid
	return p, nil
}
