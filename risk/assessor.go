package risk

import (
	"context"

	"github.com/procwall/procwall/enforce"
)

// Assessor reassesses a process after it was contained (seed 000, claim
// 10): a "safe" answer releases the block, by updating and reloading the
// interception configuration. The Protector calls it for every active
// block on a schedule (procwall.WithAssessor); an error leaves the block in
// place and is logged.
//
// Implementations are called from the Protector's own goroutine, one call
// at a time, outside its lock: they may take time (ask an EDR, scan a
// file) but should honour ctx.
type Assessor interface {
	Assess(ctx context.Context, b enforce.Block) (safe bool, reason string, err error)
}

// AssessorFunc adapts a function to Assessor.
type AssessorFunc func(ctx context.Context, b enforce.Block) (bool, string, error)

// Assess implements Assessor.
func (f AssessorFunc) Assess(ctx context.Context, b enforce.Block) (bool, string, error) {
	return f(ctx, b)
}
