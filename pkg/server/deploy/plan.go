package deploy

// plan is what a pass does with one file's record once its content has been applied: the objects
// the record now lists, and those to delete unless another file still holds them. Deletions
// wait until every file has applied, so that an object moved to another file survives.
type plan struct {
	file   string
	record *record // as listed when the pass began; nil if none
	// sha is the content's hash; prev the file's state before this pass.
	sha  string
	prev fileState
	// applyErr is why some objects did not apply; nothing is deleted then.
	applyErr error
	objects  []objectRef
	prune    []objectRef
	// orphan is a record whose file is gone: it goes once its objects are deleted.
	orphan bool
}

// newPlan is the plan for a file whose objects applied as applied (in file order, repeats
// allowed), some of them failing with applyErr.
func newPlan(file, sha string, rec *record, applied []objectRef, applyErr error) *plan {
	p := &plan{file: file, record: rec, sha: sha, applyErr: applyErr}
	var old []objectRef
	if rec != nil {
		old = rec.objects
	}
	if applyErr != nil {
		// An object that failed this time may well still exist from before: keep listing it.
		p.objects = union(applied, old)
		return p
	}
	p.objects = union(applied, nil)
	p.prune = subtract(old, p.objects)
	return p
}

func orphanPlan(file string, rec *record) *plan {
	return &plan{file: file, record: rec, prune: rec.objects, orphan: true}
}

// claims is every object some file still holds: what the plans list, and what the records no
// plan replaces list.
func claims(recs map[string]*record, plans []*plan) map[objectKey]bool {
	claimed := map[objectKey]bool{}
	planned := map[string]bool{}
	for _, p := range plans {
		planned[p.file] = true
		for _, r := range p.objects {
			claimed[r.key()] = true
		}
	}
	for file, rec := range recs {
		if planned[file] {
			continue
		}
		for _, r := range rec.objects {
			claimed[r.key()] = true
		}
	}
	return claimed
}

// deletions is what the plan prunes that no file claims.
func (p *plan) deletions(claimed map[objectKey]bool) []objectRef {
	var out []objectRef
	for _, r := range p.prune {
		if !claimed[r.key()] {
			out = append(out, r)
		}
	}
	return out
}

// recordSHA is the hash the record keeps: that of the content last applied completely.
func (p *plan) recordSHA() string {
	if p.orphan || p.applyErr != nil {
		if p.record == nil {
			return ""
		}
		return p.record.sha
	}
	return p.sha
}

// changed is whether the plan applied content the cluster had not seen applied completely, which
// deserves an Applied event.
func (p *plan) changed() bool {
	if p.orphan || p.applyErr != nil {
		return false
	}
	return p.record == nil || p.record.sha != p.sha || p.prev.reason == reasonParseFailed || p.prev.reason == reasonApplyFailed
}
