package kubetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"
)

var crdResource = schema.GroupVersionResource{
	Group:    "apiextensions.k8s.io",
	Version:  "v1",
	Resource: "customresourcedefinitions",
}

// ApplyCRD installs (or replaces) the apiextensions.k8s.io/v1
// CustomResourceDefinition in manifest (YAML or JSON, one document) and
// returns once the API server serves it: it is Established and its group
// version appears in discovery, so clients can create objects at once.
func (e *Env) ApplyCRD(t testing.TB, manifest []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.applyCRD(ctx, manifest); err != nil {
		t.Fatalf("kubetest: apply CRD: %v", err)
	}
}

func (e *Env) applyCRD(ctx context.Context, manifest []byte) error {
	var obj unstructured.Unstructured
	if err := yaml.Unmarshal(manifest, &obj.Object); err != nil {
		return fmt.Errorf("parse manifest: %w", err)
	}
	if obj.GetKind() != "CustomResourceDefinition" || obj.GetAPIVersion() != "apiextensions.k8s.io/v1" {
		return fmt.Errorf("manifest is %s %s, want apiextensions.k8s.io/v1 CustomResourceDefinition", obj.GetAPIVersion(), obj.GetKind())
	}
	name := obj.GetName()
	group, _, _ := unstructured.NestedString(obj.Object, "spec", "group")
	versions, _, _ := unstructured.NestedSlice(obj.Object, "spec", "versions")
	if name == "" || group == "" || len(versions) == 0 {
		return fmt.Errorf("CRD %q needs metadata.name, spec.group and spec.versions", name)
	}
	dyn, err := dynamic.NewForConfig(e.RESTConfig)
	if err != nil {
		return fmt.Errorf("build dynamic client: %w", err)
	}
	crds := dyn.Resource(crdResource)
	existing, err := crds.Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		if _, err := crds.Create(ctx, &obj, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create %s: %w", name, err)
		}
	case err != nil:
		return fmt.Errorf("get %s: %w", name, err)
	default:
		obj.SetResourceVersion(existing.GetResourceVersion())
		if _, err := crds.Update(ctx, &obj, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("update %s: %w", name, err)
		}
	}

	disco, err := discovery.NewDiscoveryClientForConfig(e.RESTConfig)
	if err != nil {
		return fmt.Errorf("build discovery client: %w", err)
	}
	var last error
	err = wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		got, err := crds.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			last = err
			return false, nil
		}
		conds, _, _ := unstructured.NestedSlice(got.Object, "status", "conditions")
		established := false
		for _, c := range conds {
			m, _ := c.(map[string]any)
			if m["type"] == "Established" && m["status"] == "True" {
				established = true
			}
		}
		if !established {
			last = fmt.Errorf("condition Established is not True")
			return false, nil
		}
		for _, v := range versions {
			m, _ := v.(map[string]any)
			if served, _ := m["served"].(bool); !served {
				continue
			}
			gv := group + "/" + fmt.Sprint(m["name"])
			if _, err := disco.ServerResourcesForGroupVersion(gv); err != nil {
				last = fmt.Errorf("discovery of %s: %w", gv, err)
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("CRD %s not served: %v (%w)", name, last, err)
	}
	return nil
}

// CreateNamespace creates a namespace with a generated name starting with
// prefix and returns the name. Without the controller manager a deleted
// namespace never finishes terminating, so tests isolate themselves by
// namespace rather than by deleting.
func (e *Env) CreateNamespace(t testing.TB, prefix string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ns, err := e.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("kubetest: create namespace %s-*: %v", prefix, err)
	}
	return ns.Name
}
