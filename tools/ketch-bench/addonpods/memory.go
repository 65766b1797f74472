package addonpods

import (
	"fmt"
	"slices"
	"sort"

	"github.com/ketch-k8s/ketch/internal/harness"
)

// Memory is the memory of the addon pods' processes, by role.
type Memory map[string]harness.MemGroup

// Total is all the addon processes.
func (m Memory) Total() harness.MemGroup {
	var t harness.MemGroup
	for _, g := range m {
		t = t.Plus(g)
	}
	return t
}

// Roles are the roles with a memory sample: the addons in their usual order, then any other
// role the addon program ran at the time (such as a local-path helper), sorted.
func (m Memory) Roles() []string {
	roles := slices.Clone(Roles)
	var extra []string
	for r := range m {
		if !slices.Contains(roles, r) {
			extra = append(extra, r)
		}
	}
	sort.Strings(extra)
	return append(roles, extra...)
}

// procsByRole groups the processes that run the addon program by role, argv[1]: the runtime
// execs the image's entrypoint as given, so argv[0] is its path in the image.
func procsByRole(procs []harness.Proc) map[string][]int {
	roles := map[string][]int{}
	for _, p := range procs {
		if len(p.Argv) >= 2 && p.Argv[0] == Program {
			roles[p.Argv[1]] = append(roles[p.Argv[1]], p.PID)
		}
	}
	return roles
}

// ReadMemory sums the memory of the addon processes among the node's containers (below its
// containerd's shims), and fails if an addon has none.
func ReadMemory(serverPID int, socket string) (Memory, error) {
	procs, err := harness.Procs()
	if err != nil {
		return nil, err
	}
	_, _, containers := harness.NodeProcs(procs, serverPID, socket)
	procs = slices.DeleteFunc(procs, func(p harness.Proc) bool { return !slices.Contains(containers, p.PID) })
	m := Memory{}
	for role, pids := range procsByRole(procs) {
		m[role] = harness.MemoryOf(pids)
	}
	for _, role := range Roles {
		if m[role].Procs == 0 {
			return m, fmt.Errorf("no process of the %s addon (%s %s) among the node's containers", role, Program, role)
		}
	}
	return m, nil
}
