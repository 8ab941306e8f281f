// Package transport opens the broker's local endpoint (a Unix domain socket,
// or a named pipe on Windows) and reads a peer's kernel-verified identity.
//
// [Listen] and [Dial] take a socket path or pipe name; [DefaultPath] gives
// the per-user default. [PeerOf] reports the identity of the process at the
// other end of a connection as the kernel recorded it at connect time, so
// access control never trusts what a client says about itself; [Self]
// gives the calling process's own identity in the same form.
//
// # Unix domain sockets (Linux, macOS, FreeBSD)
//
// Socket hygiene (docs/SECURITY.md §1) is part of [Listen]:
//
//   - The socket file gets mode 0600 (see [WithMode]) before the socket
//     listens, so no client can connect while it is more open than that.
//   - A missing parent directory is created with mode 0700; the default
//     per-user directory must be owned by the caller and not writable by
//     group or others ([ErrUnsafeDir]).
//   - A file already at the path is removed only if it is a socket and a
//     dial proves nobody listens on it; a live broker is never displaced
//     ([ErrBrokerRunning]) and a non-socket is never deleted. macOS and
//     FreeBSD refuse a dial when the listener's queue is full as well, so
//     there the refusal must repeat over about 100ms.
//   - The listener's Close removes the socket file only if it is still the
//     one that listener created.
//
// [PeerOf] reads SO_PEERCRED on Linux and LOCAL_PEERCRED on macOS and
// FreeBSD (on FreeBSD 13 and later the xucred holds the pid too), plus
// LOCAL_PEERPID on macOS; see [Peer] for what each reveals.
// The default path is the same on all three: /tmp/eventbus-<uid> unless
// XDG_RUNTIME_DIR is set (on macOS $TMPDIR is per user and differs between
// a root broker and a user's client, so it is not used).
//
// # Named pipes (Windows)
//
// The pipe is created through github.com/Microsoft/go-winio with a security
// descriptor, [DefaultSDDL] unless [WithSDDL] says otherwise, in place
// before any client can open it; remote clients are always rejected. A
// pipe exists only while some process holds it open, so there is no stale
// endpoint to clean up: Listen on a live pipe fails with
// [ErrBrokerRunning]. [PeerOf] reads the client's process id from the pipe
// and its user's SID from the token the client presents.
//
// Errors match the sentinels below with [errors.Is] and name the path in
// words a person can act on. Other systems get errors matching
// [ErrUnsupported].
package transport
