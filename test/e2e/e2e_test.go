package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestLifecycle walks one release through what a user does with it, in
// order: install, traffic, helm test, a live token update, an upgrade
// under load, a rollback and a delete. Each step needs the previous one.
func TestLifecycle(t *testing.T) {
	c := requireCluster(t)
	ns := c.namespace(t, "e2e-lifecycle")
	tok1 := token(t)
	ep := c.endpoint(t, tok1, "rev-1")
	r := &release{c: c, name: "apim", ns: ns}
	base := c.baseSettings(ep, tok1).with(settings{"service.type": "NodePort", "replicaCount": 2})
	t.Cleanup(func() {
		if t.Failed() {
			r.dump(t)
		}
	})

	step := func(name string, f func(t *testing.T)) {
		if !t.Run(name, f) {
			t.FailNow()
		}
	}

	var urls []string
	step("install with a gateway token: pods Ready under the restricted profile", func(t *testing.T) {
		r.install(t, base, true)
		pods := r.pods(t)
		if len(pods) != 2 {
			t.Fatalf("%d pods, want replicaCount 2", len(pods))
		}
		for _, p := range pods {
			if !podReady(p) {
				t.Fatalf("pod %s not Ready after helm install --wait", p.Name)
			}
			if len(p.Spec.Containers) != 2 {
				t.Fatalf("pod %s has %d containers, want gateway and agent", p.Name, len(p.Spec.Containers))
			}
		}
		nsObj, err := c.client.CoreV1().Namespaces().Get(context.Background(), ns, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if nsObj.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
			t.Fatal("namespace does not enforce the restricted profile; the check above proves nothing")
		}
	})

	step("an API from the configuration endpoint answers through ClusterIP and NodePort", func(t *testing.T) {
		svc := r.service(t)
		if svc.Spec.Type != corev1.ServiceTypeNodePort {
			t.Fatalf("service type %s, want NodePort", svc.Spec.Type)
		}
		var nodePort int32
		for _, p := range svc.Spec.Ports {
			if p.Name == "http" {
				nodePort = p.NodePort
				urls = append(urls, fmt.Sprintf("http://%s/hello/ping", net.JoinHostPort(svc.Spec.ClusterIP, strconv.Itoa(int(p.Port)))))
			}
		}
		if nodePort == 0 {
			t.Fatalf("service %s has no http nodePort: %+v", svc.Name, svc.Spec.Ports)
		}
		urls = append(urls,
			fmt.Sprintf("http://%s/hello/ping", net.JoinHostPort(c.nodeIP, strconv.Itoa(int(nodePort)))),
			fmt.Sprintf("http://127.0.0.1:%d/hello/ping", nodePort))
		for _, u := range urls {
			eventually(t, 60*time.Second, "GET "+u, func() error { return expectBody(u, "rev-1") })
		}
	})

	step("a new configuration reaches the running gateways", func(t *testing.T) {
		ep.SetSnapshot(snapshot(t, "rev-2"))
		for _, u := range urls {
			eventually(t, 60*time.Second, "GET "+u, func() error { return expectBody(u, "rev-2") })
		}
	})

	step("helm test passes", func(t *testing.T) {
		if out, err := c.helm(t, "test", r.name, "-n", ns, "--timeout", "3m"); err != nil {
			t.Fatalf("helm test: %v\n%s", err, out)
		}
	})

	step("heartbeats reach the endpoint", func(t *testing.T) {
		eventually(t, 90*time.Second, "a Synced heartbeat", func() error {
			for _, hb := range ep.Heartbeats() {
				if hb.Status == "Synced" && hb.ConfigurationRevision != "" {
					return nil
				}
			}
			return fmt.Errorf("heartbeats so far: %+v", ep.Heartbeats())
		})
	})

	step("a new token in protected settings reaches the running agents", func(t *testing.T) {
		before := podSet(r.pods(t))
		tok2 := token(t)
		ep.SetTokens(tok1, tok2)
		l := startLoad(t, urls)
		r.upgrade(t, base.with(settings{"gateway.auth.token": tok2}))
		// Kubernetes refreshes mounted Secrets within its sync period; the
		// agent must pick the new file up without a restart.
		eventually(t, 3*time.Minute, "the agents to use the new token", func() error {
			if n := ep.AuthenticatedWith(tok2); n == 0 {
				return fmt.Errorf("no request with the new token yet")
			}
			return nil
		})
		// Only the new token works from now on: a configuration published
		// after this can only arrive with it.
		ep.SetTokens(tok2)
		ep.SetSnapshot(snapshot(t, "rev-3"))
		for _, u := range urls {
			eventually(t, 2*time.Minute, "GET "+u, func() error { return expectBody(u, "rev-3") })
		}
		l.stop(t, true)
		if after := podSet(r.pods(t)); !sameSet(before, after) {
			t.Fatalf("pods changed on a token update (%v -> %v); the token must apply live", before, after)
		}
		for _, p := range r.pods(t) {
			for _, cs := range p.Status.ContainerStatuses {
				if cs.RestartCount != 0 {
					t.Fatalf("container %s/%s restarted %d times", p.Name, cs.Name, cs.RestartCount)
				}
			}
		}
		base = base.with(settings{"gateway.auth.token": tok2})
	})

	step("an upgrade to the next version rolls the pods with zero failed requests", func(t *testing.T) {
		before := podSet(r.pods(t))
		l := startLoad(t, urls)
		r.upgrade(t, base.with(settings{"image.tag": "e2e-next"}))
		// Keep the load on until the old pods are gone.
		eventually(t, 2*time.Minute, "old pods to go", func() error {
			for _, p := range r.pods(t) {
				if before[p.Name] {
					return fmt.Errorf("old pod %s still there", p.Name)
				}
			}
			return nil
		})
		l.stop(t, true)
		for _, p := range r.pods(t) {
			if img := p.Spec.Containers[0].Image; !strings.HasSuffix(img, ":e2e-next") {
				t.Fatalf("pod %s runs %s after the upgrade", p.Name, img)
			}
		}
	})

	step("rollback returns to the previous version", func(t *testing.T) {
		if out, err := c.helm(t, "rollback", r.name, "-n", ns, "--wait", "--timeout", "5m"); err != nil {
			t.Fatalf("helm rollback: %v\n%s", err, out)
		}
		eventually(t, 2*time.Minute, "pods on the previous image", func() error {
			pods := r.pods(t)
			if len(pods) != 2 {
				return fmt.Errorf("%d pods", len(pods))
			}
			for _, p := range pods {
				if img := p.Spec.Containers[0].Image; !strings.HasSuffix(img, ":e2e") || !podReady(p) {
					return fmt.Errorf("pod %s runs %s ready=%v", p.Name, img, podReady(p))
				}
			}
			return nil
		})
		for _, u := range urls {
			eventually(t, 60*time.Second, "GET "+u, func() error { return expectBody(u, "rev-3") })
		}
	})

	step("delete removes everything the chart created", func(t *testing.T) {
		if out, err := c.helm(t, "uninstall", r.name, "-n", ns, "--wait", "--timeout", "3m"); err != nil {
			t.Fatalf("helm uninstall: %v\n%s", err, out)
		}
		eventually(t, 2*time.Minute, "no object of the release left", func() error {
			return r.leftovers()
		})
		pods, err := c.client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: r.selector()})
		if err != nil {
			t.Fatal(err)
		}
		// The test pod deletes itself once it succeeded (hook-succeeded);
		// only a failed test keeps its pod for debugging.
		for _, p := range pods.Items {
			t.Errorf("pod %s is left after uninstall (hook-delete-policy %q)", p.Name, p.Annotations["helm.sh/hook-delete-policy"])
		}
	})
}

// TestServiceTypes installs the chart with each service.type and checks
// the Service the API server made of it. There is no cloud: a LoadBalancer
// Service gets node ports and stays pending.
func TestServiceTypes(t *testing.T) {
	c := requireCluster(t)
	ns := c.namespace(t, "e2e-service-types")
	tok := token(t)
	ep := c.endpoint(t, tok, "svc-1")
	// No pods needed: the Service is what is checked.
	base := c.baseSettings(ep, tok).with(settings{"replicaCount": 0})

	tests := []struct {
		name     string
		settings settings
		check    func(t *testing.T, svc *corev1.Service)
	}{
		{"ClusterIP", settings{"service.type": "ClusterIP"}, func(t *testing.T, svc *corev1.Service) {
			if svc.Spec.Type != corev1.ServiceTypeClusterIP || svc.Spec.ClusterIP == "" {
				t.Fatalf("type %s clusterIP %q", svc.Spec.Type, svc.Spec.ClusterIP)
			}
			for _, p := range svc.Spec.Ports {
				if p.NodePort != 0 {
					t.Fatalf("ClusterIP service has nodePort %d on %s", p.NodePort, p.Name)
				}
			}
			wantPorts(t, svc, map[string]int32{"http": 8080, "https": 8081})
		}},
		{"NodePort with a fixed node port", settings{"service.type": "NodePort", "service.http.nodePort": 30180, "service.http.port": 80}, func(t *testing.T, svc *corev1.Service) {
			if svc.Spec.Type != corev1.ServiceTypeNodePort {
				t.Fatalf("type %s", svc.Spec.Type)
			}
			wantPorts(t, svc, map[string]int32{"http": 80, "https": 8081})
			for _, p := range svc.Spec.Ports {
				switch {
				case p.Name == "http" && p.NodePort != 30180:
					t.Fatalf("http nodePort %d, want 30180", p.NodePort)
				case p.NodePort < 30000 || p.NodePort > 32767:
					t.Fatalf("%s nodePort %d outside the node port range", p.Name, p.NodePort)
				}
			}
		}},
		{"LoadBalancer stays pending without a cloud", settings{"service.type": "LoadBalancer", "service.externalTrafficPolicy": "Local", "service.annotations": map[string]any{"service.beta.kubernetes.io/azure-load-balancer-internal": "true"}}, func(t *testing.T, svc *corev1.Service) {
			if svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
				t.Fatalf("type %s", svc.Spec.Type)
			}
			if svc.Spec.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyLocal || svc.Spec.HealthCheckNodePort == 0 {
				t.Fatalf("externalTrafficPolicy %q healthCheckNodePort %d, want Local with a health check port", svc.Spec.ExternalTrafficPolicy, svc.Spec.HealthCheckNodePort)
			}
			if svc.Annotations["service.beta.kubernetes.io/azure-load-balancer-internal"] != "true" {
				t.Fatalf("service.annotations not on the Service: %v", svc.Annotations)
			}
			for _, p := range svc.Spec.Ports {
				if p.NodePort == 0 {
					t.Fatalf("LoadBalancer port %s has no nodePort", p.Name)
				}
			}
			if len(svc.Status.LoadBalancer.Ingress) != 0 {
				t.Fatalf("LoadBalancer got an address without a cloud: %+v", svc.Status.LoadBalancer.Ingress)
			}
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &release{c: c, name: "svc" + strconv.Itoa(i), ns: ns}
			r.install(t, base.with(tt.settings), false)
			tt.check(t, r.service(t))
			if out, err := c.helm(t, "uninstall", r.name, "-n", ns, "--wait", "--timeout", "2m"); err != nil {
				t.Fatalf("helm uninstall: %v\n%s", err, out)
			}
		})
	}

	t.Run("a bad service.type fails the install naming the key", func(t *testing.T) {
		r := &release{c: c, name: "svc-bad", ns: ns}
		out, err := c.helm(t, "install", r.name, c.chart, "-n", ns, "-f", r.valuesFile(t, base.with(settings{"service.type": "Ingress"})))
		if err == nil {
			t.Fatalf("helm install with service.type=Ingress succeeded:\n%s", out)
		}
		if !strings.Contains(out, "service.type") && !strings.Contains(out, "service/type") {
			t.Fatalf("error does not name service.type:\n%s", out)
		}
		if strings.Contains(out, strings.TrimPrefix(tok, "GatewayKey ")) {
			t.Fatalf("helm's error output echoes the gateway token:\n%s", out)
		}
	})
}

func wantPorts(t *testing.T, svc *corev1.Service, want map[string]int32) {
	t.Helper()
	got := map[string]int32{}
	for _, p := range svc.Spec.Ports {
		got[p.Name] = p.Port
	}
	for name, port := range want {
		if got[name] != port {
			t.Fatalf("service port %s = %d, want %d (all: %v)", name, got[name], port, got)
		}
	}
}

// TestBackupServesLastConfiguration enables the backup PVC on a volume the
// test provides, shuts the configuration endpoint down, deletes the pods,
// and expects the new pods to serve the last configuration.
func TestBackupServesLastConfiguration(t *testing.T) {
	c := requireCluster(t)
	ns := c.namespace(t, "e2e-backup")
	tok := token(t)
	ep := c.endpoint(t, tok, "backup-1")
	ctx := context.Background()

	// A static hostPath volume: the cluster has no provisioner.
	dir := filepath.Join(c.workDir, "pv-"+ns)
	if err := os.MkdirAll(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil { // the pods run as UID 65532
		t.Fatal(err)
	}
	const class = "e2e-backup"
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "pv-" + ns},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany, corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			StorageClassName:              class,
			PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{
				Path: dir, Type: ptr(corev1.HostPathDirectory),
			}},
		},
	}
	if _, err := c.client.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create PV: %v", err)
	}
	t.Cleanup(func() {
		_ = c.client.CoreV1().PersistentVolumes().Delete(context.Background(), pv.Name, metav1.DeleteOptions{})
	})

	r := &release{c: c, name: "backup", ns: ns}
	t.Cleanup(func() {
		if t.Failed() {
			r.dump(t)
		}
	})
	r.install(t, c.baseSettings(ep, tok).with(settings{
		"service.type":                         "ClusterIP",
		"gateway.configuration.backup.enabled": true,
		"gateway.configuration.backup.persistentVolumeClaim.storageClassName": class,
		"gateway.configuration.backup.persistentVolumeClaim.accessMode":       "ReadWriteOnce",
	}), true)
	svc := r.service(t)
	url := "http://" + net.JoinHostPort(svc.Spec.ClusterIP, "8080") + "/hello/ping"
	eventually(t, 60*time.Second, "GET "+url, func() error { return expectBody(url, "backup-1") })
	// The snapshot is on the volume the test provided.
	entries, _ := os.ReadDir(dir)
	if len(entries) == 0 {
		t.Fatalf("backup volume %s is empty after a sync", dir)
	}

	// Azure goes away, then every pod.
	if err := ep.Close(); err != nil {
		t.Fatal(err)
	}
	old := podSet(r.pods(t))
	if err := c.client.CoreV1().Pods(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: r.selector()}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*time.Minute, "replacement pods Ready without the endpoint", func() error {
		pods := r.pods(t)
		if len(pods) == 0 {
			return fmt.Errorf("no pods")
		}
		for _, p := range pods {
			if old[p.Name] {
				return fmt.Errorf("old pod %s still there", p.Name)
			}
			if !podReady(p) {
				return fmt.Errorf("pod %s not Ready", p.Name)
			}
		}
		return nil
	})
	eventually(t, 60*time.Second, "GET "+url+" from the backup", func() error { return expectBody(url, "backup-1") })
}

// podSet is the set of pod names.
func podSet(pods []corev1.Pod) map[string]bool {
	out := map[string]bool{}
	for _, p := range pods {
		out[p.Name] = true
	}
	return out
}

func sameSet(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

// leftovers lists objects labelled with the release, or helm's own record
// of it, that still exist.
func (r *release) leftovers() error {
	ctx := context.Background()
	opts := metav1.ListOptions{LabelSelector: r.selector()}
	cs := r.c.client
	var left []string
	add := func(kind string, n int, err error) {
		if err != nil && !apierrors.IsNotFound(err) {
			left = append(left, kind+": "+err.Error())
		} else if n > 0 {
			left = append(left, fmt.Sprintf("%d %s", n, kind))
		}
	}
	if l, err := cs.CoreV1().Pods(r.ns).List(ctx, opts); err == nil {
		add("pods", len(l.Items), nil)
	} else {
		add("pods", 0, err)
	}
	if l, err := cs.CoreV1().Services(r.ns).List(ctx, opts); err == nil {
		add("services", len(l.Items), nil)
	} else {
		add("services", 0, err)
	}
	if l, err := cs.CoreV1().ConfigMaps(r.ns).List(ctx, opts); err == nil {
		add("configmaps", len(l.Items), nil)
	} else {
		add("configmaps", 0, err)
	}
	if l, err := cs.CoreV1().Secrets(r.ns).List(ctx, opts); err == nil {
		add("secrets", len(l.Items), nil)
	} else {
		add("secrets", 0, err)
	}
	if l, err := cs.CoreV1().Secrets(r.ns).List(ctx, metav1.ListOptions{LabelSelector: "owner=helm,name=" + r.name}); err == nil {
		add("helm release secrets", len(l.Items), nil)
	} else {
		add("helm release secrets", 0, err)
	}
	if l, err := cs.CoreV1().ServiceAccounts(r.ns).List(ctx, opts); err == nil {
		add("serviceaccounts", len(l.Items), nil)
	} else {
		add("serviceaccounts", 0, err)
	}
	if l, err := cs.CoreV1().PersistentVolumeClaims(r.ns).List(ctx, opts); err == nil {
		add("persistentvolumeclaims", len(l.Items), nil)
	} else {
		add("persistentvolumeclaims", 0, err)
	}
	if l, err := cs.AppsV1().Deployments(r.ns).List(ctx, opts); err == nil {
		add("deployments", len(l.Items), nil)
	} else {
		add("deployments", 0, err)
	}
	if l, err := cs.AppsV1().ReplicaSets(r.ns).List(ctx, opts); err == nil {
		add("replicasets", len(l.Items), nil)
	} else {
		add("replicasets", 0, err)
	}
	if l, err := cs.RbacV1().Roles(r.ns).List(ctx, opts); err == nil {
		add("roles", len(l.Items), nil)
	} else {
		add("roles", 0, err)
	}
	if l, err := cs.RbacV1().RoleBindings(r.ns).List(ctx, opts); err == nil {
		add("rolebindings", len(l.Items), nil)
	} else {
		add("rolebindings", 0, err)
	}
	if l, err := cs.PolicyV1().PodDisruptionBudgets(r.ns).List(ctx, opts); err == nil {
		add("poddisruptionbudgets", len(l.Items), nil)
	} else {
		add("poddisruptionbudgets", 0, err)
	}
	if l, err := cs.AutoscalingV2().HorizontalPodAutoscalers(r.ns).List(ctx, opts); err == nil {
		add("horizontalpodautoscalers", len(l.Items), nil)
	} else {
		add("horizontalpodautoscalers", 0, err)
	}
	if len(left) > 0 {
		return fmt.Errorf("left behind: %s", strings.Join(left, ", "))
	}
	return nil
}

// load sends requests to urls from a few goroutines until stopped and
// counts what failed.
type load struct {
	done   chan struct{}
	wg     sync.WaitGroup
	ok     atomic.Int64
	failed atomic.Int64
	mu     sync.Mutex
	errs   []string
}

func startLoad(t *testing.T, urls []string) *load {
	t.Helper()
	l := &load{done: make(chan struct{})}
	for i := range 4 {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			// Keep-alive connections, as real clients use: a pod that goes
			// away must not break them mid-request.
			client := &http.Client{Timeout: 5 * time.Second}
			defer client.CloseIdleConnections()
			for n := i; ; n++ {
				select {
				case <-l.done:
					return
				default:
				}
				u := urls[n%len(urls)]
				resp, err := client.Get(u)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					l.failed.Add(1)
					l.mu.Lock()
					if len(l.errs) < 10 {
						l.errs = append(l.errs, time.Now().Format("15:04:05.000")+" "+u+": "+err.Error())
					}
					l.mu.Unlock()
				} else {
					l.ok.Add(1)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	t.Cleanup(func() { l.stop(t, false) })
	return l
}

// stop ends the load; with check it fails the test on any failed request.
func (l *load) stop(t *testing.T, check bool) {
	t.Helper()
	select {
	case <-l.done:
	default:
		close(l.done)
	}
	l.wg.Wait()
	if !check {
		return
	}
	t.Logf("load: %d requests succeeded, %d failed", l.ok.Load(), l.failed.Load())
	if l.ok.Load() == 0 {
		t.Fatal("load: no request succeeded")
	}
	if n := l.failed.Load(); n > 0 {
		t.Fatalf("load: %d requests failed, first: %s", n, strings.Join(l.errs, "; "))
	}
}
