// Package leakcheck fails a test binary that leaks goroutines or file
// descriptors: call it from TestMain.
//
//	func TestMain(m *testing.M) { os.Exit(leakcheck.Main(m)) }
//
// It records the goroutines and open descriptors before the tests, runs
// them, and then waits (up to a grace period, for goroutines that are
// finishing) until both are back to where they were. What is left is
// printed — each leaked goroutine's stack, each leaked descriptor's target
// — and the exit code is non-zero.
package leakcheck
