package servicelb

import (
	"bytes"
	"net"
	"slices"
	"strings"
	"testing"
	"text/template"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/ketch-k8s/ketch/manifests"
	"github.com/ketch-k8s/ketch/pkg/addons/role"
)

// renderedManifest is manifests/servicelb.yaml rendered as the server renders it, decoded
// strictly (a misspelt field fails) into its objects.
type renderedManifest struct {
	deployment   *appsv1.Deployment
	account      *v1.ServiceAccount
	clusterRoles map[string]*rbacv1.ClusterRole
	roles        map[string]*rbacv1.Role
	clusterBinds []*rbacv1.ClusterRoleBinding
	binds        []*rbacv1.RoleBinding
}

func renderManifest(t *testing.T, values manifests.Values) renderedManifest {
	t.Helper()
	tmpl, err := template.New("servicelb.yaml").Option("missingkey=error").ParseFiles("../../../manifests/servicelb.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, values); err != nil {
		t.Fatal(err)
	}
	m := renderedManifest{clusterRoles: map[string]*rbacv1.ClusterRole{}, roles: map[string]*rbacv1.Role{}}
	for doc := range strings.SplitSeq(b.String(), "\n---\n") {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
			t.Fatalf("%v in\n%s", err, doc)
		}
		var obj any
		switch tm.Kind {
		case "Deployment":
			obj = &appsv1.Deployment{}
		case "ServiceAccount":
			obj = &v1.ServiceAccount{}
		case "ClusterRole":
			obj = &rbacv1.ClusterRole{}
		case "Role":
			obj = &rbacv1.Role{}
		case "ClusterRoleBinding":
			obj = &rbacv1.ClusterRoleBinding{}
		case "RoleBinding":
			obj = &rbacv1.RoleBinding{}
		default:
			t.Fatalf("unexpected kind %q in\n%s", tm.Kind, doc)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
			t.Fatalf("%s: %v", tm.Kind, err)
		}
		switch o := obj.(type) {
		case *appsv1.Deployment:
			m.deployment = o
		case *v1.ServiceAccount:
			m.account = o
		case *rbacv1.ClusterRole:
			m.clusterRoles[o.Name] = o
		case *rbacv1.Role:
			m.roles[o.Namespace+"/"+o.Name] = o
		case *rbacv1.ClusterRoleBinding:
			m.clusterBinds = append(m.clusterBinds, o)
		case *rbacv1.RoleBinding:
			m.binds = append(m.binds, o)
		}
	}
	return m
}

func TestManifestDeployment(t *testing.T) {
	const image = "localhost/ketch/addons:0123abcd"
	m := renderManifest(t, manifests.Values{AddonsImage: image, ClusterDNS: "10.43.0.10", ClusterDomain: "cluster.local"})
	d := m.deployment
	if d == nil || d.Namespace != metav1.NamespaceSystem || d.Labels["app.kubernetes.io/name"] != "servicelb" {
		t.Fatalf("deployment %+v", d)
	}
	pod := d.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Containers))
	}
	c := pod.Containers[0]
	if c.Image != image || c.ImagePullPolicy != v1.PullNever || !slices.Equal(c.Args, []string{"servicelb"}) {
		t.Errorf("container image %q pull %q args %q", c.Image, c.ImagePullPolicy, c.Args)
	}
	if m.account == nil || pod.ServiceAccountName != m.account.Name || m.account.Namespace != d.Namespace {
		t.Errorf("pod runs as %q, manifest has service account %+v", pod.ServiceAccountName, m.account)
	}
	_, port, _ := net.SplitHostPort(defaultHealthAddr)
	for name, p := range map[string]*v1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" || p.HTTPGet.Port.String() != port {
			t.Errorf("%s probe %+v: want GET /healthz on %s, where Main serves it", name, p, port)
		}
	}
	sc, psc := c.SecurityContext, pod.SecurityContext
	if sc == nil || psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser != 65534 ||
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []v1.Capability{"ALL"}) ||
		psc.SeccompProfile == nil || psc.SeccompProfile.Type != v1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("security context: pod %+v, container %+v", psc, sc)
	}
}

// TestManifestRBAC checks that the manifest grants every request the controller makes, in the
// namespace it makes it.
func TestManifestRBAC(t *testing.T) {
	m := renderManifest(t, manifests.Values{AddonsImage: "img"})
	sa := rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: "servicelb", Namespace: metav1.NamespaceSystem}
	var cluster []rbacv1.PolicyRule
	for _, b := range m.clusterBinds {
		if r := m.clusterRoles[b.RoleRef.Name]; b.RoleRef.Kind == "ClusterRole" && r != nil && slices.Contains(b.Subjects, sa) {
			cluster = append(cluster, r.Rules...)
		}
	}
	var system []rbacv1.PolicyRule
	for _, b := range m.binds {
		if r := m.roles[b.Namespace+"/"+b.RoleRef.Name]; b.Namespace == role.LeaseNamespace && b.RoleRef.Kind == "Role" && r != nil && slices.Contains(b.Subjects, sa) {
			system = append(system, r.Rules...)
		}
	}
	allows := func(rules []rbacv1.PolicyRule, group, resource, verb, name string) bool {
		return slices.ContainsFunc(rules, func(r rbacv1.PolicyRule) bool {
			return slices.Contains(r.APIGroups, group) && slices.Contains(r.Resources, resource) && slices.Contains(r.Verbs, verb) &&
				(len(r.ResourceNames) == 0 || slices.Contains(r.ResourceNames, name))
		})
	}
	for _, req := range []struct{ group, resource, verb string }{
		{"", "services", "list"}, {"", "services", "watch"},
		{"", "nodes", "list"}, {"", "nodes", "watch"},
		{"", "services/status", "patch"},
		{"", "events", "create"}, {"", "events", "patch"},
	} {
		if !allows(cluster, req.group, req.resource, req.verb, "") {
			t.Errorf("%s %s/%s not granted cluster-wide", req.verb, req.group, req.resource)
		}
	}
	for _, verb := range []string{"get", "create", "update"} {
		if !allows(system, "coordination.k8s.io", "leases", verb, leaseName) {
			t.Errorf("%s lease %s/%s not granted", verb, role.LeaseNamespace, leaseName)
		}
		if verb != "create" && allows(system, "coordination.k8s.io", "leases", verb, "kube-controller-manager") {
			t.Errorf("%s granted on other leases", verb)
		}
	}
	if allows(cluster, "coordination.k8s.io", "leases", "update", "kube-controller-manager") || allows(cluster, "", "services", "update", "x") {
		t.Error("cluster-wide grant beyond the controller's needs")
	}
}
