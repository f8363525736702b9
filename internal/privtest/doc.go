// Package privtest is procwall's single gate for tests that need root or a
// kernel feature, and its harness for network namespaces.
//
// A test calls Require (or one of the Require* helpers) first. When the
// privilege or feature is missing the test is skipped with the reason —
// unless the environment variable PROCWALL_TEST_PRIVILEGED=1 is set (CI sets
// it), in which case the test fails instead: a privileged test that CI
// should run never skips silently.
//
// Every netfilter change a test makes happens inside a namespace created by
// NewNetNS and removed by the test's cleanup; the host namespace's ruleset is
// never touched.
package privtest
