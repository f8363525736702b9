// Package bench holds only benchmarks: the enforcer back-ends side by side
// (time to block 1, 1k and 100k addresses with the nft back-end, with
// `nft -f` of the same elements and with the iptables back-end; loopback
// throughput with 0 and 100k blocked addresses). They need root, nft,
// iptables and iperf3, run in network namespaces they create, and run only
// with -bench:
//
//	go test -run '^$' -bench . -benchtime 3x ./enforce/internal/bench/
//
// The iptables back-end at 100k addresses (200k linear rules: several
// seconds per block, and loopback traffic crawls through them) runs only
// with PROCWALL_BENCH_IPTABLES_100K=1; 10k is measured instead.
package bench
