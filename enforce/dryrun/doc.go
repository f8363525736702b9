// Package dryrun is an enforcer that changes no packet filter: it keeps the
// interception configuration in memory and records what a real back-end
// would have added and removed. procwall replay uses it, and tests use it to
// assert on containment without privileges.
//
// An Enforcer is safe for concurrent use.
package dryrun
