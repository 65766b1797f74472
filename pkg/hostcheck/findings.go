package hostcheck

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// Status is how a finding bears on running a node.
type Status string

// The statuses, from good to bad.
const (
	// StatusOK: nothing to do.
	StatusOK Status = "ok"
	// StatusWarning: a node runs, but something works less well or needs attention; ketch may
	// adapt the host itself at start (ip_forward, for instance).
	StatusWarning Status = "warning"
	// StatusFatal: a node cannot run; ketch server and ketch agent refuse to start.
	StatusFatal Status = "fatal"
)

// Finding is one thing checked on the host. The JSON field names are stable, for tools.
type Finding struct {
	// Group is the section it belongs to: one of Groups' IDs.
	Group string `json:"group"`
	// Name identifies the check, such as cgroup.memory or kernel.overlay.
	Name   string `json:"name"`
	Status Status `json:"status"`
	// Message says what was found, in one line.
	Message string `json:"message"`
	// Fix says what to do about it on this host, possibly in several lines; "" when ok.
	Fix string `json:"fix"`
}

// Group is a section of the findings.
type Group struct{ ID, Title string }

// Groups are the sections of a report, in the order they are shown.
var Groups = []Group{
	{"system", "System"},
	{"cgroups", "Cgroups"},
	{"kernel", "Kernel"},
	{"network", "Networking"},
	{"resources", "Resources"},
	{"conflicts", "Other Kubernetes on this host"},
}

// HostInfo names the host a report is about.
type HostInfo struct {
	Kernel string `json:"kernel"`
	OS     string `json:"os"`
	// Model is the board's model from the device tree (a Raspberry Pi's), if any.
	Model string `json:"model,omitempty"`
}

// Summary counts the findings by status; Status is the worst of them.
type Summary struct {
	OK      int    `json:"ok"`
	Warning int    `json:"warning"`
	Fatal   int    `json:"fatal"`
	Status  Status `json:"status"`
}

// Report is every finding about a host, in the order of Groups.
type Report struct {
	Host     HostInfo  `json:"host"`
	Findings []Finding `json:"findings"`
	Summary  Summary   `json:"summary"`
}

// NewReport sorts findings into the order of Groups and counts them.
func NewReport(host HostInfo, findings []Finding) *Report {
	r := &Report{Host: host, Summary: Summary{Status: StatusOK}}
	for _, g := range Groups {
		for _, f := range findings {
			if f.Group == g.ID {
				r.Findings = append(r.Findings, f)
			}
		}
	}
	for _, f := range r.Findings {
		switch f.Status {
		case StatusOK:
			r.Summary.OK++
		case StatusWarning:
			r.Summary.Warning++
			if r.Summary.Status == StatusOK {
				r.Summary.Status = StatusWarning
			}
		case StatusFatal:
			r.Summary.Fatal++
			r.Summary.Status = StatusFatal
		}
	}
	return r
}

// Find returns the finding of that name, if any.
func (r *Report) Find(name string) (Finding, bool) {
	for _, f := range r.Findings {
		if f.Name == name {
			return f, true
		}
	}
	return Finding{}, false
}

// cannotRun starts the error of a host that fails the check.
const cannotRun = "this host cannot run a ketch node"

// Err is nil unless there are fatal findings; then it names each, with its fix, as ketch server
// and ketch agent refuse to start with.
func (r *Report) Err() error {
	var b strings.Builder
	for _, f := range r.Findings {
		if f.Status != StatusFatal {
			continue
		}
		if b.Len() == 0 {
			b.WriteString(cannotRun + "; ")
		} else {
			b.WriteString("\n")
		}
		b.WriteString("missing: " + f.Message)
		if f.Fix != "" {
			b.WriteString("\n  fix: " + indent(f.Fix, "       "))
		}
	}
	if b.Len() == 0 {
		return nil
	}
	return errors.New(b.String())
}

// indent puts prefix before every line of s but the first.
func indent(s, prefix string) string {
	return strings.ReplaceAll(s, "\n", "\n"+prefix)
}

// WriteText writes the report for people: the host, then each group's findings one per line,
// aligned, with the fix under each finding that is not ok, and the summary.
func (r *Report) WriteText(w io.Writer) error {
	width := 0
	for _, f := range r.Findings {
		width = max(width, len(f.Name))
	}
	var b strings.Builder
	host := "kernel " + r.Host.Kernel
	if r.Host.OS != "" {
		host = r.Host.OS + ", " + host
	}
	if r.Host.Model != "" {
		host = r.Host.Model + ", " + host
	}
	fmt.Fprintf(&b, "Host: %s\n", host)
	// status (7) + 2 spaces, name + 2 spaces: where messages and fixes start.
	fixIndent := strings.Repeat(" ", 2+7+2+width+2)
	for _, g := range Groups {
		first := true
		for _, f := range r.Findings {
			if f.Group != g.ID {
				continue
			}
			if first {
				fmt.Fprintf(&b, "\n%s\n", g.Title)
				first = false
			}
			fmt.Fprintf(&b, "  %-7s  %-*s  %s\n", f.Status, width, f.Name, f.Message)
			if f.Fix != "" && f.Status != StatusOK {
				fmt.Fprintf(&b, "%sfix: %s\n", fixIndent, indent(f.Fix, fixIndent+"     "))
			}
		}
	}
	s := r.Summary
	fmt.Fprintf(&b, "\n%d ok, %d %s, %d fatal: %s\n", s.OK, s.Warning, plural(s.Warning, "warning", "warnings"), s.Fatal, verdict(s.Status))
	_, err := io.WriteString(w, b.String())
	return err
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func verdict(s Status) string {
	switch s {
	case StatusFatal:
		return "this host cannot run a ketch node until the fatal findings are fixed"
	case StatusWarning:
		return "this host can run a ketch node; the warnings say what works less well"
	}
	return "this host can run a ketch node"
}
