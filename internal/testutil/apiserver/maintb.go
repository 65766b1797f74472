package apiserver

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"k8s.io/klog/v2"
	"k8s.io/kubernetes/test/utils/ktesting"
)

// MainTB is the ktesting.TB of a package's TestMain, for what the package's tests share, such as
// one Start: it lives until Finish, after every test, whereas a *testing.T's cleanups
// run when its own test ends (and logging to it afterwards panics).
//
// Its log, and klog's, goes to a file: Finish prints the file's end when the tests failed.
// Fatal and FailNow print the log, run the cleanups and exit the process: a TestMain has no
// test to fail.
type MainTB struct {
	dir     string
	logPath string

	mu       sync.Mutex
	log      *os.File
	cleanups []func()
	failed   bool
}

var _ ktesting.TB = (*MainTB)(nil)

// NewMainTB makes a MainTB named name and sends klog's output to its log file, which keeps
// go test -v readable when a kube-apiserver runs in the test process.
func NewMainTB(name string) *MainTB {
	dir, err := os.MkdirTemp("", "ketch-"+name+"-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
	m := &MainTB{dir: dir, logPath: filepath.Join(dir, name+".log")}
	if m.log, err = os.Create(m.logPath); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	for k, v := range map[string]string{"logtostderr": "false", "alsologtostderr": "false", "stderrthreshold": "FATAL"} {
		if err := fs.Set(k, v); err != nil {
			panic(err)
		}
	}
	// Every severity reaches the INFO output; the others would write each line again.
	klog.SetOutputBySeverity("INFO", m.writer())
	for _, s := range []string{"WARNING", "ERROR", "FATAL"} {
		klog.SetOutputBySeverity(s, io.Discard)
	}
	return m
}

// LogPath is the file the log goes to.
func (m *MainTB) LogPath() string { return m.logPath }

// Finish runs the cleanups, last first, and returns code, or 1 when Error was called. When code
// is a failure it first prints the log's end (what happened before the teardown), and keeps
// the log; otherwise it removes it.
func (m *MainTB) Finish(code int) int {
	if code != 0 {
		m.printTail()
	}
	m.runCleanups()
	if m.Failed() && code == 0 {
		m.printTail()
		code = 1
	}
	klog.Flush()
	if code == 0 {
		os.RemoveAll(m.dir)
	}
	return code
}

func (m *MainTB) runCleanups() {
	for {
		m.mu.Lock()
		n := len(m.cleanups)
		if n == 0 {
			m.mu.Unlock()
			return
		}
		f := m.cleanups[n-1]
		m.cleanups = m.cleanups[:n-1]
		m.mu.Unlock()
		f()
	}
}

func (m *MainTB) printTail() {
	klog.Flush()
	data, _ := os.ReadFile(m.logPath)
	const keep = 16 << 10
	if len(data) > keep {
		data = data[len(data)-keep:]
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			data = data[i+1:]
		}
	}
	fmt.Fprintf(os.Stderr, "--- end of %s (kept):\n%s", m.logPath, data)
}

type mainWriter struct{ m *MainTB }

func (w mainWriter) Write(p []byte) (int, error) {
	w.m.mu.Lock()
	defer w.m.mu.Unlock()
	return w.m.log.Write(p)
}

func (m *MainTB) writer() io.Writer { return mainWriter{m} }

func (m *MainTB) logLine(s string) {
	if len(s) == 0 || s[len(s)-1] != '\n' {
		s += "\n"
	}
	m.writer().Write([]byte(s))
}

// Attr logs the attribute.
func (m *MainTB) Attr(key, value string) { m.logLine(fmt.Sprintf("attr %s=%s", key, value)) }

// Chdir is not supported: a TestMain's work directory is every test's.
func (m *MainTB) Chdir(dir string) { m.Fatalf("MainTB.Chdir(%q): not supported", dir) }

// Cleanup registers f to run in Finish.
func (m *MainTB) Cleanup(f func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cleanups = append(m.cleanups, f)
}

func (m *MainTB) Error(args ...any) { m.logLine(fmt.Sprint(args...)); m.Fail() }
func (m *MainTB) Errorf(format string, args ...any) {
	m.logLine(fmt.Sprintf(format, args...))
	m.Fail()
}

// Fail marks the run failed: Finish returns 1.
func (m *MainTB) Fail() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.failed = true
}

// FailNow ends the process after the cleanups, printing the log.
func (m *MainTB) FailNow() {
	m.Fail()
	os.Exit(m.Finish(1))
}

func (m *MainTB) Failed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.failed
}

func (m *MainTB) Fatal(args ...any) { m.logLine(fmt.Sprint(args...)); m.FailNow() }
func (m *MainTB) Fatalf(format string, args ...any) {
	m.logLine(fmt.Sprintf(format, args...))
	m.FailNow()
}

// Helper does nothing.
func (m *MainTB) Helper() {}

func (m *MainTB) Log(args ...any)                 { m.logLine(fmt.Sprint(args...)) }
func (m *MainTB) Logf(format string, args ...any) { m.logLine(fmt.Sprintf(format, args...)) }

// Name is "TestMain".
func (m *MainTB) Name() string { return "TestMain" }

// Setenv sets an environment variable until Finish.
func (m *MainTB) Setenv(key, value string) {
	old, had := os.LookupEnv(key)
	if err := os.Setenv(key, value); err != nil {
		m.Fatalf("Setenv %s: %v", key, err)
	}
	m.Cleanup(func() {
		if had {
			os.Setenv(key, old)
		} else {
			os.Unsetenv(key)
		}
	})
}

// Skip and its kin end the process like Fatal: a TestMain cannot skip.
func (m *MainTB) Skip(args ...any)                 { m.Fatal(append([]any{"skip in TestMain: "}, args...)...) }
func (m *MainTB) Skipf(format string, args ...any) { m.Fatalf("skip in TestMain: "+format, args...) }
func (m *MainTB) SkipNow()                         { m.Fatal("SkipNow in TestMain") }
func (m *MainTB) Skipped() bool                    { return false }

// TempDir returns a new directory inside the MainTB's own, removed by Finish.
func (m *MainTB) TempDir() string {
	dir, err := os.MkdirTemp(m.dir, "tmp-")
	if err != nil {
		m.Fatalf("TempDir: %v", err)
	}
	return dir
}
