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
// Socket hygiene (docs/SECURITY.md §1) is part of [Listen], which takes
// these steps:
//
//  1. A missing socket directory is created with mode 0700. The directory
//     must be a real directory (not a symlink), owned by the caller's euid
//     or root, that group and others cannot write, so a sticky /tmp is
//     refused too ([ErrUnsafeDir]; [AllowSharedDir] accepts a shared
//     one). It is opened once and what follows uses that descriptor.
//  2. An exclusive flock on <path>.lock (created 0600, opened without
//     following a symlink) makes this listener the path's only broker for
//     its life; the holder's pid is written into it. A second Listen fails
//     with [ErrBrokerRunning] naming that pid.
//  3. A file already at the path is removed only under the lock, and only
//     if it is a socket that a dial proves nobody listens on; a live
//     broker is never displaced and a non-socket never deleted. macOS and
//     FreeBSD refuse a dial when the listener's queue is full as well, so
//     there the refusal must repeat over about 100ms.
//  4. The socket is bound in a fresh directory beside the path, checked
//     through its descriptor to be ours with mode 0700, so nobody else can
//     reach the socket there while chmod gives it its mode (0600 unless
//     [WithMode]). It is then renamed onto the path (never over a file
//     that appeared meanwhile), the directory is removed, and only then
//     does the socket listen: no client can connect while it is more open
//     than its mode.
//  5. The listener's Close removes the socket file and the lock file only
//     if they are still the ones it created, and then drops the lock.
//
// [Dial] checks the listener before returning: the credentials the kernel
// recorded when it called listen must be the caller's own euid or root, or
// the uid named with [ExpectServerUID] ([ErrUntrustedBroker]).
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
// before any client can open it; remote clients are always rejected.
// go-winio's ListenPipe creates the first instance with NtCreateNamedPipeFile
// and FILE_CREATE, which is what FILE_FLAG_FIRST_PIPE_INSTANCE asks of
// CreateNamedPipe: it fails if a pipe of that name exists, whoever holds
// it, and the listener keeps that instance open for its life. A pipe
// exists only while some process holds it open, so there is no stale
// endpoint to clean up: Listen on a live pipe fails with [ErrBrokerRunning],
// naming the holder's pid when a free instance lets it ask. [PeerOf] reads
// the client's process id from the pipe and its user's SID from the token
// the client presents. [Dial] checks the server's process token: its user
// must be the caller's own, LocalSystem, or hold Administrators, or be the
// SID named with [ExpectServerSID] ([ErrUntrustedBroker]). When the token
// cannot be opened (a LocalSystem broker, a client that is not an
// administrator), the pipe's owner stands in for it.
//
// Errors match the sentinels below with [errors.Is] and name the path in
// words a person can act on. Other systems get errors matching
// [ErrUnsupported].
package transport
