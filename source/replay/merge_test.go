package replay

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/procwall/procwall/source"
)

// nat returns a native exit line for pid at second sec of 10:00.
func nat(pid, sec string) string {
	return `{"ts":"2026-11-22T10:00:0` + sec + `Z","type":"exit","pid":` + pid + `}` + "\n"
}

// sys returns a Sysmon XML exit event line for pid at second sec.
func sys(pid, sec string) string {
	return `<Event><System><EventID>5</EventID></System><EventData><Data Name="UtcTime">2026-11-22 10:00:0` + sec +
		`</Data><Data Name="ProcessId">` + pid + `</Data></EventData></Event>` + "\n"
}

func origins(evs []source.Event) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, ev.Origin)
	}
	return out
}

func TestMergeOrderAndStability(t *testing.T) {
	a := nat("1", "1") + nat("2", "3") + nat("3", "3") + nat("4", "5")
	b := nat("5", "2") + nat("6", "3") + nat("7", "4")
	c := "Nov 22 h sysmon: " + sys("8", "3")
	for _, how := range []string{"Merge", "Open"} {
		t.Run(how, func(t *testing.T) {
			var r *Reader
			if how == "Merge" {
				r = Merge(New("a", strings.NewReader(a)), New("b", strings.NewReader(b)), nil, New("c", strings.NewReader(c)))
			} else {
				dir := t.TempDir()
				var paths []string
				for _, f := range []struct{ name, text string }{{"a", a}, {"b", b}, {"c", c}} {
					p := filepath.Join(dir, f.name)
					if err := os.WriteFile(p, []byte(f.text), 0o600); err != nil {
						t.Fatal(err)
					}
					paths = append(paths, p)
				}
				var err error
				if r, err = Open(paths); err != nil {
					t.Fatal(err)
				}
			}
			evs, err := readAll(t, r)
			if err != nil {
				t.Fatal(err)
			}
			var pids []int
			for _, ev := range evs {
				pids = append(pids, ev.PID)
			}
			// Ties at :03 keep input order: a's two, then b's, then c's.
			if want := []int{1, 5, 2, 3, 6, 8, 7, 4}; !reflect.DeepEqual(pids, want) {
				t.Errorf("pids %v, want %v (origins %v)", pids, want, origins(evs))
			}
			st := r.Stats()
			if st.Events != 8 || st.OutOfOrder != 0 || len(st.Inputs) != 3 {
				t.Errorf("stats %+v", st)
			}
			if st.Inputs[0].Events != 4 || st.Inputs[1].Events != 3 || st.Inputs[2].Events != 1 ||
				st.Inputs[0].Format != FormatNative || st.Inputs[2].Format != FormatSysmon {
				t.Errorf("per-input stats %+v", st.Inputs)
			}
		})
	}
}

// TestMergeOutOfOrder pins the documented behaviour for timestamps that go
// backwards inside one input: file order is kept, the event is counted, and
// the merge places it by its own ts against the other inputs' heads.
func TestMergeOutOfOrder(t *testing.T) {
	a := nat("1", "1") + nat("2", "5") + nat("3", "2") + nat("4", "6")
	b := nat("5", "3") + nat("6", "4")
	r := Merge(New("a", strings.NewReader(a)), New("b", strings.NewReader(b)))
	evs, err := readAll(t, r)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"a:1", "b:1", "b:2", "a:2", "a:3", "a:4"}
	if got := origins(evs); !reflect.DeepEqual(got, want) {
		t.Errorf("order %v, want %v", got, want)
	}
	st := r.Stats()
	if st.OutOfOrder != 1 || st.Inputs[0].OutOfOrder != 1 || st.Inputs[1].OutOfOrder != 0 {
		t.Errorf("out-of-order counts %+v", st)
	}
	if len(r.Errors()) != 0 {
		t.Errorf("out-of-order reported as errors: %v", r.Errors())
	}

	// Across files, out-of-order is what the merge sorts: no count.
	r = Merge(New("x", strings.NewReader(nat("1", "9"))), New("y", strings.NewReader(nat("2", "1"))))
	evs, err = readAll(t, r)
	if err != nil || !reflect.DeepEqual(origins(evs), []string{"y:1", "x:1"}) || r.Stats().OutOfOrder != 0 {
		t.Errorf("%v %v %+v", origins(evs), err, r.Stats())
	}
}

func TestMergeStrictLenient(t *testing.T) {
	a := nat("1", "1") + nat("2", "4")
	b := nat("3", "2") + "{broken\n" + nat("4", "5")
	// Strict: the merge stops at b's bad line, after the events before it.
	r := Merge(New("a", strings.NewReader(a)), New("b", strings.NewReader(b)))
	evs, err := readAll(t, r)
	var pe *ParseError
	if !errors.As(err, &pe) || pe.File != "b" || pe.Line != 2 {
		t.Fatalf("strict error %v", err)
	}
	if got := origins(evs); !reflect.DeepEqual(got, []string{"a:1", "b:1"}) {
		t.Errorf("strict events %v", got)
	}
	// Lenient: everything else, merged; errors kept.
	r = Merge(New("a", strings.NewReader(a+"oops\n"), WithLenient(true)), New("b", strings.NewReader(b), WithLenient(true)))
	evs, err = readAll(t, r)
	if err != nil {
		t.Fatal(err)
	}
	if got := origins(evs); !reflect.DeepEqual(got, []string{"a:1", "b:1", "a:2", "b:3"}) {
		t.Errorf("lenient events %v", got)
	}
	errs := r.Errors()
	if len(errs) != 2 || !strings.HasPrefix(errs[0].Error(), "a:3: ") || !strings.HasPrefix(errs[1].Error(), "b:2: ") {
		t.Errorf("lenient errors %v", errs)
	}
	if st := r.Stats(); st.ParseErrors != 2 || st.Events != 4 || st.Lines != 6 {
		t.Errorf("stats %+v", st)
	}
	// Lenient via Open's options.
	dir := t.TempDir()
	pa, pb := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	os.WriteFile(pa, []byte(a), 0o600)
	os.WriteFile(pb, []byte(b), 0o600)
	r, err = Open([]string{pa, pb}, WithLenient(true), WithFormat(FormatNative))
	if err != nil {
		t.Fatal(err)
	}
	if evs, err := readAll(t, r); err != nil || len(evs) != 4 || len(r.Errors()) != 1 {
		t.Errorf("Open lenient: %d events, %v, errors %v", len(evs), err, r.Errors())
	}
}

func TestMergeMixedFormats(t *testing.T) {
	risk := `{"ts":"2022-11-24T08:30:01.5Z","type":"risk","pid":2345,"level":"critical","reason":"curl | sh"}` + "\n"
	f, err := os.Open("testdata/seed002.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := Merge(New("seed002", f), New("risk", strings.NewReader(risk)))
	evs, err := readAll(t, r)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, ev := range evs {
		kinds = append(kinds, ev.Kind.String())
	}
	if want := []string{"exec", "exec", "risk", "connect", "file", "dns"}; !reflect.DeepEqual(kinds, want) {
		t.Errorf("kinds %v, want %v", kinds, want)
	}
}

type failingReader struct{ n int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n > 0 {
		f.n--
		return copy(p, nat("1", "1")), nil
	}
	return 0, errors.New("disk on fire")
}

// TestConcurrentStatsErrors reads while another goroutine polls Stats and
// Errors (run with -race), and checks that a read error ends reading and is
// reported.
func TestConcurrentStatsErrors(t *testing.T) {
	r := Merge(New("bad", strings.NewReader(strings.Repeat("x\n"+nat("2", "2"), 200)), WithLenient(true)),
		New("fail", &failingReader{n: 50}, WithLenient(true)))
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
				_ = r.Stats()
				_ = r.Errors()
			}
		}
	}()
	var err error
	for i := 0; i < 10000 && err == nil; i++ {
		_, err = r.Next()
	}
	close(stop)
	<-done
	var oe *source.OpError
	if !errors.As(err, &oe) || !strings.Contains(err.Error(), "disk on fire") || !strings.Contains(err.Error(), "fail") {
		t.Fatalf("read error %v, want an OpError naming the input", err)
	}
	if _, err2 := r.Next(); err2 != err {
		t.Errorf("error not sticky: %v", err2)
	}
	errs := r.Errors()
	if len(errs) == 0 || errs[len(errs)-1] != err {
		t.Errorf("Errors() does not end with the read error: %v", errs)
	}
}
