package main

import (
	"fmt"
	"io"

	"github.com/procwall/procwall/source"
	"github.com/procwall/procwall/source/replay"
)

// newEventWriter returns a function writing events as text lines or as the
// native trace format (flushed after each event, so a monitor piped into a
// file loses nothing on interrupt).
func newEventWriter(w io.Writer, format string) func(*source.Event) error {
	if format == "json" {
		jw := replay.NewWriter(w)
		return func(ev *source.Event) error {
			if _, err := jw.Write(ev); err != nil {
				return err
			}
			return jw.Flush()
		}
	}
	return func(ev *source.Event) error {
		_, err := fmt.Fprintln(w, formatEventText(ev))
		return err
	}
}
