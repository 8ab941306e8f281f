// Package transport opens the broker's local endpoint (a Unix domain socket)
// and reads a peer's kernel-verified identity.
//
// [Listen] and [Dial] take a socket path; [DefaultPath] gives the per-user
// default. [PeerOf] reports the uid, gid and pid of the process at the other
// end of an accepted connection, as the kernel recorded them at connect time,
// so access control never trusts what a client says about itself.
//
// Socket hygiene (SPEC.md §7) is part of [Listen]:
//
//   - The socket file gets mode 0600 (see [WithMode]) before the socket
//     listens, so no client can connect while it is more open than that.
//   - A missing parent directory is created with mode 0700; the default
//     per-user directory must be owned by the caller and not writable by
//     group or others ([ErrUnsafeDir]).
//   - A file already at the path is removed only if it is a socket and a
//     dial proves nobody listens on it; a live broker is never displaced
//     ([ErrBrokerRunning]) and a non-socket is never deleted.
//   - The listener's Close removes the socket file only if it is still the
//     one that listener created.
//
// Errors match the sentinels below with [errors.Is] and name the path in
// words a person can act on.
//
// Only Linux is implemented so far; on other systems every call returns an
// error matching [ErrUnsupported].
package transport
