package deploy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	eventrecord "k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
)

// Event reasons, on a file's record.
const (
	reasonApplied      = "Applied"
	reasonParseFailed  = "ParseFailed"
	reasonApplyFailed  = "ApplyFailed"
	reasonDeleteFailed = "DeleteFailed"
)

const (
	component     = "ketch-deploy"
	defaultResync = 30 * time.Second
	// settle is how long the directory must stay quiet after a change before a pass, so that a
	// file being written by an editor or cp is read whole.
	settle          = 500 * time.Millisecond
	maxEventMessage = 1024
)

// Options configure Run.
type Options struct {
	Dir    string       // <data-dir>/server/manifests
	Config *rest.Config // cluster-admin
	// Resync is how often every file is re-checked even without a file event, and failed files
	// retried (default 30s).
	Resync time.Duration
	// OnPass, if set, is called after each pass over the directory, whether or not every file
	// applied.
	OnPass func()
}

// fileState is what the last pass did with a file.
type fileState struct {
	sha string // of the content it handled; "" if unreadable
	// reason and message describe its failure; reason is "" after a complete apply.
	reason, message string
}

type controller struct {
	dir      string
	records  records
	applier  *applier
	recorder eventrecord.EventRecorder
	// files holds the state of the files being applied, and of gone files whose objects are
	// not all deleted yet.
	files map[string]fileState
}

// Run applies the manifests in Dir until ctx ends. It returns only on ctx end (nil) or a setup
// error.
func Run(ctx context.Context, opts Options) error {
	if opts.Dir == "" || opts.Config == nil {
		return errors.New("the manifest deploy controller needs a directory and a client config")
	}
	if opts.Resync <= 0 {
		opts.Resync = defaultResync
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return fmt.Errorf("creating the manifests directory: %w", err)
	}
	cfg := rest.CopyConfig(opts.Config)
	rest.AddUserAgent(cfg, component)
	// client-go's default of 5 requests/s (burst 10) took over 4 s for the bundled addons'
	// first pass (about 30 objects, each applied and recorded), which a first start waits for.
	cfg.QPS, cfg.Burst = 50, 100
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("creating the manifests client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("creating the manifests dynamic client: %w", err)
	}
	broadcaster := eventrecord.NewBroadcaster(eventrecord.WithContext(ctx))
	defer broadcaster.Shutdown()
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})

	c := &controller{
		dir:      opts.Dir,
		records:  records{client: client},
		applier:  &applier{client: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(client.Discovery()))},
		recorder: broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: component}),
		files:    map[string]fileState{},
	}
	// Without a watch (inotify limits reached, say) changes still apply, on the next resync.
	var events <-chan fsnotify.Event
	var watchErrs <-chan error
	if w, err := watch(opts.Dir); err != nil {
		klog.ErrorS(err, "Not watching the manifests directory; changes apply on the next resync", "dir", opts.Dir, "resync", opts.Resync)
	} else {
		defer w.Close()
		events, watchErrs = w.Events, w.Errors
	}
	c.loop(ctx, opts.Resync, events, watchErrs, opts.OnPass)
	return nil
}

func watch(dir string) (*fsnotify.Watcher, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("creating a file watcher: %w", err)
	}
	if err := w.Add(dir); err != nil {
		w.Close()
		return nil, fmt.Errorf("watching %s: %w", dir, err)
	}
	return w, nil
}

func (c *controller) loop(ctx context.Context, resync time.Duration, events <-chan fsnotify.Event, watchErrs <-chan error, onPass func()) {
	ticker := time.NewTicker(resync)
	defer ticker.Stop()
	pending := time.NewTimer(0) // the first pass, at once
	defer pending.Stop()
	pass := func() {
		c.sync(ctx)
		if onPass != nil {
			onPass()
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			pass()
		case <-pending.C:
			pass()
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if relevant(filepath.Base(ev.Name)) {
				klog.V(2).InfoS("Manifest changed", "file", filepath.Base(ev.Name), "op", ev.Op.String())
				pending.Reset(settle)
			}
		case err, ok := <-watchErrs:
			if !ok {
				watchErrs = nil
				continue
			}
			// Events may have been lost (a queue overflow): look at everything.
			klog.ErrorS(err, "Watching the manifests directory", "dir", c.dir)
			pending.Reset(settle)
		}
	}
}

// sync is one pass: apply the files that changed or failed, then delete what no file holds any
// more, then update the records.
func (c *controller) sync(ctx context.Context) {
	dir, err := scanDir(c.dir)
	if err != nil {
		// Never read a missing or unreadable directory as "every file was removed".
		klog.ErrorS(err, "Skipping a manifests pass", "dir", c.dir)
		return
	}
	recs, err := c.records.list(ctx)
	if err != nil {
		if ctx.Err() == nil {
			klog.ErrorS(err, "Skipping a manifests pass", "dir", c.dir)
		}
		return
	}
	applying := make(map[string]bool, len(dir.apply))
	for _, name := range dir.apply {
		applying[name] = true
	}
	for name := range c.files {
		// Forget files no longer applied, so that one whose .skip mark goes is applied afresh;
		// remember a gone file while its record holds undeleted objects, to log repeats quietly.
		if !applying[name] && (dir.keep[name] || recs[name] == nil) {
			delete(c.files, name)
		}
	}

	c.applier.beginPass()
	var plans []*plan
	for _, name := range dir.apply {
		p := c.applyFile(ctx, name, recs[name])
		if ctx.Err() != nil {
			return
		}
		if p != nil {
			plans = append(plans, p)
		}
	}
	for _, file := range sortedFiles(recs) {
		if !dir.keep[file] {
			plans = append(plans, orphanPlan(file, recs[file]))
		}
	}
	claimed := claims(recs, plans)
	for _, p := range plans {
		c.finish(ctx, p, claimed)
		if ctx.Err() != nil {
			return
		}
	}
}

// applyFile applies a file that changed or failed last time, and returns what to do with its
// record; nil if there is nothing to do: it is unchanged, or it cannot be read or parsed, which
// must leave its objects alone.
func (c *controller) applyFile(ctx context.Context, name string, rec *record) *plan {
	prev := c.files[name]
	var cm *corev1.ConfigMap
	if rec != nil {
		cm = rec.cm
	}
	content, err := os.ReadFile(filepath.Join(c.dir, name))
	if err != nil {
		c.report(ctx, name, "", cm, reasonParseFailed, err)
		return nil
	}
	sum := sha256.Sum256(content)
	sha := hex.EncodeToString(sum[:])
	if prev.sha == sha && prev.reason == "" {
		return nil
	}
	objs, err := parseManifest(content)
	if err != nil {
		c.report(ctx, name, sha, cm, reasonParseFailed, err)
		return nil
	}
	var applied []objectRef
	var failures []string
	for _, obj := range objs {
		ref, err := c.applier.apply(ctx, obj)
		if err != nil {
			failures = append(failures, err.Error())
			continue
		}
		applied = append(applied, ref)
	}
	var applyErr error
	if len(failures) > 0 {
		applyErr = errors.New(strings.Join(failures, "; "))
	}
	p := newPlan(name, sha, rec, applied, applyErr)
	p.prev = prev
	return p
}

// finish deletes what the plan prunes and no file claims, then updates or deletes the record and
// reports the outcome.
func (c *controller) finish(ctx context.Context, p *plan, claimed map[objectKey]bool) {
	var undeleted []objectRef
	var failures []string
	for _, ref := range p.deletions(claimed) {
		if err := c.applier.delete(ctx, ref); err != nil {
			undeleted = append(undeleted, ref)
			failures = append(failures, err.Error())
			continue
		}
		klog.InfoS("Deleted an object its manifest no longer holds", "file", p.file, "object", ref.String())
	}
	if ctx.Err() != nil {
		return
	}
	if p.orphan && len(undeleted) == 0 {
		if err := c.records.delete(ctx, p.record.cm.Name); err != nil {
			klog.ErrorS(err, "Removing the record of a deleted manifest", "file", p.file)
			return
		}
		delete(c.files, p.file)
		klog.InfoS("Removed the objects of a deleted manifest", "file", p.file, "objects", len(p.prune))
		return
	}

	objects := union(p.objects, undeleted)
	var cm *corev1.ConfigMap
	name := RecordName(p.file)
	if p.record != nil {
		cm, name = p.record.cm, p.record.cm.Name
	}
	if p.record == nil || p.record.sha != p.recordSHA() || encodeObjects(p.record.objects) != encodeObjects(objects) {
		written, err := c.records.write(ctx, name, p.file, p.recordSHA(), objects)
		if err != nil {
			c.report(ctx, p.file, p.sha, cm, reasonApplyFailed, fmt.Errorf("recording the applied objects: %w", err))
			return
		}
		cm = written
	}

	switch {
	case p.applyErr != nil:
		c.report(ctx, p.file, p.sha, cm, reasonApplyFailed, p.applyErr)
	case len(failures) > 0:
		c.report(ctx, p.file, p.sha, cm, reasonDeleteFailed, fmt.Errorf("deleting objects it no longer holds: %s", strings.Join(failures, "; ")))
	default:
		c.files[p.file] = fileState{sha: p.sha}
	}
	if p.changed() {
		klog.InfoS("Applied manifest", "file", p.file, "objects", len(p.objects))
		c.recorder.Eventf(cm, corev1.EventTypeNormal, reasonApplied, "%s: applied %d objects", p.file, len(p.objects))
	}
}

// report logs a file's failure, as an error only when it differs from the last one, and reports
// it as a Warning event on the file's record, created if need be. The file is retried on the
// next pass.
func (c *controller) report(ctx context.Context, file, sha string, cm *corev1.ConfigMap, reason string, err error) {
	if ctx.Err() != nil {
		return // failures of a stopping pass are not the file's
	}
	st := fileState{sha: sha, reason: reason, message: err.Error()}
	if c.files[file] == st {
		klog.V(2).InfoS("Manifest still failing", "file", file, "reason", reason, "err", err)
	} else {
		klog.ErrorS(err, "Manifest failed", "file", file, "reason", reason)
	}
	c.files[file] = st
	if cm == nil {
		if cm, err = c.records.ensure(ctx, file); err != nil {
			klog.ErrorS(err, "Reporting a manifest's failure", "file", file)
			return
		}
	}
	msg := file + ": " + st.message
	if len(msg) > maxEventMessage {
		msg = strings.ToValidUTF8(msg[:maxEventMessage-3], "") + "..."
	}
	c.recorder.Event(cm, corev1.EventTypeWarning, reason, msg)
}
