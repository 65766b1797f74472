package server

import (
	"context"
	"fmt"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// nodeListerRole lets every node read all Nodes: flannel, in each agent, learns the other
// nodes' subnets and tunnel endpoints from them. The Node authorizer alone only lets a node
// read its own Node object.
const nodeListerRole = "ketch:node-lister"

// ensureRBAC creates or updates the cluster roles ketch's own components need.
func ensureRBAC(ctx context.Context, client kubernetes.Interface) error {
	labels := map[string]string{"app.kubernetes.io/managed-by": "ketch"}
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: nodeListerRole, Labels: labels},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get", "list", "watch"}}},
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: nodeListerRole, Labels: labels},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: nodeListerRole},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.GroupKind, Name: "system:nodes"}},
	}
	roles, bindings := client.RbacV1().ClusterRoles(), client.RbacV1().ClusterRoleBindings()
	if _, err := roles.Create(ctx, role, metav1.CreateOptions{}); apierrors.IsAlreadyExists(err) {
		_, err = roles.Update(ctx, role, metav1.UpdateOptions{})
		if err != nil {
			return fmt.Errorf("updating cluster role %s: %w", role.Name, err)
		}
	} else if err != nil {
		return fmt.Errorf("creating cluster role %s: %w", role.Name, err)
	}
	if _, err := bindings.Create(ctx, binding, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating cluster role binding %s: %w", binding.Name, err)
	}
	return nil
}
