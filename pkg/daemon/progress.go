package daemon

import (
	"fmt"
	"io"
	"time"
)

// Progress prints start-up phases with the time since start, quietly: one line each.
type Progress struct {
	W     io.Writer
	Start time.Time
}

// Phase prints one phase.
func (p Progress) Phase(format string, a ...any) {
	fmt.Fprintf(p.W, "ketch: %-28s %6.1fs\n", fmt.Sprintf(format, a...), time.Since(p.Start).Seconds())
}
