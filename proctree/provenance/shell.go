package provenance

import (
	"fmt"
	"strconv"
	"strings"
)

// MaxCommandLine is the longest command line ParseShell reads; the rest is
// ignored and reported with ErrTooLong.
const MaxCommandLine = 64 << 10

// maxNesting bounds $(...), `...`, bash -c '...' and similar nesting.
const maxNesting = 8

// Redirect is one redirection of a simple command.
type Redirect struct {
	FD     int    // the descriptor redirected; -1 for &> (stdout and stderr)
	Op     string // "<", ">", ">>", ">|", "<>", "&>", "&>>", "<<<", "<<", ">&", "<&"
	Target string // file, here-string, heredoc delimiter or descriptor
}

// Command is one simple command of a shell command line: its words with
// quotes removed (no variable expansion) and its redirections.
type Command struct {
	Args   []string
	Redirs []Redirect
	Piped  bool // its standard output feeds the next command's input
	Depth  int  // 0 at top level; +1 per $(...), `...` or <(...) nesting
}

// ParseShell splits a command line the way a POSIX shell would into simple
// commands: quotes ('...', "...", $'...'), backslash escapes, comments,
// operators (| || & && ; and newlines), subshell parentheses, redirections
// (n> >> < &> >& <<< and here-documents, whose bodies are skipped) and
// command substitutions ($(...), `...`, <(...)), whose inner commands are
// parsed recursively and appended as commands of their own. Nothing is
// expanded. On a syntax error (ErrSyntax) or an over-long input
// (ErrTooLong) it returns the commands parsed so far with the error; it
// never panics.
func ParseShell(s string) ([]Command, error) {
	var err error
	if len(s) > MaxCommandLine {
		s = s[:MaxCommandLine]
		err = &OpError{Op: "parse", Err: fmt.Errorf("%w: longer than %d bytes", ErrTooLong, MaxCommandLine)}
	}
	l := &lexer{s: s}
	l.run()
	if l.err != nil && err == nil {
		err = &OpError{Op: "parse", Err: l.err}
	}
	return l.out, err
}

type lexer struct {
	s        string
	i        int
	depth    int
	out      []Command
	cur      Command
	word     strings.Builder
	inWord   bool
	quoted   bool // the current word has quoted parts
	pending  *Redirect
	heredocs []heredoc
	err      error
}

type heredoc struct {
	delim string
	strip bool
}

func (l *lexer) fail(format string, args ...any) {
	if l.err == nil {
		l.err = fmt.Errorf("%w: "+format, append([]any{ErrSyntax}, args...)...)
	}
}

func (l *lexer) run() {
	s := l.s
	for l.i < len(s) {
		c := s[l.i]
		switch c {
		case ' ', '\t', '\r':
			l.endWord()
			l.i++
		case '\n':
			l.endCommand(false)
			l.i++
			l.skipHeredocs()
		case '\\':
			if l.i+1 < len(s) {
				if s[l.i+1] != '\n' {
					l.word.WriteByte(s[l.i+1])
					l.inWord, l.quoted = true, true
				}
				l.i += 2
			} else {
				l.i++
			}
		case '\'':
			j := strings.IndexByte(s[l.i+1:], '\'')
			if j < 0 {
				l.fail("unterminated single quote at offset %d", l.i)
				l.word.WriteString(s[l.i+1:])
				l.inWord, l.quoted = true, true
				l.i = len(s)
				break
			}
			l.word.WriteString(s[l.i+1 : l.i+1+j])
			l.inWord, l.quoted = true, true
			l.i += j + 2
		case '"':
			l.dquote()
		case '`':
			l.backtick(&l.word)
		case '$':
			l.dollar(&l.word)
		case '#':
			if l.inWord {
				l.word.WriteByte(c)
				l.i++
				break
			}
			j := strings.IndexByte(s[l.i:], '\n')
			if j < 0 {
				l.i = len(s)
			} else {
				l.i += j
			}
		case '|':
			l.endWord()
			switch {
			case l.peek(1) == '|':
				l.endCommand(false)
				l.i += 2
			case l.peek(1) == '&':
				l.endCommand(true)
				l.i += 2
			default:
				l.endCommand(true)
				l.i++
			}
		case '&':
			switch l.peek(1) {
			case '&':
				l.endCommand(false)
				l.i += 2
			case '>':
				l.endWord()
				if l.peek(2) == '>' {
					l.startRedirect(-1, "&>>", 3)
				} else {
					l.startRedirect(-1, "&>", 2)
				}
			default:
				l.endCommand(false)
				l.i++
			}
		case ';':
			l.endCommand(false)
			l.i++
			for l.i < len(s) && (s[l.i] == ';' || s[l.i] == '&') {
				l.i++
			}
		case '(', ')':
			l.endCommand(false)
			l.i++
		case '<', '>':
			l.redirect()
		default:
			l.word.WriteByte(c)
			l.inWord = true
			l.i++
		}
	}
	l.endCommand(false)
	if l.pending != nil {
		l.fail("redirection %q without a target", l.pending.Op)
		l.pending = nil
	}
}

func (l *lexer) peek(n int) byte {
	if l.i+n < len(l.s) {
		return l.s[l.i+n]
	}
	return 0
}

func (l *lexer) endWord() {
	if !l.inWord {
		return
	}
	w := l.word.String()
	l.word.Reset()
	l.inWord, l.quoted = false, false
	if r := l.pending; r != nil {
		l.pending = nil
		r.Target = w
		switch r.Op {
		case "<<", "<<-":
			l.heredocs = append(l.heredocs, heredoc{delim: w, strip: r.Op == "<<-"})
			r.Op = "<<"
		}
		l.cur.Redirs = append(l.cur.Redirs, *r)
		return
	}
	l.cur.Args = append(l.cur.Args, w)
}

func (l *lexer) endCommand(piped bool) {
	l.endWord()
	if l.pending != nil {
		l.fail("redirection %q without a target", l.pending.Op)
		l.pending = nil
	}
	if len(l.cur.Args) > 0 || len(l.cur.Redirs) > 0 {
		l.cur.Piped = piped
		l.cur.Depth = l.depth
		l.out = append(l.out, l.cur)
	} else if piped && len(l.out) > 0 {
		// "a |& b" and friends: keep the pipe on the previous command.
		l.out[len(l.out)-1].Piped = true
	}
	l.cur = Command{}
}

// skipHeredocs skips the bodies of pending here-documents (lines up to
// their delimiters).
func (l *lexer) skipHeredocs() {
	for len(l.heredocs) > 0 {
		h := l.heredocs[0]
		l.heredocs = l.heredocs[1:]
		for l.i < len(l.s) {
			j := strings.IndexByte(l.s[l.i:], '\n')
			line := l.s[l.i:]
			if j >= 0 {
				line = l.s[l.i : l.i+j]
				l.i += j + 1
			} else {
				l.i = len(l.s)
			}
			if h.strip {
				line = strings.TrimLeft(line, "\t")
			}
			if line == h.delim {
				break
			}
		}
	}
}

func (l *lexer) startRedirect(fd int, op string, n int) {
	l.i += n
	l.pending = &Redirect{FD: fd, Op: op}
	// Skip blanks before the target.
	for l.i < len(l.s) && (l.s[l.i] == ' ' || l.s[l.i] == '\t') {
		l.i++
	}
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func (l *lexer) redirect() {
	c := l.s[l.i]
	// Process substitution <(...) / >(...): a nested command list.
	if l.peek(1) == '(' {
		j := matchClose(l.s, l.i+1, '(', ')')
		if j < 0 {
			l.fail("unterminated process substitution at offset %d", l.i)
			l.i = len(l.s)
			return
		}
		l.nested(l.s[l.i+2 : j])
		l.word.WriteString(l.s[l.i : j+1])
		l.inWord = true
		l.i = j + 1
		return
	}
	fd := 0
	if c == '>' {
		fd = 1
	}
	if l.inWord {
		if w := l.word.String(); !l.quoted && allDigits(w) && len(w) < 4 {
			fd, _ = strconv.Atoi(w)
			l.word.Reset()
			l.inWord = false
		} else {
			l.endWord()
		}
	}
	if l.pending != nil {
		l.fail("redirection %q without a target", l.pending.Op)
		l.pending = nil
	}
	p1, p2 := l.peek(1), l.peek(2)
	switch {
	case c == '<' && p1 == '<' && p2 == '<':
		l.startRedirect(fd, "<<<", 3)
	case c == '<' && p1 == '<' && p2 == '-':
		l.startRedirect(fd, "<<-", 3)
	case c == '<' && p1 == '<':
		l.startRedirect(fd, "<<", 2)
	case c == '<' && p1 == '>':
		l.startRedirect(fd, "<>", 2)
	case c == '<' && p1 == '&':
		l.startRedirect(fd, "<&", 2)
	case c == '<':
		l.startRedirect(fd, "<", 1)
	case p1 == '>':
		l.startRedirect(fd, ">>", 2)
	case p1 == '|':
		l.startRedirect(fd, ">|", 2)
	case p1 == '&':
		l.startRedirect(fd, ">&", 2)
	default:
		l.startRedirect(fd, ">", 1)
	}
}

func (l *lexer) dquote() {
	s := l.s
	l.i++
	l.inWord, l.quoted = true, true
	for l.i < len(s) {
		c := s[l.i]
		switch c {
		case '"':
			l.i++
			return
		case '\\':
			if l.i+1 < len(s) {
				switch n := s[l.i+1]; n {
				case '$', '`', '"', '\\':
					l.word.WriteByte(n)
				case '\n':
				default:
					l.word.WriteByte('\\')
					l.word.WriteByte(n)
				}
				l.i += 2
			} else {
				l.word.WriteByte('\\')
				l.i++
			}
		case '$':
			l.dollar(&l.word)
		case '`':
			l.backtick(&l.word)
		default:
			l.word.WriteByte(c)
			l.i++
		}
	}
	l.fail("unterminated double quote")
}

// dollar handles $(...), $((...)), ${...}, $'...' and a plain $.
func (l *lexer) dollar(w *strings.Builder) {
	s := l.s
	l.inWord = true
	switch l.peek(1) {
	case '(':
		if l.peek(2) == '(' {
			j := matchClose(s, l.i+1, '(', ')')
			if j < 0 {
				l.fail("unterminated $(( at offset %d", l.i)
				w.WriteString(s[l.i:])
				l.i = len(s)
				return
			}
			w.WriteString(s[l.i : j+1])
			l.i = j + 1
			return
		}
		j := matchClose(s, l.i+1, '(', ')')
		if j < 0 {
			l.fail("unterminated $( at offset %d", l.i)
			l.nested(s[l.i+2:])
			w.WriteString(s[l.i:])
			l.i = len(s)
			return
		}
		l.nested(s[l.i+2 : j])
		w.WriteString(s[l.i : j+1])
		l.i = j + 1
	case '{':
		j := matchClose(s, l.i+1, '{', '}')
		if j < 0 {
			l.fail("unterminated ${ at offset %d", l.i)
			w.WriteString(s[l.i:])
			l.i = len(s)
			return
		}
		w.WriteString(s[l.i : j+1])
		l.i = j + 1
	case '\'':
		l.quoted = true
		l.i += 2
		for l.i < len(s) {
			c := s[l.i]
			if c == '\'' {
				l.i++
				return
			}
			if c == '\\' && l.i+1 < len(s) {
				l.i += 2
				switch n := s[l.i-1]; n {
				case 'n':
					w.WriteByte('\n')
				case 't':
					w.WriteByte('\t')
				case 'r':
					w.WriteByte('\r')
				case 'x':
					v, k := 0, 0
					for k < 2 && l.i < len(s) && isHex(s[l.i]) {
						v = v*16 + hexVal(s[l.i])
						l.i++
						k++
					}
					if k == 0 {
						w.WriteString(`\x`)
					} else {
						w.WriteByte(byte(v))
					}
				default:
					w.WriteByte(n)
				}
				continue
			}
			w.WriteByte(c)
			l.i++
		}
		l.fail("unterminated $' quote")
	default:
		w.WriteByte('$')
		l.i++
	}
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func hexVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	default:
		return int(c-'A') + 10
	}
}

func (l *lexer) backtick(w *strings.Builder) {
	s := l.s
	l.inWord = true
	var inner strings.Builder
	j := l.i + 1
	for j < len(s) && s[j] != '`' {
		if s[j] == '\\' && j+1 < len(s) {
			switch s[j+1] {
			case '`', '\\', '$':
				inner.WriteByte(s[j+1])
				j += 2
				continue
			}
		}
		inner.WriteByte(s[j])
		j++
	}
	if j >= len(s) {
		l.fail("unterminated backquote at offset %d", l.i)
		l.nested(inner.String())
		w.WriteString(s[l.i:])
		l.i = len(s)
		return
	}
	l.nested(inner.String())
	w.WriteString(s[l.i : j+1])
	l.i = j + 1
}

// nested parses an inner command list and appends its commands.
func (l *lexer) nested(s string) {
	if l.depth+1 > maxNesting {
		l.fail("nesting deeper than %d", maxNesting)
		return
	}
	in := &lexer{s: s, depth: l.depth + 1}
	in.run()
	l.out = append(l.out, in.out...)
	if in.err != nil && l.err == nil {
		l.err = in.err
	}
}

// matchClose returns the index of the bracket closing the one at s[open],
// skipping quoted text, or -1.
func matchClose(s string, open int, o, c byte) int {
	depth := 0
	for i := open; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return -1
			}
			i += j + 1
		case '"':
			for i++; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' {
					i++
				}
			}
			if i >= len(s) {
				return -1
			}
		case o:
			depth++
		case c:
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}
