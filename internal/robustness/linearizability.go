package robustness

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/anishathalye/porcupine"
)

// CheckLinearizable runs porcupine over the history. Running out of time is an error: an
// unfinished search proves nothing. On failure it also returns what porcupine needs for its
// visualization, computed in a second pass bounded by vizTimeout, because tracking partial
// linearizations makes an exhaustive search many times slower.
func CheckLinearizable(h History, timeout, vizTimeout time.Duration) (*porcupine.LinearizationInfo, error) {
	model, ops := Model(h.InitRev), porcupineOperations(h)
	res := porcupine.CheckOperationsTimeout(model, ops, timeout)
	if res == porcupine.Ok {
		return nil, nil
	}
	_, info := porcupine.CheckOperationsVerbose(model, ops, vizTimeout)
	var notes []porcupine.Annotation
	for i, k := range h.Kills {
		notes = append(notes, porcupine.Annotation{Tag: "datastore", Start: k.Signaled, End: k.Ready,
			Description: fmt.Sprintf("kill %d", i+1), Details: "SIGKILL until the restarted process answered Status",
			BackgroundColor: "#f4b6b6"})
	}
	info.AddAnnotations(notes)
	if res == porcupine.Illegal {
		return &info, errors.New("history is not linearizable")
	}
	return &info, fmt.Errorf("linearizability check did not finish within %v", timeout)
}

// SaveArtifacts writes the history as JSON, porcupine's visualization (when info holds one) and
// any extra files into a new directory outside the test's temp dir, so they outlive the test,
// and returns the directory.
func SaveArtifacts(h History, info *porcupine.LinearizationInfo, extra map[string][]byte) (string, error) {
	dir, err := os.MkdirTemp("", "ketch-robustness-")
	if err != nil {
		return "", fmt.Errorf("creating artifact dir: %w", err)
	}
	data, err := json.MarshalIndent(h, "", " ")
	if err != nil {
		return dir, fmt.Errorf("encoding history: %w", err)
	}
	files := map[string][]byte{"history.json": data}
	for name, b := range extra {
		files[name] = b
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return dir, fmt.Errorf("writing %s: %w", name, err)
		}
	}
	if info != nil {
		if err := porcupine.VisualizePath(Model(h.InitRev), *info, filepath.Join(dir, "linearization.html")); err != nil {
			return dir, fmt.Errorf("writing visualization: %w", err)
		}
	}
	return dir, nil
}
