package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestDeploymentAvailable(t *testing.T) {
	two := int32(2)
	ok := func() *appsv1.Deployment {
		return &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "coredns", Generation: 3},
			Spec:       appsv1.DeploymentSpec{Replicas: &two},
			Status: appsv1.DeploymentStatus{ObservedGeneration: 3, Replicas: 2, UpdatedReplicas: 2, ReadyReplicas: 2, AvailableReplicas: 2,
				Conditions: []appsv1.DeploymentCondition{
					{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue},
					{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue},
				}},
		}
	}
	if !deploymentAvailable(ok()) {
		t.Fatal("a fully rolled out Deployment is not available")
	}
	for name, change := range map[string]func(*appsv1.Deployment){
		"spec not yet observed":  func(d *appsv1.Deployment) { d.Status.ObservedGeneration = 2 },
		"a replica not ready":    func(d *appsv1.Deployment) { d.Status.ReadyReplicas = 1 },
		"a replica not updated":  func(d *appsv1.Deployment) { d.Status.UpdatedReplicas = 1 },
		"an old replica left":    func(d *appsv1.Deployment) { d.Status.Replicas = 3 },
		"ready, not available":   func(d *appsv1.Deployment) { d.Status.AvailableReplicas = 1 },
		"Available False":        func(d *appsv1.Deployment) { d.Status.Conditions[1].Status = corev1.ConditionFalse },
		"no Available condition": func(d *appsv1.Deployment) { d.Status.Conditions = d.Status.Conditions[:1] },
	} {
		d := ok()
		change(d)
		if deploymentAvailable(d) {
			t.Errorf("%s: available", name)
		}
	}
	// No replicas in the spec means 1.
	d := ok()
	d.Spec.Replicas = nil
	d.Status.Replicas, d.Status.UpdatedReplicas, d.Status.ReadyReplicas, d.Status.AvailableReplicas = 1, 1, 1, 1
	if !deploymentAvailable(d) {
		t.Error("default replicas: not available")
	}
}

func TestAddonProcs(t *testing.T) {
	procs := []procInfo{
		{pid: 10, argv: []string{"/ketch-addons", "coredns", "-conf", "/etc/coredns/Corefile"}},
		{pid: 11, argv: []string{"/ketch-addons", "metrics-server", "--secure-port=10250"}},
		{pid: 12, argv: []string{"/ketch-addons", "local-path-helper", "create"}},
		{pid: 13, argv: []string{"/ketch-addons", "coredns"}},
		// Not the addon program: another path, the program without a role, another program
		// that names it.
		{pid: 20, argv: []string{"/usr/bin/ketch-addons", "coredns"}},
		{pid: 21, argv: []string{"/ketch-addons"}},
		{pid: 22, argv: []string{"/pause", "/ketch-addons", "coredns"}},
		{pid: 23, argv: []string{""}},
	}
	got := addonProcs(procs)
	want := map[string][]int{"coredns": {10, 13}, "metrics-server": {11}, "local-path-helper": {12}}
	if len(got) != len(want) {
		t.Fatalf("addonProcs = %v, want %v", got, want)
	}
	for role, pids := range want {
		if !slices.Equal(got[role], pids) {
			t.Errorf("role %s: %v, want %v", role, got[role], pids)
		}
	}
}

func TestParseMicros(t *testing.T) {
	got, err := parseMicros("812.4\n1200.0\n 95.0\n")
	want := []time.Duration{812400 * time.Nanosecond, 1200 * time.Microsecond, 95 * time.Microsecond}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("parseMicros = %v, %v; want %v", got, err, want)
	}
	for _, bad := range []string{"", "12\nerror: timeout\n", "-1"} {
		if _, err := parseMicros(bad); err == nil {
			t.Errorf("parseMicros(%q): want an error", bad)
		}
	}
}

func TestAddonsSection(t *testing.T) {
	run := func(label string, node time.Duration, addons ...time.Duration) addonsRun {
		r := addonsRun{label: label, nodeReady: node, addons: map[string]time.Duration{}}
		for i, role := range addonRoles {
			r.addons[role] = addons[i]
		}
		return r
	}
	var dns []time.Duration
	for i := range 1000 {
		dns = append(dns, time.Duration(1000-i)*time.Microsecond) // 1 µs … 1 ms, in reverse
	}
	mem := addonMemory{idle: time.Minute,
		roles: map[string]pssGroup{
			"coredns":                {pss: 20 << 20, anon: 12 << 20, procs: 1},
			"metrics-server":         {pss: 25 << 20, anon: 15 << 20, procs: 1},
			"servicelb":              {pss: 10 << 20, anon: 6 << 20, procs: 1},
			"local-path-provisioner": {pss: 9 << 20, anon: 5 << 20, procs: 1},
			"local-path-helper":      {pss: 1 << 20, anon: 1 << 20, procs: 1},
		},
		rss: map[string]uint64{"coredns": 40 << 20, "metrics-server": 45 << 20, "servicelb": 30 << 20, "local-path-provisioner": 29 << 20, "local-path-helper": 20 << 20},
	}
	res := addonsResult{
		runs: []addonsRun{
			run("cold-1", 8*time.Second, 12*time.Second, 18*time.Second, 11*time.Second, 11500*time.Millisecond),
			run("cold-2", 7*time.Second, 11*time.Second, 16*time.Second, 10*time.Second, 10*time.Second),
			run("cold-3", 9*time.Second, 13*time.Second, 21*time.Second, 12*time.Second, 12*time.Second),
		},
		memory: mem, dns: dns, load: "0.3", loadEnd: "1.2",
	}
	r := addonsReport{opts: serverOptions{ketchBin: "/x/bin/ketch"}, sizes: defaultAddonsSizes(false), res: res, elapsed: 4 * time.Minute, date: time.Unix(0, 0)}
	s := r.section()
	for _, want := range []string{
		"| exec → all 4 addon Deployments available, cold (median of 3, min–max) | 18.00 s (16.00–21.00 s) | ≤ 20 s | met |",
		"| for context: exec → node Ready, same runs | 8.00 s (7.00–9.00 s) | — | |",
		"| addon memory, PSS of all addon pods' processes, idle | 65 MiB (68.2 MB) | < 100 MB | met |",
		"| DNS lookup from a pod through the cluster DNS, p99 (1,000 lookups) | 0.990 ms | < 5 ms | met |",
		"| run | node Ready | coredns | metrics-server | servicelb | local-path-provisioner | all available |",
		"| cold-3 | 9.00 s | 13.00 s | 21.00 s | 12.00 s | 12.00 s | 21.00 s |",
		"| median | 8.00 s | 12.00 s | 18.00 s | 11.00 s | 11.50 s | 18.00 s |",
		"| coredns | 20 MiB | 12 MiB | 8 MiB | 40 MiB | 1 |",
		// A role outside the four, running at the time, is shown after them and counted.
		"| local-path-provisioner | 9 MiB | 5 MiB | 4 MiB | 29 MiB | 1 |\n| local-path-helper | 1 MiB | 1 MiB | 0 B | 20 MiB | 1 |\n| total | 65 MiB | 39 MiB | 26 MiB | 164 MiB | 5 |",
		"| `kubernetes.default.svc.cluster.local.` | 1,000 | 0.500 ms | 0.900 ms | 0.990 ms | 1.00 ms |",
		"load average 0.3 when the run started, 1.2 when it ended",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("section lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "Quick smoke run") {
		t.Error("a full run is labelled quick")
	}

	// Missed targets.
	res.memory.roles["coredns"] = pssGroup{pss: 60 << 20, anon: 50 << 20, procs: 1}
	res.dns = []time.Duration{6 * time.Millisecond}
	res.runs = res.runs[:1]
	res.runs[0].addons["servicelb"] = 25 * time.Second
	r.res, r.opts.quick, r.sizes = res, true, defaultAddonsSizes(true)
	s = r.section()
	for _, want := range []string{
		"| exec → all 4 addon Deployments available, cold (median of 1, min–max) | 25.00 s | ≤ 20 s | **missed** |",
		"| addon memory, PSS of all addon pods' processes, idle | 105 MiB (110.1 MB) | < 100 MB | **missed** |",
		"| DNS lookup from a pod through the cluster DNS, p99 (1 lookup) | 6.00 ms | < 5 ms | **missed** |",
		"**Quick smoke run (`--quick`): 2 cold starts, 20 s idle",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("section lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "| median |") {
		t.Error("a single run has a median row")
	}
}
