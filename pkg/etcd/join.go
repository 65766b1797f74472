package etcd

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/klog/v2"
)

// AddLearner adds a member named name at peerURL to the cluster cli reaches, as a learner: it
// gets the data but has no vote until Promote, so a joining server that is slow or fails cannot
// cost the cluster its quorum. A member left by an earlier attempt of the same server (same
// name or peer URL) is removed first. It returns the new member's ID and the initial cluster
// the new member must start with.
func AddLearner(ctx context.Context, cli *clientv3.Client, name, peerURL string) (id uint64, initialCluster string, err error) {
	list, err := cli.MemberList(ctx)
	if err != nil {
		return 0, "", fmt.Errorf("listing the etcd members: %w", err)
	}
	removed := false
	for _, m := range list.Members {
		if m.Name == name || slices.Contains(m.PeerURLs, peerURL) {
			removed = true
			klog.InfoS("Removing an earlier etcd member of this server before joining again", "name", m.Name, "id", fmt.Sprintf("%x", m.ID), "peerURLs", m.PeerURLs)
			if _, err := cli.MemberRemove(ctx, m.ID); err != nil {
				return 0, "", fmt.Errorf("removing this server's earlier etcd member %x (%s): %w", m.ID, m.Name, err)
			}
		}
	}
	if removed {
		// etcd derives a new member's ID from its peer URLs and the time in seconds: added again
		// within the same second, the member would get the removed one's ID, which is refused.
		select {
		case <-ctx.Done():
			return 0, "", context.Cause(ctx)
		case <-time.After(1100 * time.Millisecond):
		}
	}
	// etcd refuses to add a member until every member has been connected for a few seconds
	// (--strict-reconfig-check): a server that joins right after another waits for that.
	var resp *clientv3.MemberAddResponse
	for {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		resp, err = cli.MemberAddAsLearner(rctx, []string{peerURL})
		cancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil || !retryable(err) {
			return 0, "", fmt.Errorf("adding this server to etcd as a learner: %w", err)
		}
		klog.InfoS("etcd cannot add a member yet; retrying", "reason", err)
		select {
		case <-ctx.Done():
			return 0, "", fmt.Errorf("adding this server to etcd as a learner: %w", context.Cause(ctx))
		case <-time.After(retryEvery):
		}
	}
	id = resp.Member.ID
	var parts []string
	for _, m := range resp.Members {
		n := m.Name
		if m.ID == id {
			n = name
		}
		if n == "" {
			// Another member that was added but never started: it has no name yet, and a
			// start needs one for every peer URL.
			return 0, "", errors.Join(fmt.Errorf("etcd member %x (%s) was added but has not started: another server is joining right now; try again when it has", m.ID, strings.Join(m.PeerURLs, ",")),
				Remove(context.WithoutCancel(ctx), cli, id))
		}
		for _, u := range m.PeerURLs {
			parts = append(parts, n+"="+u)
		}
	}
	return id, strings.Join(parts, ","), nil
}

// Promote makes the learner id a voting member as soon as it has caught up with the leader.
func Promote(ctx context.Context, cli *clientv3.Client, id uint64) error {
	for {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := cli.MemberPromote(rctx, id)
		cancel()
		switch {
		case err == nil, errors.Is(err, rpctypes.ErrMemberNotLearner):
			return nil
		case errors.Is(err, rpctypes.ErrMemberLearnerNotReady), errors.Is(err, context.DeadlineExceeded):
		default:
			if ctx.Err() == nil && !retryable(err) {
				return fmt.Errorf("promoting etcd member %x: %w", id, err)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("promoting etcd member %x: %w", id, context.Cause(ctx))
		case <-time.After(retryEvery):
		}
	}
}

// retryable is an error that a moment may cure: no leader yet, or a member unreachable.
func retryable(err error) bool {
	return errors.Is(err, rpctypes.ErrNoLeader) || errors.Is(err, rpctypes.ErrLeaderChanged) ||
		errors.Is(err, rpctypes.ErrTimeout) || errors.Is(err, rpctypes.ErrUnhealthy) ||
		strings.Contains(err.Error(), "connection") || strings.Contains(err.Error(), "Unavailable")
}

// Remove removes member id; a member already gone is not an error.
func Remove(ctx context.Context, cli *clientv3.Client, id uint64) error {
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := cli.MemberRemove(rctx, id); err != nil && !errors.Is(err, rpctypes.ErrMemberNotFound) {
		return fmt.Errorf("removing etcd member %x: %w", id, err)
	}
	return nil
}

// Voters counts the voting members (learners have no vote).
func Voters(members []*etcdserverpb.Member) int {
	n := 0
	for _, m := range members {
		if !m.IsLearner {
			n++
		}
	}
	return n
}

// IsLearner says whether the member with the given ID is a learner in the list.
func IsLearner(members []*etcdserverpb.Member, id uint64) bool {
	for _, m := range members {
		if m.ID == id {
			return m.IsLearner
		}
	}
	return false
}

// EvenWarning is what a server says of a cluster with an even number of voters, or "".
func EvenWarning(voters int) string {
	if voters < 2 || voters%2 == 1 {
		return ""
	}
	return fmt.Sprintf("etcd has %d voting members, an even number: it survives no more failures than %d would (quorum is %d); add or remove a server to make it odd",
		voters, voters-1, voters/2+1)
}
