// Package netns runs Go code inside a network namespace.
//
// Do locks the calling goroutine's work to an OS thread, moves that thread
// into the namespace, runs fn, and moves it back; sockets fn opens and
// programs it starts (their threads inherit it) live in the namespace. A
// thread that cannot be moved back is discarded rather than reused. It
// needs CAP_SYS_ADMIN. Safe for concurrent use; it starts one goroutine
// per call and waits for it.
package netns
