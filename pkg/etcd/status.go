package etcd

import (
	"context"
	"fmt"
	"slices"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// MemberStatus is one member as `ketch datastore status` shows it.
type MemberStatus struct {
	Name      string
	ID        uint64
	ClientURL string
	// Role is leader, follower or learner.
	Role     string
	Revision int64
	RaftTerm uint64
	DBSize   int64
	// Health is "healthy", or why the member is not.
	Health string
}

// Status asks each member of the cluster cli reaches for its status. A member that does not
// answer is listed with the reason.
func Status(ctx context.Context, cli *clientv3.Client) ([]MemberStatus, error) {
	list, err := cli.MemberList(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing the members: %w", err)
	}
	var out []MemberStatus
	for _, m := range list.Members {
		s := MemberStatus{Name: m.Name, ID: m.ID, Role: "follower", Health: "healthy"}
		if m.IsLearner {
			s.Role = "learner"
		}
		if len(m.ClientURLs) == 0 {
			s.Health = "not started (added, but it never joined)"
			out = append(out, s)
			continue
		}
		s.ClientURL = m.ClientURLs[0]
		sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		st, err := cli.Status(sctx, s.ClientURL)
		cancel()
		switch {
		case err != nil:
			s.Health = "unreachable: " + err.Error()
		default:
			s.Revision, s.RaftTerm, s.DBSize = st.Header.Revision, st.RaftTerm, st.DbSize
			if st.Leader == m.ID {
				s.Role = "leader"
			}
			if len(st.Errors) > 0 {
				s.Health = "unhealthy: " + st.Errors[0]
			} else if st.Leader == 0 {
				s.Health = "unhealthy: no leader"
			}
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b MemberStatus) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return out, nil
}
