package provenance

import (
	"encoding/json"
	"fmt"
	"os"
	"path"
	"regexp"
	"strings"
)

// Rule is a simplification rule of step 2: processes it matches are of no
// interest and are dropped from the graph; their children are re-linked to
// the nearest kept ancestor so that no path is lost. A rule with both
// Image and CommandLine needs both to match. The alert's own process is
// never dropped.
type Rule struct {
	// Name is free text for people.
	Name string `json:"name,omitempty"`
	// Image is a glob (path.Match syntax) on the image's base name
	// ("bash", "python3*"), or on the full path when it contains a '/'.
	// Several patterns may be given separated by '|' ("bash|su").
	Image string `json:"image,omitempty"`
	// CommandLine is a regular expression (RE2) searched in the command
	// line (argv joined by spaces).
	CommandLine string `json:"commandline,omitempty"`
	// Resources says what becomes of a dropped process's own resources:
	// "hoist" (the default) attaches them to the nearest kept ancestor
	// (or, above the alert, the nearest kept process towards it);
	// "discard" drops them with the process.
	Resources string `json:"resources,omitempty"`
}

// DefaultRules are seed 002's rules: the shells bash and su are of no
// interest.
func DefaultRules() []Rule {
	return []Rule{{Name: "shell", Image: "bash"}, {Name: "su", Image: "su"}}
}

type compiledRule struct {
	images  []string
	cmd     *regexp.Regexp
	discard bool
}

func compileRules(rules []Rule) ([]compiledRule, error) {
	out := make([]compiledRule, 0, len(rules))
	for i, r := range rules {
		fail := func(format string, args ...any) error {
			return &OpError{Op: "rule", Err: fmt.Errorf("%w: rule %d (%q): "+format, append([]any{ErrBadRule, i, r.Name}, args...)...)}
		}
		var c compiledRule
		if r.Image == "" && r.CommandLine == "" {
			return nil, fail("needs image or commandline")
		}
		if r.Image != "" {
			for p := range strings.SplitSeq(r.Image, "|") {
				p = strings.TrimSpace(p)
				if _, err := path.Match(p, ""); err != nil || p == "" {
					return nil, fail("bad image pattern %q", p)
				}
				c.images = append(c.images, p)
			}
		}
		if r.CommandLine != "" {
			re, err := regexp.Compile(r.CommandLine)
			if err != nil {
				return nil, fail("bad commandline pattern: %v", err)
			}
			c.cmd = re
		}
		switch r.Resources {
		case "", "hoist":
		case "discard":
			c.discard = true
		default:
			return nil, fail("resources must be hoist or discard, have %q", r.Resources)
		}
		out = append(out, c)
	}
	return out, nil
}

func (c *compiledRule) match(exe string, argv []string) bool {
	if len(c.images) > 0 {
		img := exe
		if img == "" && len(argv) > 0 {
			img = argv[0]
		}
		if img == "" {
			return false
		}
		ok := false
		for _, p := range c.images {
			subject := baseName(img)
			if strings.Contains(p, "/") {
				subject = img
			}
			if m, _ := path.Match(p, subject); m {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if c.cmd != nil && !c.cmd.MatchString(strings.Join(argv, " ")) {
		return false
	}
	return true
}

// ruleFile is the JSON document LoadRules reads.
type ruleFile struct {
	Drop []Rule `json:"drop"`
}

// ParseRules reads a rules document: {"drop": [{"image": "bash"}, ...]}
// (a bare JSON array of rules is accepted too) and checks every rule.
func ParseRules(data []byte) ([]Rule, error) {
	var rules []Rule
	trim := strings.TrimSpace(string(data))
	if strings.HasPrefix(trim, "[") {
		if err := json.Unmarshal(data, &rules); err != nil {
			return nil, &OpError{Op: "rule", Err: fmt.Errorf("%w: %v", ErrBadRule, err)}
		}
	} else {
		var f ruleFile
		dec := json.NewDecoder(strings.NewReader(trim))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil {
			return nil, &OpError{Op: "rule", Err: fmt.Errorf("%w: %v", ErrBadRule, err)}
		}
		rules = f.Drop
	}
	if _, err := compileRules(rules); err != nil {
		return nil, err
	}
	return rules, nil
}

// LoadRules reads a rules document (see ParseRules) from a file.
func LoadRules(file string) ([]Rule, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, &OpError{Op: "rule", Err: err}
	}
	rules, err := ParseRules(data)
	if err != nil {
		return nil, &OpError{Op: "rule " + file, Err: err}
	}
	return rules, nil
}
