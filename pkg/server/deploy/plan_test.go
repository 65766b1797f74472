package deploy

import (
	"errors"
	"reflect"
	"testing"
)

func TestNewPlanPrunesWhatTheFileDropped(t *testing.T) {
	rec := &record{sha: "old", objects: []objectRef{sa, role, deployOld, cm}}
	p := newPlan("coredns.yaml", "new", rec, []objectRef{sa, deploy, sa}, nil)
	if !reflect.DeepEqual(p.objects, []objectRef{sa, deploy}) {
		t.Errorf("objects = %+v", p.objects)
	}
	if !reflect.DeepEqual(p.prune, []objectRef{role, cm}) {
		t.Errorf("prune = %+v", p.prune)
	}
	if p.recordSHA() != "new" || !p.changed() {
		t.Errorf("recordSHA %q, changed %v; want new, true", p.recordSHA(), p.changed())
	}
}

func TestNewPlanPartialFailureDeletesNothing(t *testing.T) {
	rec := &record{sha: "old", objects: []objectRef{sa, role}}
	p := newPlan("coredns.yaml", "new", rec, []objectRef{deploy}, errors.New("ClusterRole system:coredns: forbidden"))
	if len(p.prune) != 0 {
		t.Errorf("prune = %+v, want nothing", p.prune)
	}
	if !reflect.DeepEqual(p.objects, []objectRef{deploy, sa, role}) {
		t.Errorf("objects = %+v, want the applied ones and the old ones", p.objects)
	}
	if p.recordSHA() != "old" || p.changed() {
		t.Errorf("recordSHA %q, changed %v; want old, false", p.recordSHA(), p.changed())
	}
	// With no record yet, the record gets no hash until the file applies completely.
	if p := newPlan("x.yaml", "new", nil, []objectRef{deploy}, errors.New("x")); p.recordSHA() != "" || !reflect.DeepEqual(p.objects, []objectRef{deploy}) {
		t.Errorf("recordSHA %q, objects %+v", p.recordSHA(), p.objects)
	}
}

func TestPlanChanged(t *testing.T) {
	rec := &record{sha: "same", objects: []objectRef{sa}}
	for _, tc := range []struct {
		name string
		rec  *record
		prev fileState
		want bool
	}{
		{"first apply", nil, fileState{}, true},
		{"restart, same content", rec, fileState{}, false},
		{"content changed while down", &record{sha: "other"}, fileState{}, true},
		{"recovered from apply failure", rec, fileState{sha: "same", reason: reasonApplyFailed}, true},
		{"recovered from parse failure", rec, fileState{sha: "x", reason: reasonParseFailed}, true},
		{"retrying deletions", rec, fileState{sha: "same", reason: reasonDeleteFailed}, false},
	} {
		p := newPlan("f.yaml", "same", tc.rec, []objectRef{sa}, nil)
		p.prev = tc.prev
		if p.changed() != tc.want {
			t.Errorf("%s: changed = %v", tc.name, p.changed())
		}
	}
}

func TestClaimsProtectObjectsOtherFilesHold(t *testing.T) {
	recs := map[string]*record{
		"a.yaml":    {objects: []objectRef{sa, role, cm}}, // changed: dropped role and cm
		"b.yaml":    {objects: []objectRef{deploy}},       // changed: now also holds role
		"c.yaml":    {objects: []objectRef{cm}},           // unchanged (or skipped, or unparsable)
		"gone.yaml": {objects: []objectRef{deployOld, {APIVersion: "v1", Kind: "Namespace", Name: "gone"}}},
	}
	a := newPlan("a.yaml", "2", recs["a.yaml"], []objectRef{sa}, nil)
	b := newPlan("b.yaml", "2", recs["b.yaml"], []objectRef{deploy, role}, nil)
	gone := orphanPlan("gone.yaml", recs["gone.yaml"])
	claimed := claims(recs, []*plan{a, b, gone})

	if got := a.deletions(claimed); len(got) != 0 {
		t.Errorf("a deletes %+v; role moved to b and c holds the ConfigMap", got)
	}
	if got := b.deletions(claimed); len(got) != 0 {
		t.Errorf("b deletes %+v", got)
	}
	// The Deployment moved from the removed file to b (in another API version): it stays.
	want := []objectRef{{APIVersion: "v1", Kind: "Namespace", Name: "gone"}}
	if got := gone.deletions(claimed); !reflect.DeepEqual(got, want) {
		t.Errorf("gone deletes %+v, want %+v", got, want)
	}
	if gone.recordSHA() != "" || gone.changed() {
		t.Errorf("an orphan plan must keep its record's hash and never count as applied")
	}
}
