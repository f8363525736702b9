package rules

import (
	"bufio"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Verifier establishes who signed a file. Verify returns the signer name
// ("debian:coreutils", "ed25519:acme") or "" when this verifier has no
// signature for the file; an error says why a signature that should be
// there does not hold (for example [ErrTampered]). Verifiers must be safe
// for concurrent use.
type Verifier interface {
	Name() string
	Verify(f *File) (signer string, err error)
}

// ErrTampered is wrapped by verifier errors for a file whose content
// differs from what its package or manifest records.
var ErrTampered = errors.New("file differs from its recorded digest")

// Debian verifies distribution package provenance: the file is owned by an
// installed Debian package (the dpkg database's *.list files) and its MD5
// equals the one in the package's *.md5sums → signer "debian:<package>".
// Root is the file-system root holding var/lib/dpkg ("/" by default). The
// ownership index is read on first use and again when dpkg's status file
// changes. Safe for concurrent use.
type Debian struct {
	Root string

	mu       sync.Mutex
	owners   map[string]string // path → info base name ("libc6:amd64")
	statusMT time.Time
	sums     map[string]map[string]string // info base → path → md5
}

// NewDebian returns a Debian verifier over the dpkg database under root.
func NewDebian(root string) *Debian {
	if root == "" {
		root = "/"
	}
	return &Debian{Root: root}
}

// Name implements Verifier.
func (d *Debian) Name() string { return "debian" }

func (d *Debian) info() string { return filepath.Join(d.Root, "var/lib/dpkg/info") }

// load (re)builds the ownership index when the status file changed.
func (d *Debian) loadLocked() error {
	st, err := os.Stat(filepath.Join(d.Root, "var/lib/dpkg/status"))
	if err != nil {
		return fmt.Errorf("dpkg database: %w", err)
	}
	if d.owners != nil && st.ModTime().Equal(d.statusMT) {
		return nil
	}
	lists, err := filepath.Glob(filepath.Join(d.info(), "*.list"))
	if err != nil {
		return err
	}
	owners := make(map[string]string, 1<<16)
	for _, l := range lists {
		base := strings.TrimSuffix(filepath.Base(l), ".list")
		f, err := os.Open(l)
		if err != nil {
			return fmt.Errorf("dpkg database: %w", err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if p := sc.Text(); p != "" && p != "/." {
				if _, dup := owners[p]; !dup {
					owners[p] = base
				}
			}
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return fmt.Errorf("dpkg database %s: %w", l, err)
		}
	}
	d.owners, d.statusMT, d.sums = owners, st.ModTime(), map[string]map[string]string{}
	return nil
}

// Load reads the ownership index now (it is otherwise read on first use,
// which takes a moment on a full system: call Load before judging events
// that wait for an answer).
func (d *Debian) Load() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.loadLocked()
}

// aliases returns path and its other name under the merged /usr layout.
func aliases(p string) []string {
	out := []string{p}
	for _, d := range []string{"/bin/", "/sbin/", "/lib/", "/lib32/", "/lib64/", "/libx32/"} {
		if strings.HasPrefix(p, "/usr"+d) {
			return append(out, strings.TrimPrefix(p, "/usr"))
		}
		if strings.HasPrefix(p, d) {
			return append(out, "/usr"+p)
		}
	}
	return out
}

// Owner returns the package owning path and the name under which the
// package lists it ("" if none).
func (d *Debian) Owner(path string) (pkg, listed string, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.loadLocked(); err != nil {
		return "", "", err
	}
	for _, p := range aliases(path) {
		if base, ok := d.owners[p]; ok {
			return base, p, nil
		}
	}
	return "", "", nil
}

func (d *Debian) md5For(base, listed string) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	m, ok := d.sums[base]
	if !ok {
		data, err := os.ReadFile(filepath.Join(d.info(), base+".md5sums"))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("dpkg database: %w", err)
		}
		m = map[string]string{}
		for _, line := range strings.Split(string(data), "\n") {
			sum, p, ok := strings.Cut(line, "  ")
			if ok && len(sum) == 32 {
				m["/"+p] = sum
			}
		}
		d.sums[base] = m
	}
	return m[listed], nil
}

// Verify implements Verifier.
func (d *Debian) Verify(f *File) (string, error) {
	base, listed, err := d.Owner(f.Path)
	if err != nil || base == "" {
		return "", err
	}
	want, err := d.md5For(base, listed)
	if err != nil || want == "" {
		return "", err // conffiles and directories have no md5sum
	}
	pkg, _, _ := strings.Cut(base, ":")
	if want != f.MD5 {
		return "", fmt.Errorf("%s: %w: package %s records md5 %s, file has %s", f.Path, ErrTampered, pkg, want, f.MD5)
	}
	return "debian:" + pkg, nil
}

// Ed25519 verifies in-house software signed with ed25519: a detached
// signature next to the file (path + ".sig", made by [SignFile]), or an
// entry in a signed digest manifest added with [Ed25519.AddManifest] →
// signer "ed25519:<key name>". Safe for concurrent use.
type Ed25519 struct {
	keys Keyring

	mu       sync.RWMutex
	manifest map[string]manifestEntry // path → entry
}

type manifestEntry struct{ sha256, key string }

// NewEd25519 returns a verifier trusting keys.
func NewEd25519(keys Keyring) *Ed25519 {
	return &Ed25519{keys: keys, manifest: map[string]manifestEntry{}}
}

// Name implements Verifier.
func (v *Ed25519) Name() string { return "ed25519" }

// Manifest is the payload of a signed digest manifest: file paths and their
// SHA-256 digests (lower-case hex).
type Manifest struct {
	Files map[string]string `json:"files"`
}

// AddManifest verifies a signed manifest (an envelope made by [Sign] over
// a JSON [Manifest]) and adds its files.
func (v *Ed25519) AddManifest(data []byte) error {
	payload, key, err := OpenSigned(data, v.keys)
	if err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	var m Manifest
	if err := json.Unmarshal(payload, &m); err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	for p, s := range m.Files {
		if err := checkValue("sha256", s); err != nil || !strings.HasPrefix(p, "/") {
			return fmt.Errorf("manifest: entry %q: bad path or digest", p)
		}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	for p, s := range m.Files {
		v.manifest[p] = manifestEntry{s, key}
	}
	return nil
}

const fileSigContext = "procwall-file-v1\n"

// SignFile writes path + ".sig": a detached signature over the file's
// SHA-256 made with priv under keyName.
func SignFile(priv ed25519.PrivateKey, keyName, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("sign file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("sign file: %w", err)
	}
	_, sum, err := HashFile(f, st.Size(), false, true)
	if err != nil {
		return fmt.Errorf("sign file: %w", err)
	}
	sig := ed25519.Sign(priv, []byte(fileSigContext+sum))
	line := fmt.Sprintf("ed25519 %s %s\n", keyName, base64.StdEncoding.EncodeToString(sig))
	return os.WriteFile(path+".sig", []byte(line), 0o644)
}

// Verify implements Verifier.
func (v *Ed25519) Verify(f *File) (string, error) {
	v.mu.RLock()
	me, ok := v.manifest[f.Path]
	v.mu.RUnlock()
	if ok {
		if me.sha256 != f.SHA256 {
			return "", fmt.Errorf("%s: %w: manifest of key %s records sha256 %s", f.Path, ErrTampered, me.key, me.sha256)
		}
		return "ed25519:" + me.key, nil
	}
	data, err := os.ReadFile(f.Path + ".sig")
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	fl := strings.Fields(string(data))
	if len(fl) != 3 || fl[0] != "ed25519" {
		return "", fmt.Errorf("%s.sig: not a procwall file signature", f.Path)
	}
	pub, ok := v.keys[fl[1]]
	if !ok {
		return "", fmt.Errorf("%s.sig: %w %q", f.Path, ErrUnknownKey, fl[1])
	}
	sig, err := base64.StdEncoding.DecodeString(fl[2])
	if err != nil || !ed25519.Verify(pub, []byte(fileSigContext+f.SHA256), sig) {
		return "", fmt.Errorf("%s: %w: %w", f.Path, ErrTampered, ErrBadSignature)
	}
	return "ed25519:" + fl[1], nil
}
