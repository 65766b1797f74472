package component

import (
	"bytes"
	"flag"
	"os"
	"slices"
	"strings"
	"testing"

	"k8s.io/klog/v2"
)

func TestCommandLine(t *testing.T) {
	defaults := map[string]string{"secure-port": "6443", "profiling": "false", "feature-gates": "A=true"}
	for _, tc := range []struct {
		name      string
		overrides []string
		want      []string
	}{
		{"defaults only, sorted", nil,
			[]string{"--feature-gates=A=true", "--profiling=false", "--secure-port=6443"}},
		{"an override replaces ketch's value", []string{"secure-port=7443"},
			[]string{"--feature-gates=A=true", "--profiling=false", "--secure-port=7443"}},
		{"underscores name the same flag", []string{"secure_port=7443"},
			[]string{"--feature-gates=A=true", "--profiling=false", "--secure-port=7443"}},
		// Repeated flags all reach the component, in order: a map flag such as feature-gates
		// collects them, where a map of overrides would have kept only the last.
		{"repeated flags are all passed", []string{"feature-gates=B=true", "feature-gates=C=false,D=true"},
			[]string{"--profiling=false", "--secure-port=6443", "--feature-gates=B=true", "--feature-gates=C=false,D=true"}},
		{"a bare flag is a boolean", []string{"profiling"},
			[]string{"--feature-gates=A=true", "--secure-port=6443", "--profiling"}},
		{"an empty value stays empty", []string{"feature-gates="},
			[]string{"--profiling=false", "--secure-port=6443", "--feature-gates="}},
		{"a new flag", []string{"v=2"},
			[]string{"--feature-gates=A=true", "--profiling=false", "--secure-port=6443", "--v=2"}},
	} {
		if got := CommandLine("test", defaults, tc.overrides); !slices.Equal(got, tc.want) {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.want)
		}
	}
}

func TestLookup(t *testing.T) {
	for _, tc := range []struct {
		overrides []string
		flag, def string
		want      string
	}{
		{nil, "port", "10250", "10250"},
		{[]string{"port=1", "port=20250"}, "port", "10250", "20250"},
		{[]string{"healthz_port=0"}, "healthz-port", "10248", "0"},
		{[]string{"read-only-port"}, "read-only-port", "0", "true"},
		{[]string{"address=127.0.0.1"}, "port", "10250", "10250"},
	} {
		if got := Lookup(tc.overrides, tc.flag, tc.def); got != tc.want {
			t.Errorf("Lookup(%q, %s, %s) = %q, want %q", tc.overrides, tc.flag, tc.def, got, tc.want)
		}
	}
}

// TestCommandLineIsLogged: the final command line shows at verbosity 1 (with --debug), so that
// users see what runs.
func TestCommandLineIsLogged(t *testing.T) {
	var buf bytes.Buffer
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	fs.Set("logtostderr", "false")
	fs.Set("v", "1")
	klog.SetOutput(&buf)
	defer func() { fs.Set("v", "0"); fs.Set("logtostderr", "true"); klog.SetOutput(os.Stderr) }()
	CommandLine("kube-scheduler", map[string]string{"profiling": "false"}, []string{"v=2"})
	klog.Flush()
	if out := buf.String(); !strings.Contains(out, `"Component command line" component="kube-scheduler" args=["--profiling=false","--v=2"]`) {
		t.Errorf("log:\n%s", out)
	}
}
