//go:build !linux

package eventbus

// peerExe is empty where the OS does not reveal a peer's executable: a
// policy that names executables refuses such peers (fails closed).
func peerExe(int) string { return "" }
