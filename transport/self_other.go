//go:build !windows

package transport

import "os"

func self() (Peer, error) {
	return Peer{UID: uint32(os.Geteuid()), GID: uint32(os.Getegid()), PID: os.Getpid()}, nil
}
