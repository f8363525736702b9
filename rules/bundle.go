package rules

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Schema is the JSON Schema (draft 2020-12) of a rule bundle. It documents
// the format; [ParseBundle] checks everything it says and more (references,
// digests, addresses).
//
//go:embed schema.json
var Schema []byte

// FormatVersion is the bundle format this package reads.
const FormatVersion = 1

// Bundle is a parsed rule bundle: the rules, their execution order per
// monitor-point type, the named lists they refer to and the watched paths.
// A Bundle is a plain value; [Engine.Load] compiles it.
type Bundle struct {
	// Format is the bundle format version, 1.
	Format int `json:"format"`
	// Version names this bundle (any non-empty string; the server's
	// release identifier). [Engine.Version] reports the active one.
	Version string `json:"version"`
	// Order gives, per monitor-point type ("general", "self_protection"),
	// the filter layers in execution order. A missing entry takes
	// [DefaultOrder].
	Order map[string][]string `json:"order,omitempty"`
	// Lists are named value lists that rules refer to as "@name".
	Lists map[string]List `json:"lists,omitempty"`
	// Rules, in file order (the tie-breaker after layer and priority).
	Rules []RuleSpec `json:"rules"`
	// SelfProtection lists procwall's own files and directories: events
	// whose target is one of them belong to the self-protection monitor
	// point. A trailing "/" names a directory and everything under it.
	SelfProtection []string `json:"self_protection,omitempty"`
	// Persistence lists the general-policy write locations to watch
	// (cron, systemd units, authorized_keys, ld.so.preload, ...). When
	// absent, [DefaultPersistence] applies.
	Persistence []string `json:"persistence,omitempty"`
}

// List is a named list of values: inline Items, or a reference to a file
// (Path, relative to the bundle's directory) holding one value per line,
// optionally pinned to a Version that the file's first line
// "# version: V" must carry.
//
// A referenced file is read through the bundle's [ListLoader] (next to the
// bundle file, or at the URL relative to the bundle's URL). SHA256, when
// set, pins the file's content; a signed bundle must pin every referenced
// list so that its signature covers them.
type List struct {
	Items   []string `json:"items,omitempty"`
	Path    string   `json:"path,omitempty"`
	Version string   `json:"version,omitempty"`
	SHA256  string   `json:"sha256,omitempty"`
}

// ListLoader reads a referenced list file by its bundle-relative path.
type ListLoader func(path string) ([]byte, error)

// DirLoader reads list files from dir.
func DirLoader(dir string) ListLoader {
	return func(p string) ([]byte, error) { return os.ReadFile(filepath.Join(dir, filepath.FromSlash(p))) }
}

// RuleSpec is one rule as written in a bundle.
type RuleSpec struct {
	ID          string `json:"id"`
	Action      string `json:"action"` // allow, deny or ask
	Priority    int    `json:"priority,omitempty"`
	Description string `json:"description,omitempty"`
	// Layer is the filter layer the rule belongs to; empty: derived from
	// its first condition (signer → signature, md5, sha256, exe/name/
	// cmdline/parent/user → process, dst/port → destination, target).
	Layer string `json:"layer,omitempty"`
	// Points limits the rule to monitor-point types; empty: every type
	// whose order has the rule's layer.
	Points []string `json:"points,omitempty"`
	// Ops limits the rule to operations (exec, connect, open, write);
	// empty: all.
	Ops   []string `json:"ops,omitempty"`
	Match Match    `json:"match"`
}

// Match holds a rule's conditions. Every non-empty field must match (and);
// within a field any value may match (or). A value "@name" stands for the
// values of the named list. Values with "*" or "?" are wildcards ("*"
// matches any run of characters, "/" included); path values ending in "/"
// match everything under that directory.
type Match struct {
	Signer  []string `json:"signer,omitempty"`  // signer names: debian:coreutils, ed25519:acme
	MD5     []string `json:"md5,omitempty"`     // hex digests of the executable
	SHA256  []string `json:"sha256,omitempty"`  // hex digests of the executable
	Exe     []string `json:"exe,omitempty"`     // executable path
	Name    []string `json:"name,omitempty"`    // executable base name
	Cmdline []string `json:"cmdline,omitempty"` // argv joined by spaces
	Parent  []string `json:"parent,omitempty"`  // parent executable: a path, or a base name
	User    []string `json:"user,omitempty"`    // user name or numeric uid
	Dst     []string `json:"dst,omitempty"`     // destination address or prefix
	Port    []string `json:"port,omitempty"`    // destination port or range lo-hi
	Target  []string `json:"target,omitempty"`  // target file path
}

// Filter layers, the units of execution order.
const (
	LayerUser        = "user" // user-defined remembered decisions
	LayerSignature   = "signature"
	LayerMD5         = "md5"
	LayerSHA256      = "sha256"
	LayerProcess     = "process"
	LayerDestination = "destination"
	LayerTarget      = "target"
)

var allLayers = []string{LayerUser, LayerSignature, LayerMD5, LayerSHA256, LayerProcess, LayerDestination, LayerTarget}

// DefaultOrder is the execution order of each monitor-point type when a
// bundle gives none: the seed's order (user decisions first for general
// policy; signature then process lists for self-protection).
var DefaultOrder = map[string][]string{
	"general":         {LayerUser, LayerSignature, LayerMD5, LayerSHA256, LayerProcess, LayerDestination, LayerTarget},
	"self_protection": {LayerSignature, LayerMD5, LayerSHA256, LayerProcess, LayerTarget},
}

// DefaultPersistence is the general-policy set of persistence locations.
var DefaultPersistence = []string{
	"/etc/cron.d/", "/etc/crontab", "/var/spool/cron/", "/etc/systemd/system/",
	"/usr/lib/systemd/system/", "/root/.ssh/authorized_keys", "/etc/ld.so.preload",
	"/etc/rc.local", "/etc/profile.d/", "/etc/init.d/",
}

// BundleError is a problem in a bundle, located by a JSON-pointer-like
// path ("rules[3].match.md5[0]").
type BundleError struct {
	Where string
	Err   error
}

// Error implements error.
func (e *BundleError) Error() string {
	if e.Where == "" {
		return "bundle: " + e.Err.Error()
	}
	return "bundle: " + e.Where + ": " + e.Err.Error()
}

// Unwrap returns the underlying error.
func (e *BundleError) Unwrap() error { return e.Err }

// ErrInvalid is wrapped by every error about a malformed bundle.
var ErrInvalid = errors.New("invalid bundle")

// invalid is a validation message that is ErrInvalid.
type invalid string

func (e invalid) Error() string        { return string(e) }
func (e invalid) Is(target error) bool { return target == ErrInvalid }

func bad(where, format string, args ...any) error {
	return &BundleError{Where: where, Err: invalid(fmt.Sprintf(format, args...))}
}

// ParseBundle decodes and validates a bundle. Unknown fields are errors.
// Lists referring to files are read with load (nil: such lists are an
// error).
func ParseBundle(data []byte, load ListLoader) (*Bundle, error) {
	return parseBundle(data, load, false)
}

func parseBundle(data []byte, load ListLoader, pinned bool) (*Bundle, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var b Bundle
	if err := dec.Decode(&b); err != nil {
		return nil, &BundleError{Err: invalid(jsonErr(data, err))}
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, bad("", "trailing data after the bundle object")
	}
	if err := b.resolve(load, pinned); err != nil {
		return nil, err
	}
	if err := b.Validate(); err != nil {
		return nil, err
	}
	return &b, nil
}

// LoadBundle reads and parses the bundle file at path (unsigned).
func LoadBundle(path string) (*Bundle, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load bundle: %w", err)
	}
	b, err := ParseBundle(data, DirLoader(filepath.Dir(path)))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, nil
}

func jsonErr(data []byte, err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		line, col := lineCol(data, int64(len(data)))
		return fmt.Sprintf("line %d column %d: unexpected end of input", line, col)
	case errors.As(err, &se):
		line, col := lineCol(data, se.Offset)
		return fmt.Sprintf("line %d column %d: %v", line, col, se)
	case errors.As(err, &te):
		line, col := lineCol(data, te.Offset)
		return fmt.Sprintf("line %d column %d: field %s: cannot use JSON %s as %v", line, col, te.Field, te.Value, te.Type)
	}
	return err.Error()
}

func lineCol(data []byte, off int64) (int, int) {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	pre := data[:off]
	line := bytes.Count(pre, []byte{'\n'}) + 1
	col := int(off) - bytes.LastIndexByte(pre, '\n')
	return line, col
}

// resolve reads referenced list files into Items.
func (b *Bundle) resolve(load ListLoader, pinned bool) error {
	for name, l := range b.Lists {
		if l.Path == "" {
			continue
		}
		where := "lists." + name
		if len(l.Items) > 0 {
			return bad(where, "has both items and path")
		}
		if load == nil {
			return bad(where, "refers to file %q but the bundle has no location to resolve it in", l.Path)
		}
		if strings.HasPrefix(l.Path, "/") || slices.Contains(strings.Split(l.Path, "/"), "..") {
			return bad(where, "path %q must be relative and stay inside the bundle directory", l.Path)
		}
		if pinned && l.SHA256 == "" {
			return bad(where, "a signed bundle must pin referenced list %q with sha256", l.Path)
		}
		data, err := load(l.Path)
		if err != nil {
			return &BundleError{Where: where, Err: fmt.Errorf("read list %q: %w", l.Path, err)}
		}
		if l.SHA256 != "" {
			if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != l.SHA256 {
				return bad(where, "list file %q does not match its sha256 (tampered or changed)", l.Path)
			}
		}
		items, ver := parseListFile(data)
		if l.Version != "" && ver != l.Version {
			return bad(where, "file %q has version %q, bundle wants %q", l.Path, ver, l.Version)
		}
		l.Items = items
		b.Lists[name] = l
	}
	return nil
}

func parseListFile(data []byte) (items []string, version string) {
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if i == 0 {
			if v, ok := strings.CutPrefix(line, "# version:"); ok {
				version = strings.TrimSpace(v)
				continue
			}
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		items = append(items, line)
	}
	return items, version
}

// Validate checks the bundle's fields and references and reports the first
// problem with its location.
func (b *Bundle) Validate() error {
	if b.Format != FormatVersion {
		return bad("format", "must be %d, have %d", FormatVersion, b.Format)
	}
	if strings.TrimSpace(b.Version) == "" {
		return bad("version", "missing")
	}
	for _, pt := range slices.Sorted(mapKeys(b.Order)) {
		if _, err := parsePoint(pt); err != nil {
			return bad("order", "%v", err)
		}
		seen := map[string]bool{}
		for i, l := range b.Order[pt] {
			if !slices.Contains(allLayers, l) {
				return bad(fmt.Sprintf("order.%s[%d]", pt, i), "unknown layer %q (want one of %s)", l, strings.Join(allLayers, ", "))
			}
			if seen[l] {
				return bad(fmt.Sprintf("order.%s[%d]", pt, i), "layer %q listed twice", l)
			}
			seen[l] = true
		}
	}
	for _, name := range slices.Sorted(mapKeys(b.Lists)) {
		if name == "" || strings.ContainsAny(name, "@ \t") {
			return bad("lists", "bad list name %q", name)
		}
		for i, v := range b.Lists[name].Items {
			if strings.HasPrefix(v, "@") {
				return bad(fmt.Sprintf("lists.%s.items[%d]", name, i), "lists cannot refer to other lists (%q)", v)
			}
		}
	}
	for i, p := range b.SelfProtection {
		if !strings.HasPrefix(p, "/") {
			return bad(fmt.Sprintf("self_protection[%d]", i), "path %q must be absolute", p)
		}
	}
	for i, p := range b.Persistence {
		if !strings.HasPrefix(p, "/") {
			return bad(fmt.Sprintf("persistence[%d]", i), "path %q must be absolute", p)
		}
	}
	ids := map[string]int{}
	for i := range b.Rules {
		r := &b.Rules[i]
		where := fmt.Sprintf("rules[%d]", i)
		if r.ID == "" {
			return bad(where+".id", "missing")
		}
		where = fmt.Sprintf("rules[%d] (%s)", i, r.ID)
		if j, dup := ids[r.ID]; dup {
			return bad(where+".id", "duplicate of rules[%d]", j)
		}
		ids[r.ID] = i
		if _, err := ParseAction(r.Action); err != nil {
			return bad(where+".action", "%v", err)
		}
		layer, err := r.layer()
		if err != nil {
			return bad(where, "%v", err)
		}
		if layer == LayerUser {
			return bad(where+".layer", "the user layer holds remembered decisions, not bundle rules")
		}
		for j, o := range r.Ops {
			if _, err := ParseOp(o); err != nil {
				return bad(fmt.Sprintf("%s.ops[%d]", where, j), "%v", err)
			}
		}
		placed := false
		for j, p := range r.Points {
			if _, err := parsePoint(p); err != nil {
				return bad(fmt.Sprintf("%s.points[%d]", where, j), "%v", err)
			}
			if !slices.Contains(b.order(p), layer) {
				return bad(fmt.Sprintf("%s.points[%d]", where, j), "layer %q is not in the execution order of %q", layer, p)
			}
			placed = true
		}
		if len(r.Points) == 0 {
			for _, p := range []string{"general", "self_protection"} {
				if slices.Contains(b.order(p), layer) {
					placed = true
				}
			}
		}
		if !placed {
			return bad(where, "layer %q is in no monitor point's execution order", layer)
		}
		if err := b.checkMatch(where+".match", &r.Match); err != nil {
			return err
		}
	}
	return nil
}

func (b *Bundle) order(point string) []string {
	if o, ok := b.Order[point]; ok {
		return o
	}
	return DefaultOrder[point]
}

func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func (r *RuleSpec) layer() (string, error) {
	if r.Layer != "" {
		if !slices.Contains(allLayers, r.Layer) {
			return "", invalid(fmt.Sprintf("layer: unknown layer %q", r.Layer))
		}
		return r.Layer, nil
	}
	m := &r.Match
	switch {
	case len(m.Signer) > 0:
		return LayerSignature, nil
	case len(m.MD5) > 0:
		return LayerMD5, nil
	case len(m.SHA256) > 0:
		return LayerSHA256, nil
	case len(m.Exe)+len(m.Name)+len(m.Cmdline)+len(m.Parent)+len(m.User) > 0:
		return LayerProcess, nil
	case len(m.Dst)+len(m.Port) > 0:
		return LayerDestination, nil
	case len(m.Target) > 0:
		return LayerTarget, nil
	}
	return "", invalid("match: no conditions (a rule must match something)")
}

// fields returns the match fields by name, in a fixed order.
func (m *Match) fields() []struct {
	name string
	vals []string
} {
	return []struct {
		name string
		vals []string
	}{
		{"signer", m.Signer}, {"md5", m.MD5}, {"sha256", m.SHA256}, {"exe", m.Exe},
		{"name", m.Name}, {"cmdline", m.Cmdline}, {"parent", m.Parent}, {"user", m.User},
		{"dst", m.Dst}, {"port", m.Port}, {"target", m.Target},
	}
}

func (b *Bundle) checkMatch(where string, m *Match) error {
	for _, f := range m.fields() {
		vals, err := b.expand(fmt.Sprintf("%s.%s", where, f.name), f.vals)
		if err != nil {
			return err
		}
		if len(f.vals) > 0 && len(vals) == 0 {
			// An empty list would make the rule match nothing; say so
			// rather than silently never matching.
			return bad(where+"."+f.name, "refers only to empty lists")
		}
		for i, v := range vals {
			if err := checkValue(f.name, v); err != nil {
				return bad(fmt.Sprintf("%s.%s[%d]", where, f.name, i), "%v", err)
			}
		}
	}
	return nil
}

// expand replaces "@name" references by the list's items.
func (b *Bundle) expand(where string, vals []string) ([]string, error) {
	var out []string
	for i, v := range vals {
		if name, ok := strings.CutPrefix(v, "@"); ok {
			l, found := b.Lists[name]
			if !found {
				return nil, bad(fmt.Sprintf("%s[%d]", where, i), "unknown list %q", name)
			}
			out = append(out, l.Items...)
			continue
		}
		out = append(out, v)
	}
	return out, nil
}

func checkValue(field, v string) error {
	if v == "" {
		return errors.New("empty value")
	}
	switch field {
	case "md5", "sha256":
		n := 32
		if field == "sha256" {
			n = 64
		}
		if len(v) != n {
			return fmt.Errorf("%s digest %q must be %d hex digits", field, v, n)
		}
		if _, err := hex.DecodeString(v); err != nil {
			return fmt.Errorf("%s digest %q is not hex", field, v)
		}
		if strings.ToLower(v) != v {
			return fmt.Errorf("%s digest %q must be lower case", field, v)
		}
	case "exe", "target":
		if !strings.HasPrefix(v, "/") && !strings.HasPrefix(v, "*") {
			return fmt.Errorf("path %q must be absolute", v)
		}
	case "dst":
		if _, err := parsePrefix(v); err != nil {
			return err
		}
	case "port":
		if _, _, err := parsePortRange(v); err != nil {
			return err
		}
	case "user":
		if strings.ContainsAny(v, "*?") {
			return fmt.Errorf("user %q: wildcards are not supported", v)
		}
	}
	return nil
}

func parsePrefix(v string) (netip.Prefix, error) {
	if strings.Contains(v, "/") {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("bad address prefix %q", v)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(v)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("bad address %q", v)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func parsePortRange(v string) (lo, hi uint16, err error) {
	a, b, isRange := strings.Cut(v, "-")
	l, err1 := strconv.ParseUint(a, 10, 16)
	h := l
	var err2 error
	if isRange {
		h, err2 = strconv.ParseUint(b, 10, 16)
	}
	if err1 != nil || err2 != nil || l == 0 || h < l {
		return 0, 0, fmt.Errorf("bad port or range %q (want 1-65535 or lo-hi)", v)
	}
	return uint16(l), uint16(h), nil
}
