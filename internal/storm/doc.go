// Package storm starts short-lived child processes fast, for the proc
// connector's fork-storm tests and the side-by-side comparison with
// forkstat. On linux/amd64 a child is made with a raw vfork that exits at
// once with a chosen code (tens of thousands per second); elsewhere it runs
// /bin/true-like programs.
package storm
