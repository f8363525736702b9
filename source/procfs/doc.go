// Package procfs reads a snapshot of the running processes from /proc: the
// seed of a process tree at start-up and the truth a live source resyncs
// to after it lost events.
//
// An [FS] is rooted at a directory laid out like /proc ([NewFS] with "" or
// "/proc" for the real one; tests use fixture trees under testdata/). Each
// file is read by a readX(path) function that opens it and hands the bytes
// to a parseX(io.Reader) function, so every parser is tested on fixtures.
//
// # Identity and start time
//
// A process is identified by (pid, start). Start is field 22 of
// /proc/<pid>/stat (starttime, clock ticks since boot) times 1e9/CLK_TCK,
// i.e. nanoseconds since boot; CLK_TCK is 100 on Linux. Every live source of
// procwall uses this convention, so an identity read here matches one
// reported by source/procconn.
//
// # Vanishing processes
//
// A process may exit while it is being read. [FS.Process] reads
// /proc/<pid>/stat first and again last; if either read fails because the
// process is gone, or the second read names a different process (the pid
// was reused), or the process has begun to exit (PF_EXITING: its exe and
// argv may already be gone), it returns an error wrapping [ErrGone] (which
// also matches os.ErrNotExist). Fields are never guessed. A zombie is
// returned with State 'Z' and no exe, cwd or argv. [FS.Processes] leaves processes
// that vanish during the snapshot out of it. Threads are not processes: the
// kernel does not list thread ids in /proc, and [FS.Process] on a thread id
// returns an error wrapping [ErrThread].
//
// # Lifecycle, privileges and concurrency
//
// An FS holds only its root path: there is nothing to close, and it is safe
// for concurrent use. Reading /proc needs no privilege, but without root
// (CAP_SYS_PTRACE) another user's exe and cwd links are unreadable; those
// fields are then left empty. [SnapshotSource] is a source.Source over one
// snapshot; like every source, its Next is called from one goroutine at a
// time and Close may be called from any goroutine.
package procfs
