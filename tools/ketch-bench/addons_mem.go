package main

import (
	"fmt"
	"slices"
	"time"
)

// addonsProgram is the addon image's entrypoint, argv[0] of every addon pod's process.
const addonsProgram = "/ketch-addons"

// addonMemory is the PSS and RSS of the addon pods' processes, by role.
type addonMemory struct {
	roles map[string]pssGroup
	rss   map[string]uint64
	idle  time.Duration // since all addons were available
}

func (m addonMemory) total() pssGroup {
	var t pssGroup
	for _, g := range m.roles {
		t = t.plus(g)
	}
	return t
}

func (m addonMemory) totalRSS() uint64 {
	var t uint64
	for _, r := range m.rss {
		t += r
	}
	return t
}

// addonProcs groups the processes that run the addon program by role, argv[1]: the runtime
// execs the image's entrypoint as given, so argv[0] is its path in the image.
func addonProcs(procs []procInfo) map[string][]int {
	roles := map[string][]int{}
	for _, p := range procs {
		if len(p.argv) >= 2 && p.argv[0] == addonsProgram {
			roles[p.argv[1]] = append(roles[p.argv[1]], p.pid)
		}
	}
	return roles
}

// addonsMemory sums the PSS of the addon processes among the node's containers, and fails if
// an addon has none.
func addonsMemory(serverPID int, socket string) (addonMemory, error) {
	procs, err := listProcs()
	if err != nil {
		return addonMemory{}, err
	}
	_, _, containers := nodeProcs(procs, serverPID, socket)
	procs = slices.DeleteFunc(procs, func(p procInfo) bool { return !slices.Contains(containers, p.pid) })
	m := addonMemory{roles: map[string]pssGroup{}, rss: map[string]uint64{}}
	for role, pids := range addonProcs(procs) {
		m.roles[role], m.rss[role] = pssOf(pids), rssOf(pids)
	}
	for _, role := range addonRoles {
		if m.roles[role].procs == 0 {
			return m, fmt.Errorf("no process of the %s addon (%s %s) among the node's containers", role, addonsProgram, role)
		}
	}
	return m, nil
}
