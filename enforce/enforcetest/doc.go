// Package enforcetest checks an enforce.Enforcer against the contract
// documented on the interface, the way testing/fstest.TestFS checks a file
// system: anyone writing a custom enforcer calls Run from a test.
//
//	func TestConformance(t *testing.T) {
//		enforcetest.Run(t, func(t *testing.T) enforce.Enforcer {
//			return mybackend.New(...)
//		})
//	}
//
// It also has a Recorder, which wraps an enforcer and keeps a readable log
// of the calls made and their results, and Golden, which compares text with
// a golden file under testdata and shows a line diff, so that what is sent
// to a back-end can be pinned by golden tests.
//
// # Requirements on the enforcer under test
//
// Each call of the constructor returns a fresh enforcer with no blocks whose
// protected set includes loopback (enforce.DefaultProtected, the default of
// every procwall back-end). The suite blocks addresses of the documentation
// ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32)
// only; pointed at a live packet filter, run it in a network namespace.
//
// # Concurrency
//
// Run starts goroutines to check that the enforcer is safe for concurrent
// use and waits for them. A Recorder is safe for concurrent use.
package enforcetest
