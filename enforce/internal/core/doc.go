// Package core is the part every persistent back-end shares: the
// interception configuration in memory, the protected set, the state file
// and the order of operations (check, change the packet filter, persist,
// roll back on failure). A back-end supplies only how to change its packet
// filter.
//
// A Core is safe for concurrent use; it calls its Backend with its lock
// held, so a Backend needs no locking of its own.
package core
