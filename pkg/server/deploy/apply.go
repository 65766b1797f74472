package deploy

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
)

const fieldManager = "ketch"

var crdKind = schema.GroupKind{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}

// applier applies and deletes manifest objects: a thin layer over the dynamic client.
type applier struct {
	client dynamic.Interface
	mapper *restmapper.DeferredDiscoveryRESTMapper
	// fresh is whether discovery was redone since the pass began or a CRD was last applied; it
	// keeps a kind no CRD defines from costing a discovery for every object of that kind.
	fresh bool
}

// beginPass lets the next unknown kind redo discovery, in case a CRD appeared meanwhile.
func (a *applier) beginPass() { a.fresh = false }

func (a *applier) mapping(gk schema.GroupKind, versions ...string) (*meta.RESTMapping, error) {
	m, err := a.mapper.RESTMapping(gk, versions...)
	if meta.IsNoMatchError(err) && !a.fresh {
		a.mapper.Reset()
		a.fresh = true
		m, err = a.mapper.RESTMapping(gk, versions...)
	}
	return m, err
}

func (a *applier) resource(m *meta.RESTMapping, namespace string) dynamic.ResourceInterface {
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		return a.client.Resource(m.Resource).Namespace(namespace)
	}
	return a.client.Resource(m.Resource)
}

// apply server-side applies obj, putting a namespaced object without a namespace in "default"
// and dropping the namespace of a cluster-scoped one, and returns what it applied.
func (a *applier) apply(ctx context.Context, obj *unstructured.Unstructured) (objectRef, error) {
	gvk := obj.GroupVersionKind()
	m, err := a.mapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return objectRef{}, fmt.Errorf("%s: %w", refOf(obj), err)
	}
	switch {
	case m.Scope.Name() != meta.RESTScopeNameNamespace:
		obj.SetNamespace("")
	case obj.GetNamespace() == "":
		obj.SetNamespace(metav1.NamespaceDefault)
	}
	ref := refOf(obj)
	if _, err := a.resource(m, ref.Namespace).Apply(ctx, ref.Name, obj, metav1.ApplyOptions{FieldManager: fieldManager, Force: true}); err != nil {
		return objectRef{}, fmt.Errorf("%s: %w", ref, err)
	}
	if gvk.GroupKind() == crdKind {
		a.fresh = false
	}
	return ref, nil
}

// delete deletes the object in the background; one that is gone, or whose kind is, is deleted.
// Any served version will do: the one it was applied in may be gone after an upgrade.
func (a *applier) delete(ctx context.Context, ref objectRef) error {
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return fmt.Errorf("%s: %w", ref, err)
	}
	m, err := a.mapping(gv.WithKind(ref.Kind).GroupKind())
	if meta.IsNoMatchError(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w", ref, err)
	}
	background := metav1.DeletePropagationBackground
	err = a.resource(m, ref.Namespace).Delete(ctx, ref.Name, metav1.DeleteOptions{PropagationPolicy: &background})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("%s: %w", ref, err)
	}
	return nil
}
