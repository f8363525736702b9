package fanotify

import (
	"context"
	"log/slog"
	"time"

	"github.com/procwall/procwall/rules"
)

// Config says what a Guard watches and how it answers.
type Config struct {
	// Exec lists files and directories whose execution is judged
	// (FAN_OPEN_EXEC_PERM). A directory covers its direct children.
	Exec []string
	// Open lists files and directories whose opening is judged
	// (FAN_OPEN_PERM): self-protection and persistence paths. The kernel
	// does not say whether an open is for reading or writing, so every
	// open by another process is judged (as OpOpen).
	Open []string
	// ExecMounts lists mount points on whose file systems every execution
	// is judged (a mount mark). Mark only mounts you mean to guard.
	ExecMounts []string
	// FailOpen answers allow when the judge does not answer within
	// Timeout or panics; the default is to fail closed (deny).
	FailOpen bool
	// Timeout bounds the judging of one event (default 3s). The process
	// that triggered it waits meanwhile.
	Timeout time.Duration
	// MaxInFlight bounds events judged at once (default 64); further
	// events wait in the kernel queue.
	MaxInFlight int
	Logger      *slog.Logger
}

// JudgeFunc decides a permission request: Allow lets the operation
// proceed, anything else denies it. It must return once ctx is done; the
// request's ExeFile (for executions) is valid until it returns.
type JudgeFunc func(ctx context.Context, req *rules.Request) rules.Action

// EngineJudge adapts a rule engine: every request goes through
// [rules.Engine.Judge].
func EngineJudge(e *rules.Engine) JudgeFunc {
	return func(ctx context.Context, req *rules.Request) rules.Action {
		return e.Judge(ctx, req).Action
	}
}

// Stats counts a Guard's answers.
type Stats struct {
	Allowed   uint64 // allowed by the judge
	Denied    uint64 // denied by the judge
	Defaulted uint64 // answered by the fail-open/closed default (timeout, panic, unreadable event)
	Self      uint64 // events of procwall's own process, always allowed
	Overflows uint64 // kernel queue overflows
}
