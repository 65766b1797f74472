package server

import (
	"fmt"
	"io"
	"time"
)

// progress prints start-up phases with the time since start, quietly: one line each.
type progress struct {
	w     io.Writer
	start time.Time
}

func (p progress) phase(format string, a ...any) {
	fmt.Fprintf(p.w, "ketch: %-28s %6.1fs\n", fmt.Sprintf(format, a...), time.Since(p.start).Seconds())
}
