package rules

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Remember is how long a person's choice applies.
type Remember uint8

// Durations of a remembered choice.
const (
	Once         Remember = iota // this event only: nothing is remembered
	UntilRestart                 // in memory until the agent restarts
	For                          // for Answer.Duration, persisted
	Always                       // forever, persisted
)

var rememberNames = [...]string{"once", "until-restart", "for", "always"}

// String returns once, until-restart, for or always.
func (r Remember) String() string {
	if int(r) < len(rememberNames) {
		return rememberNames[r]
	}
	return "remember(" + strconv.Itoa(int(r)) + ")"
}

// UserRule is a remembered decision: every operation of the process
// running Exe gets Action, until Expires (zero: no expiry).
type UserRule struct {
	ID      string    `json:"id"`
	Exe     string    `json:"exe"`
	Action  Action    `json:"action"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires,omitzero"`
	// Persist is false for until-restart rules, which are never saved.
	Persist bool `json:"-"`
}

// UserRules is the store of remembered decisions, persisted as a JSON file
// (written atomically) when it has a path. It is safe for concurrent use.
type UserRules struct {
	path  string
	mu    sync.RWMutex
	byExe map[string]*UserRule
	seq   int
}

// NewUserRules returns an empty store saving to path ("" : memory only).
func NewUserRules(path string) *UserRules {
	return &UserRules{path: path, byExe: map[string]*UserRule{}}
}

// OpenUserRules loads the store at path (an absent file is an empty
// store). Expired rules are dropped.
func OpenUserRules(path string) (*UserRules, error) {
	u := NewUserRules(path)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return u, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open user rules: %w", err)
	}
	var list []UserRule
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&list); err != nil {
		return nil, fmt.Errorf("open user rules %s: %w", path, err)
	}
	now := time.Now()
	for i, r := range list {
		if r.Exe == "" || r.ID == "" || (r.Action != Allow && r.Action != Deny) {
			return nil, fmt.Errorf("open user rules %s: entry %d: needs id, exe and action allow or deny", path, i)
		}
		if !r.Expires.IsZero() && !now.Before(r.Expires) {
			continue
		}
		r.Persist = true
		u.byExe[r.Exe] = &r
		if n, err := strconv.Atoi(r.ID); err == nil && n > u.seq {
			u.seq = n
		}
	}
	return u, nil
}

// Add remembers r for rem (d is the duration of For) and saves the store
// if the rule persists. It replaces an earlier rule for the same Exe.
func (u *UserRules) Add(r UserRule, rem Remember, d time.Duration, now time.Time) (UserRule, error) {
	if r.Exe == "" || (r.Action != Allow && r.Action != Deny) {
		return r, errors.New("user rule: needs exe and action allow or deny")
	}
	switch rem {
	case Once:
		return r, errors.New("user rule: a once-only choice is not remembered")
	case UntilRestart:
		r.Persist = false
	case For:
		if d <= 0 {
			return r, fmt.Errorf("user rule: duration must be > 0, have %v", d)
		}
		r.Expires = now.Add(d)
		r.Persist = true
	case Always:
		r.Persist = true
	default:
		return r, fmt.Errorf("user rule: unknown duration %v", rem)
	}
	r.Created = now
	u.mu.Lock()
	defer u.mu.Unlock()
	u.seq++
	r.ID = strconv.Itoa(u.seq)
	old := u.byExe[r.Exe]
	u.byExe[r.Exe] = &r
	if r.Persist || (old != nil && old.Persist) {
		if err := u.saveLocked(); err != nil {
			return r, err
		}
	}
	return r, nil
}

// Lookup returns the unexpired rule for req's executable.
func (u *UserRules) Lookup(req *Request, now time.Time) (UserRule, bool) {
	return u.lookup(req.Exe, func() time.Time { return now })
}

// lookup reads the clock only for a rule that can expire.
func (u *UserRules) lookup(exe string, now func() time.Time) (UserRule, bool) {
	if exe == "" {
		return UserRule{}, false
	}
	u.mu.RLock()
	r := u.byExe[exe]
	u.mu.RUnlock()
	if r == nil || (!r.Expires.IsZero() && !now().Before(r.Expires)) {
		return UserRule{}, false
	}
	return *r, true
}

// Remove forgets the rule with the given id.
func (u *UserRules) Remove(id string) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	for exe, r := range u.byExe {
		if r.ID == id {
			delete(u.byExe, exe)
			return u.saveLocked()
		}
	}
	return fmt.Errorf("user rule %q: not found", id)
}

// List returns the rules, sorted by id.
func (u *UserRules) List() []UserRule {
	u.mu.RLock()
	defer u.mu.RUnlock()
	out := make([]UserRule, 0, len(u.byExe))
	for _, r := range u.byExe {
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b UserRule) int {
		x, _ := strconv.Atoi(a.ID)
		y, _ := strconv.Atoi(b.ID)
		return x - y
	})
	return out
}

func (u *UserRules) saveLocked() error {
	if u.path == "" {
		return nil
	}
	var list []UserRule
	for _, r := range u.byExe {
		if r.Persist {
			list = append(list, *r)
		}
	}
	slices.SortFunc(list, func(a, b UserRule) int {
		x, _ := strconv.Atoi(a.ID)
		y, _ := strconv.Atoi(b.ID)
		return x - y
	})
	if list == nil {
		list = []UserRule{}
	}
	data, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return fmt.Errorf("save user rules: %w", err)
	}
	if err := writeAtomic(u.path, append(data, '\n')); err != nil {
		return fmt.Errorf("save user rules: %w", err)
	}
	return nil
}

// writeAtomic writes data to path through a temporary file and a rename.
func writeAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}
