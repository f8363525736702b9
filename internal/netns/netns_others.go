//go:build !linux

package netns

import (
	"errors"
	"runtime"
)

// ErrNotSupported: network namespaces are a Linux feature.
var ErrNotSupported = errors.New("network namespaces: not supported on " + runtime.GOOS)

// Do returns ErrNotSupported.
func Do(path string, fn func() error) error { return ErrNotSupported }
