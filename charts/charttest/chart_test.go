package charttest

import (
	"encoding/base64"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/lint/support"
	"sigs.k8s.io/yaml"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/seed393f6fe3/apim-arc-gateway/extension/settings"
	"github.com/seed393f6fe3/apim-arc-gateway/schemas"
)

func TestLint(t *testing.T) {
	t.Parallel()
	for name, s := range map[string]map[string]any{
		"token":   base(),
		"backup":  with(base(), "gateway.configuration.backup.enabled", true, "highAvailability.enabled", true, "service.type", "LoadBalancer"),
		"entraId": with(without(base(), "gateway.auth.token"), "gateway.auth.type", "WorkloadIdentity", "gateway.name", "gw1", "gateway.auth.azureAd.app.id", "00000000-0000-0000-0000-000000000001"),
	} {
		t.Run(name, func(t *testing.T) {
			l := action.NewLint()
			l.Strict = true
			res := l.Run([]string{chartDir(t)}, arc(s))
			for _, m := range res.Messages {
				if m.Severity >= support.WarningSev {
					t.Errorf("lint: %s", m)
				}
			}
			for _, err := range res.Errors {
				t.Errorf("lint error: %v", err)
			}
		})
	}
	// `helm lint charts/apim-gateway` with the chart's own defaults (no
	// configuration URI yet) must pass too: Helm's lint mode logs fail calls
	// instead of stopping, so every template must still render valid YAML.
	t.Run("chart defaults", func(t *testing.T) {
		l := action.NewLint()
		l.Strict = true
		res := l.Run([]string{chartDir(t)}, nil)
		for _, m := range res.Messages {
			if m.Severity >= support.WarningSev {
				t.Errorf("lint: %s", m)
			}
		}
	})
}

func TestServiceTypes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		typ       string
		extra     map[string]any
		nodePorts []int32
		lbIP      string
		etp       corev1.ServiceExternalTrafficPolicy
		notes     string
	}{
		{typ: "ClusterIP", notes: "port-forward svc/" + fullname},
		{typ: "NodePort", extra: map[string]any{"service.http.nodePort": 30080, "service.https.nodePort": "30443", "service.externalTrafficPolicy": "Local"},
			nodePorts: []int32{30080, 30443}, etp: corev1.ServiceExternalTrafficPolicyLocal, notes: "nodePort"},
		{typ: "LoadBalancer", extra: map[string]any{"service.loadBalancerIP": "10.1.2.3", "service.annotations": map[string]any{"service.beta.kubernetes.io/azure-load-balancer-internal": "true"}},
			nodePorts: []int32{0, 0}, lbIP: "10.1.2.3", notes: "status.loadBalancer.ingress"},
	}
	for _, tt := range tests {
		t.Run(tt.typ, func(t *testing.T) {
			t.Parallel()
			s := with(base(), "service.type", tt.typ, "service.http.port", 80, "service.https.port", "443")
			for k, v := range tt.extra {
				s[k] = v
			}
			r := mustRender(t, s)
			svc := r.service(t)
			if string(svc.Spec.Type) != tt.typ {
				t.Errorf("type %s, want %s", svc.Spec.Type, tt.typ)
			}
			if len(svc.Spec.Ports) != 2 || svc.Spec.Ports[0].Port != 80 || svc.Spec.Ports[1].Port != 443 ||
				svc.Spec.Ports[0].TargetPort.StrVal != "http" || svc.Spec.Ports[1].TargetPort.StrVal != "https" {
				t.Errorf("ports %+v", svc.Spec.Ports)
			}
			for i, np := range tt.nodePorts {
				if svc.Spec.Ports[i].NodePort != np {
					t.Errorf("port %d nodePort %d, want %d", i, svc.Spec.Ports[i].NodePort, np)
				}
			}
			if svc.Spec.LoadBalancerIP != tt.lbIP || svc.Spec.ExternalTrafficPolicy != tt.etp {
				t.Errorf("loadBalancerIP %q externalTrafficPolicy %q", svc.Spec.LoadBalancerIP, svc.Spec.ExternalTrafficPolicy)
			}
			if tt.typ == "LoadBalancer" && svc.Annotations["service.beta.kubernetes.io/azure-load-balancer-internal"] != "true" {
				t.Errorf("annotations %v", svc.Annotations)
			}
			if !strings.Contains(r.notes, "service.type "+tt.typ) || !strings.Contains(r.notes, tt.notes) {
				t.Errorf("NOTES do not explain %s:\n%s", tt.typ, r.notes)
			}
			var headless corev1.Service
			r.decode(t, "Service", fullname+"-instance-discovery", &headless)
			if headless.Spec.ClusterIP != "None" || len(headless.Spec.Ports) != 2 || headless.Spec.Ports[0].Protocol != corev1.ProtocolUDP {
				t.Errorf("instance discovery service %+v", headless.Spec)
			}
		})
	}
}

func TestBackup(t *testing.T) {
	t.Parallel()
	t.Run("off", func(t *testing.T) {
		r := mustRender(t, base())
		if r.find("PersistentVolumeClaim", fullname+"-config-backup") != nil {
			t.Error("PVC rendered without backup")
		}
		if v := volume(r.deployment(t), "config"); v == nil || v.EmptyDir == nil {
			t.Errorf("config volume %+v, want emptyDir", v)
		}
	})
	t.Run("on", func(t *testing.T) {
		r := mustRender(t, with(base(), "gateway.configuration.backup.enabled", "true",
			"gateway.configuration.backup.persistentVolumeClaim.accessMode", "ReadWriteOnce",
			"gateway.configuration.backup.persistentVolumeClaim.size", "1Gi",
			"gateway.configuration.backup.persistentVolumeClaim.storageClassName", "local-path"))
		var pvc corev1.PersistentVolumeClaim
		r.decode(t, "PersistentVolumeClaim", fullname+"-config-backup", &pvc)
		if pvc.Spec.AccessModes[0] != corev1.ReadWriteOnce || pvc.Spec.Resources.Requests.Storage().String() != "1Gi" ||
			pvc.Spec.StorageClassName == nil || *pvc.Spec.StorageClassName != "local-path" {
			t.Errorf("PVC spec %+v", pvc.Spec)
		}
		d := r.deployment(t)
		v := volume(d, "config")
		if v == nil || v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != pvc.Name {
			t.Fatalf("config volume %+v, want the PVC", v)
		}
		if m := mount(container(t, d, "gateway"), "config"); m == nil || m.MountPath != "/apim/config" || !m.ReadOnly {
			t.Errorf("gateway config mount %+v", m)
		}
		if m := mount(container(t, d, "agent"), "config"); m == nil || m.MountPath != "/apim/config" || m.ReadOnly {
			t.Errorf("agent config mount %+v", m)
		}
	})
	t.Run("default storage class", func(t *testing.T) {
		r := mustRender(t, with(base(), "gateway.configuration.backup.enabled", true))
		var pvc corev1.PersistentVolumeClaim
		r.decode(t, "PersistentVolumeClaim", fullname+"-config-backup", &pvc)
		if pvc.Spec.StorageClassName != nil || pvc.Spec.AccessModes[0] != corev1.ReadWriteMany || pvc.Spec.Resources.Requests.Storage().String() != "50Mi" {
			t.Errorf("PVC spec %+v", pvc.Spec)
		}
	})
}

func TestHighAvailability(t *testing.T) {
	t.Parallel()
	t.Run("off", func(t *testing.T) {
		r := mustRender(t, base())
		if r.find("PodDisruptionBudget", fullname) != nil {
			t.Error("PDB rendered with HA off")
		}
		if d := r.deployment(t); len(d.Spec.Template.Spec.TopologySpreadConstraints) != 0 || *d.Spec.Replicas != 3 {
			t.Errorf("HA off: spread %v replicas %d", d.Spec.Template.Spec.TopologySpreadConstraints, *d.Spec.Replicas)
		}
	})
	for _, tt := range []struct {
		maxUnavailable any
		want           string
	}{{"25%", "25%"}, {"1", "1"}, {2, "2"}} {
		t.Run(fmt.Sprint("on ", tt.maxUnavailable), func(t *testing.T) {
			r := mustRender(t, with(base(), "highAvailability.enabled", true, "highAvailability.disruption.maximumUnavailable", tt.maxUnavailable,
				"highAvailability.podTopologySpread.whenUnsatisfiable", "DoNotSchedule", "replicaCount", "4"))
			var pdb policyv1.PodDisruptionBudget
			r.decode(t, "PodDisruptionBudget", fullname, &pdb)
			if pdb.Spec.MaxUnavailable.String() != tt.want {
				t.Errorf("maxUnavailable %s, want %s", pdb.Spec.MaxUnavailable.String(), tt.want)
			}
			if tt.want == "1" && pdb.Spec.MaxUnavailable.IntVal != 1 {
				t.Error("a number must stay a number, not the string \"1\"")
			}
			d := r.deployment(t)
			tsc := d.Spec.Template.Spec.TopologySpreadConstraints
			if len(tsc) != 2 || tsc[0].WhenUnsatisfiable != corev1.DoNotSchedule || tsc[0].LabelSelector.MatchLabels["app.kubernetes.io/instance"] != releaseName {
				t.Errorf("topology spread %+v", tsc)
			}
			if *d.Spec.Replicas != 4 {
				t.Errorf("replicas %d", *d.Spec.Replicas)
			}
		})
	}
}

func TestAutoscaling(t *testing.T) {
	t.Parallel()
	r := mustRender(t, with(base(), "autoscaling.enabled", true, "autoscaling.minReplicas", 3, "autoscaling.maxReplicas", 7, "autoscaling.targetMemoryUtilizationPercentage", 80))
	var hpa autoscalingv2.HorizontalPodAutoscaler
	r.decode(t, "HorizontalPodAutoscaler", fullname, &hpa)
	if *hpa.Spec.MinReplicas != 3 || hpa.Spec.MaxReplicas != 7 || hpa.Spec.ScaleTargetRef.Name != fullname || len(hpa.Spec.Metrics) != 2 ||
		hpa.Spec.Metrics[0].Resource.Name != corev1.ResourceCPU || hpa.Spec.Metrics[1].Resource.Name != corev1.ResourceMemory ||
		*hpa.Spec.Metrics[1].Resource.Target.AverageUtilization != 80 {
		t.Errorf("HPA spec %+v", hpa.Spec)
	}
	if d := r.deployment(t); d.Spec.Replicas != nil {
		t.Errorf("replicas %d set while the autoscaler owns them", *d.Spec.Replicas)
	}
	if _, err := render(t, with(base(), "autoscaling.enabled", true, "autoscaling.minReplicas", 5, "autoscaling.maxReplicas", 2)); err == nil || !strings.Contains(err.Error(), "autoscaling.maxReplicas") {
		t.Errorf("max < min: %v", err)
	}
	if mustRender(t, base()).find("HorizontalPodAutoscaler", fullname) != nil {
		t.Error("HPA rendered with autoscaling off")
	}
}

func TestAuthTypes(t *testing.T) {
	t.Parallel()
	entra := func(typ string) map[string]any {
		return with(without(base(), "gateway.auth.token"), "gateway.auth.type", typ, "gateway.name", "gw1",
			"gateway.auth.azureAd.tenant.id", "tenant-1", "gateway.auth.azureAd.app.id", "client-1")
	}
	tests := []struct {
		name        string
		settings    map[string]any
		secretKeys  []string
		wi          bool
		clusterIdRq bool
	}{
		{name: "GatewayToken", settings: base(), secretKeys: []string{"gateway.auth.token"}},
		{name: "GatewayToken alias", settings: with(without(base(), "gateway.auth.token"), "gateway.auth.key", testToken), secretKeys: []string{"gateway.auth.token"}},
		{name: "AzureAdApp secret", settings: with(entra("AzureAdApp"), "gateway.auth.azureAd.app.secret", "app-secret"), secretKeys: []string{"gateway.auth.azureAd.app.secret"}},
		{name: "AzureAdApp certificate", settings: with(entra("AzureAdApp"), "gateway.auth.azureAd.app.certificate", "MIIcert", "gateway.auth.azureAd.app.certificatePassword", "pw"),
			secretKeys: []string{"gateway.auth.azureAd.app.certificate", "gateway.auth.azureAd.app.certificatePassword"}},
		{name: "WorkloadIdentity", settings: entra("WorkloadIdentity"), wi: true},
		{name: "ExtensionIdentity", settings: entra("ExtensionIdentity"), clusterIdRq: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := mustRender(t, tt.settings)
			if got := sortedKeys(r.secretData(t)); !slices.Equal(got, tt.secretKeys) && !(len(got) == 0 && len(tt.secretKeys) == 0) {
				t.Errorf("Secret keys %v, want %v", got, tt.secretKeys)
			}
			d := r.deployment(t)
			if got := d.Spec.Template.Labels["azure.workload.identity/use"] == "true"; got != tt.wi {
				t.Errorf("workload identity pod label: %v, want %v", got, tt.wi)
			}
			if got := d.Spec.Template.Annotations["azure.workload.identity/skip-containers"] == "gateway"; got != tt.wi {
				t.Errorf("workload identity token kept from the gateway: %v, want %v", got, tt.wi)
			}
			var sa corev1.ServiceAccount
			r.decode(t, "ServiceAccount", fullname, &sa)
			if tt.wi && (sa.Annotations["azure.workload.identity/client-id"] != "client-1" || sa.Annotations["azure.workload.identity/tenant-id"] != "tenant-1") {
				t.Errorf("service account annotations %v", sa.Annotations)
			}
			if !tt.wi && len(sa.Annotations) != 0 {
				t.Errorf("service account annotations %v without workload identity", sa.Annotations)
			}
			if d.Spec.Template.Spec.ServiceAccountName != sa.Name {
				t.Errorf("pod service account %q", d.Spec.Template.Spec.ServiceAccountName)
			}
			var role rbacv1.Role
			r.decode(t, "Role", fullname, &role)
			checkRole(t, role)
			checkIdentityRole(t, r, tt.clusterIdRq)
			var rb rbacv1.RoleBinding
			r.decode(t, "RoleBinding", fullname, &rb)
			if rb.RoleRef.Name != role.Name || len(rb.Subjects) != 1 || rb.Subjects[0].Name != sa.Name || rb.Subjects[0].Namespace != namespace {
				t.Errorf("role binding %+v", rb)
			}
		})
	}
}

// checkRole asserts least privilege in the release namespace: the chart's
// own Secret by name (token renewal writes it back) and events.
func checkRole(t *testing.T, role rbacv1.Role) {
	t.Helper()
	var sawSecret, sawEvents bool
	for _, rule := range role.Rules {
		for _, res := range rule.Resources {
			switch res {
			case "secrets":
				sawSecret = true
				if !slices.Equal(rule.ResourceNames, []string{fullname}) || !slices.Equal(rule.Verbs, []string{"get", "update"}) {
					t.Errorf("secrets rule %+v: want get/update of %s only", rule, fullname)
				}
			case "events":
				sawEvents = true
				if slices.Contains(rule.Verbs, "delete") || slices.Contains(rule.Verbs, "list") {
					t.Errorf("events rule %+v", rule)
				}
			default:
				t.Errorf("unexpected resource %q in %+v", res, rule)
			}
			if slices.Contains(rule.Verbs, "*") || slices.Contains(rule.Resources, "*") {
				t.Errorf("wildcard in %+v", rule)
			}
		}
	}
	if !sawSecret || !sawEvents {
		t.Errorf("rules %+v: secret %v events %v", role.Rules, sawSecret, sawEvents)
	}
}

// checkIdentityRole asserts that only ExtensionIdentity gets the Role in
// azure-arc, bound to the chart's service account, with exactly the calls
// the agent makes for an AzureClusterIdentityRequest and its token.
func checkIdentityRole(t *testing.T, r *rendered, want bool) {
	t.Helper()
	name := fullname + "-identity"
	found, foundRB := r.find("Role", name) != nil, r.find("RoleBinding", name) != nil
	if found != want || foundRB != want {
		t.Fatalf("identity Role rendered %v, RoleBinding %v; want %v", found, foundRB, want)
	}
	if !want {
		return
	}
	var role rbacv1.Role
	var rb rbacv1.RoleBinding
	r.decode(t, "Role", name, &role)
	r.decode(t, "RoleBinding", name, &rb)
	if role.Namespace != "azure-arc" || rb.Namespace != "azure-arc" {
		t.Errorf("identity Role in %q, binding in %q; want azure-arc", role.Namespace, rb.Namespace)
	}
	if rb.RoleRef.Name != name || len(rb.Subjects) != 1 || rb.Subjects[0].Name != fullname || rb.Subjects[0].Namespace != namespace {
		t.Errorf("identity role binding %+v", rb)
	}
	want3 := map[string][]string{
		"azureclusteridentityrequests":        {"get", "create", "patch"},
		"azureclusteridentityrequests/status": {"patch"},
		"secrets":                             {"get"},
	}
	got := map[string][]string{}
	for _, rule := range role.Rules {
		for _, res := range rule.Resources {
			got[res] = rule.Verbs
		}
	}
	if !maps.EqualFunc(got, want3, slices.Equal) {
		t.Errorf("identity rules %v, want %v", got, want3)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

func TestProxy(t *testing.T) {
	t.Parallel()
	const cert = "-----BEGIN CERTIFICATE-----\nMIIproxyCA\n-----END CERTIFICATE-----\n"
	r := mustRender(t, with(base(), "Azure.proxySettings.isProxyEnabled", true,
		"Azure.proxySettings.httpProxy", "http://proxy.corp:3128", "Azure.proxySettings.httpsProxy", "http://user:pw@proxy.corp:3128",
		"Azure.proxySettings.noProxy", "10.0.0.0/8,.svc,.cluster.local", "Azure.proxySettings.proxyCert", cert))
	var ps corev1.Secret
	r.decode(t, "Secret", fullname+"-proxy", &ps)
	if string(ps.Data["HTTPS_PROXY"]) != "http://user:pw@proxy.corp:3128" || string(ps.Data["no_proxy"]) != "10.0.0.0/8,.svc,.cluster.local" || string(ps.Data["proxy-cert.crt"]) != cert {
		t.Errorf("proxy secret %v", ps.Data)
	}
	d := r.deployment(t)
	for _, name := range []string{"gateway", "agent"} {
		c := container(t, d, name)
		for _, v := range []string{"HTTP_PROXY", "https_proxy", "NO_PROXY"} {
			e := env(c, v)
			if e == nil || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.ValueFrom.SecretKeyRef.Name != ps.Name || e.ValueFrom.SecretKeyRef.Key != v {
				t.Errorf("%s: env %s = %+v", name, v, e)
			}
		}
		if e := env(c, "SSL_CERT_DIR"); e == nil || e.Value != "/apim/proxy-ca" {
			t.Errorf("%s: SSL_CERT_DIR %+v", name, e)
		}
		if e := env(c, "SSL_CERT_FILE"); e == nil || e.Value != "/etc/ssl/certs/ca-certificates.crt" {
			t.Errorf("%s: SSL_CERT_FILE %+v (the system roots must stay trusted)", name, e)
		}
		if m := mount(c, "proxy-ca"); m == nil || m.MountPath != "/apim/proxy-ca" {
			t.Errorf("%s: proxy CA mount %+v", name, m)
		}
	}
	if v := volume(d, "proxy-ca"); v == nil || v.Secret == nil || v.Secret.SecretName != ps.Name || len(v.Secret.Items) != 1 || v.Secret.Items[0].Key != "proxy-cert.crt" {
		t.Errorf("proxy CA volume %+v", v)
	}
	// Proxy values are credentials-bearing: only the proxy Secret holds them.
	for _, doc := range r.docs {
		if doc.kind == "Secret" && doc.name == ps.Name {
			continue
		}
		if strings.Contains(doc.text, "user:pw@") || strings.Contains(doc.text, "MIIproxyCA") {
			t.Errorf("%s %s contains the proxy URL or CA", doc.kind, doc.name)
		}
	}
	// Without a proxy nothing of it is rendered.
	plain := mustRender(t, base())
	if plain.find("Secret", fullname+"-proxy") != nil || env(container(t, plain.deployment(t), "agent"), "HTTPS_PROXY") != nil {
		t.Error("proxy objects rendered without a proxy")
	}
	if plain.deployment(t).Spec.Template.Annotations["checksum/proxy"] == d.Spec.Template.Annotations["checksum/proxy"] {
		t.Error("a proxy change must roll the pods")
	}
}

// TestProtectedValuesOnlyInSecret renders every protected setting with a
// distinctive value and scans every other object (hooks and NOTES included)
// for the value, its base64 form and the alias spellings.
func TestProtectedValuesOnlyInSecret(t *testing.T) {
	t.Parallel()
	schema, err := settings.ParseSchema(schemas.ExtensionSettings)
	if err != nil {
		t.Fatal(err)
	}
	secrets := map[string]string{}
	s := with(base(), "gateway.auth.rotation.enabled", true,
		"gateway.resourceId", "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ApiManagement/service/svc/gateways/gw1",
		"monitoring.workspaceId", "ws")
	for _, name := range schema.Keys() {
		k, _ := schema.Key(name)
		if !k.Protected {
			continue
		}
		v := "SeCrEt-" + strings.ReplaceAll(name, ".", "-") + "-7f3a9c"
		if name == "gateway.auth.token" {
			v = testToken
		}
		secrets[name] = v
		s[name] = v
	}
	if len(secrets) < 5 {
		t.Fatalf("only %d protected settings in the schema", len(secrets))
	}
	for _, variant := range []struct {
		name     string
		settings map[string]any
	}{
		{"canonical", s},
		{"alias", with(without(s, "gateway.auth.token"), "gateway.auth.key", testToken)},
		{"backup, HA, proxy, LoadBalancer", with(s, "gateway.configuration.backup.enabled", true, "highAvailability.enabled", true,
			"service.type", "LoadBalancer", "Azure.proxySettings.httpProxy", "http://proxy:3128")},
	} {
		t.Run(variant.name, func(t *testing.T) {
			t.Parallel()
			r := mustRender(t, variant.settings)
			data := r.secretData(t)
			for k, v := range secrets {
				if data[k] != v {
					t.Errorf("Secret[%s] = %q, want the value", k, data[k])
				}
			}
			for _, d := range r.docs {
				if d.kind == "Secret" && d.name == fullname {
					continue
				}
				for k, v := range secrets {
					for _, form := range []string{v, base64.StdEncoding.EncodeToString([]byte(v)), "TOKENSIGNATURE"} {
						if strings.Contains(d.text, form) {
							t.Errorf("%s %s (%s) contains protected setting %s", d.kind, d.name, d.source, k)
						}
					}
				}
			}
			for k, v := range secrets {
				if strings.Contains(r.notes, v) {
					t.Errorf("NOTES contain protected setting %s", k)
				}
			}
			cm := r.configMapData(t)
			for k := range secrets {
				if _, ok := cm[k]; ok {
					t.Errorf("ConfigMap has key %s", k)
				}
			}
		})
	}
}

// TestAgentAcceptsRenderedSettings feeds the rendered ConfigMap and Secret to
// the agent's own settings loader: what the chart writes is what the agent
// reads, with no errors and no unknown keys.
func TestAgentAcceptsRenderedSettings(t *testing.T) {
	t.Parallel()
	schema, err := settings.ParseSchema(schemas.ExtensionSettings)
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]map[string]any{
		"minimal": base(),
		"arc strings": with(base(), "service.type", "NodePort", "service.http.nodePort", "30080", "gateway.configuration.backup.enabled", "true",
			"telemetry.metrics.localStatsd.sampling", "0.5", "highAvailability.enabled", "true", "replicaCount", "2",
			"service.annotations", `{"a": "b"}`, "tolerations", `[{"key": "k", "operator": "Exists"}]`,
			"Azure.Cluster.ResourceId", "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Kubernetes/connectedClusters/c",
			"Azure.Extension.Name", "apim"),
		"typed": with(base(), "service.annotations", map[string]any{"a": "b"}, "tolerations", []any{map[string]any{"key": "k", "operator": "Exists"}},
			"monitoring.workspaceId", "ws", "monitoring.ingestionKey", "key", "telemetry.metrics.localStatsd.sampling", 0.25),
		"aliases": with(without(base(), "gateway.auth.token"), "gateway.auth.key", testToken, "service.ports.http", 9000, "observability.logs.std.format", "json"),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := mustRender(t, s)
			loaded, issues := settings.LoadMap(r.configMapData(t), r.secretData(t), schema)
			for _, is := range issues {
				t.Errorf("agent: %s", is)
			}
			if got := loaded.String("gateway.configuration.uri"); got != statusURI {
				t.Errorf("uri %q", got)
			}
			if loaded.Secret("gateway.auth.token").IsZero() {
				t.Error("token lost")
			}
		})
	}
	// The alias lands under the canonical key, and NOTES warn about it.
	r := mustRender(t, with(base(), "service.ports.http", 9000))
	if cm := r.configMapData(t); cm["service.http.port"] != "9000" {
		t.Errorf("service.http.port %q", cm["service.http.port"])
	}
	if r.service(t).Spec.Ports[0].Port != 9000 || !strings.Contains(r.notes, "service.ports.http (use service.http.port)") {
		t.Errorf("alias: port %d, notes:\n%s", r.service(t).Spec.Ports[0].Port, r.notes)
	}
}

func TestFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		settings map[string]any
		contains []string
	}{
		{"missing uri", without(base(), "gateway.configuration.uri"), []string{"gateway.configuration.uri is required"}},
		{"bad uri", with(base(), "gateway.configuration.uri", "contoso"), []string{"/gateway/configuration/uri", "does not match"}},
		{"bad service.type", with(base(), "service.type", "Ingress"), []string{"/service/type", "LoadBalancer"}},
		{"nodePort with ClusterIP", with(base(), "service.http.nodePort", 30080), []string{"service.http.nodePort needs service.type NodePort or LoadBalancer"}},
		{"nodePort out of range", with(base(), "service.type", "NodePort", "service.http.nodePort", 80), []string{"/service/http/nodePort", "minimum"}},
		{"missing token", without(base(), "gateway.auth.token"), []string{"gateway.auth.token is required", "--config-protected-settings"}},
		{"bad auth type", with(base(), "gateway.auth.type", "Kerberos"), []string{"auth", "type"}},
		{"entra without name", with(base(), "gateway.auth.type", "AzureAdApp"), []string{"gateway.name is required"}},
		{"entra app without secret", with(base(), "gateway.auth.type", "AzureAdApp", "gateway.name", "gw", "gateway.auth.azureAd.tenant.id", "t", "gateway.auth.azureAd.app.id", "c"),
			[]string{"gateway.auth.azureAd.app.secret or gateway.auth.azureAd.app.certificate is required"}},
		{"workload identity without client id", with(base(), "gateway.auth.type", "WorkloadIdentity", "gateway.name", "gw"), []string{"gateway.auth.azureAd.app.id is required"}},
		{"rotation without resource id", with(base(), "gateway.auth.rotation.enabled", "true"), []string{"gateway.resourceId is required"}},
		{"alias conflict", with(base(), "service.http.port", 9000, "service.ports.http", 9001), []string{"service.http.port is set twice", "service.ports.http"}},
		{"unknown key", with(base(), "gateway.configuration.url", "https://x"), []string{"url"}},
		{"bad boolean", with(base(), "gateway.configuration.backup.enabled", "yes"), []string{"backup", "enabled"}},
		{"bad log level", with(base(), "telemetry.logs.level", "trace"), []string{"telemetry", "level"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := render(t, tt.settings)
			if err == nil {
				t.Fatal("rendered; want an error")
			}
			for _, c := range tt.contains {
				if !strings.Contains(err.Error(), c) {
					t.Errorf("error %q does not contain %q", err, c)
				}
			}
			// Arc returns Helm's error in the extension status: never a secret.
			if strings.Contains(err.Error(), "TOKENSIGNATURE") {
				t.Errorf("error shows the token: %v", err)
			}
		})
	}
}

// TestProtectedValuesNotEchoedByValidation: a malformed protected value (not
// a string) fails without the value in the message.
func TestProtectedValuesNotEchoedByValidation(t *testing.T) {
	t.Parallel()
	_, err := render(t, with(base(), "gateway.auth.token", map[string]any{"TOKENSIGNATURE": "x"}))
	if err == nil || !strings.Contains(err.Error(), "token") || strings.Contains(err.Error(), "TOKENSIGNATURE") {
		t.Errorf("error %v: want one naming gateway.auth.token without its value", err)
	}
}

// TestRollouts: settings read once at start roll the pods; live settings
// (tokens, credentials, monitoring) and scaling never do.
func TestRollouts(t *testing.T) {
	t.Parallel()
	checksum := func(s map[string]any) string {
		return mustRender(t, s).deployment(t).Spec.Template.Annotations["checksum/settings"]
	}
	ref := checksum(base())
	if ref == "" {
		t.Fatal("no checksum/settings annotation")
	}
	tests := []struct {
		name  string
		s     map[string]any
		rolls bool
	}{
		{"new token", with(base(), "gateway.auth.token", "GatewayKey gw1&202901010000&other=="), false},
		{"log level (live)", with(base(), "monitoring.uploadInterval", "30s"), false},
		{"replica count", with(base(), "replicaCount", 5), false},
		{"service type", with(base(), "service.type", "NodePort"), false},
		{"cache connection string", with(base(), "cache.external.connectionString", "redis:6379"), true},
		{"configuration uri", with(base(), "gateway.configuration.uri", "https://other.configuration.azure-api.net"), true},
		{"cloud metrics", with(base(), "telemetry.metrics.cloud", false), true},
		{"auth type", with(without(base(), "gateway.auth.token"), "gateway.auth.type", "WorkloadIdentity", "gateway.name", "g", "gateway.auth.azureAd.app.id", "c"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := checksum(tt.s) != ref; got != tt.rolls {
				t.Errorf("checksum changed: %v, want %v", got, tt.rolls)
			}
		})
	}
}

func TestPodSecurity(t *testing.T) {
	t.Parallel()
	r := mustRender(t, with(base(), "cache.external.connectionString", "redis:6379", "Azure.proxySettings.proxyCert", "CA",
		"priorityClassName", "high", "nodeSelector", map[string]any{"kubernetes.io/os": "linux"},
		"tolerations", []any{map[string]any{"key": "k", "operator": "Exists"}}, "resources", map[string]any{"limits": map[string]any{"memory": "256Mi"}}))
	d := r.deployment(t)
	ps := d.Spec.Template.Spec
	if ps.SecurityContext == nil || !*ps.SecurityContext.RunAsNonRoot || *ps.SecurityContext.RunAsUser != 65532 || ps.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod security context %+v", ps.SecurityContext)
	}
	if ps.PriorityClassName != "high" || ps.NodeSelector["kubernetes.io/os"] != "linux" || len(ps.Tolerations) != 1 {
		t.Errorf("scheduling: priority %q nodeSelector %v tolerations %v", ps.PriorityClassName, ps.NodeSelector, ps.Tolerations)
	}
	var testPod corev1.Pod
	r.decode(t, "Pod", fullname+"-test-status", &testPod)
	containers := append(slices.Clone(ps.Containers), testPod.Spec.Containers...)
	for _, c := range containers {
		sc := c.SecurityContext
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0 {
			t.Errorf("container %s security context %+v", c.Name, sc)
		}
		if strings.Contains(c.Image, "/") && !strings.HasPrefix(c.Image, "example.local/apim-arc-gateway:") {
			t.Errorf("container %s image %s: only the chart's own image", c.Name, c.Image)
		}
	}
	if testPod.Spec.SecurityContext == nil || !*testPod.Spec.SecurityContext.RunAsNonRoot {
		t.Error("test pod is not non-root")
	}
	gw, agent := container(t, d, "gateway"), container(t, d, "agent")
	if gw.Resources.Limits.Memory().String() != "256Mi" {
		t.Errorf("gateway resources %+v", gw.Resources)
	}
	// The protected Secret reaches the agent only; the gateway gets the one
	// key it reads, the cache connection string.
	if mount(gw, "protected") != nil || mount(gw, "settings") != nil {
		t.Error("settings or protected settings mounted into the gateway")
	}
	if m := mount(agent, "protected"); m == nil || m.MountPath != "/apim/protected" || !m.ReadOnly {
		t.Errorf("agent protected mount %+v", m)
	}
	if m := mount(agent, "settings"); m == nil || m.MountPath != "/apim/settings" {
		t.Errorf("agent settings mount %+v", m)
	}
	// The Kubernetes API token reaches the agent only.
	if ps.AutomountServiceAccountToken == nil || *ps.AutomountServiceAccountToken {
		t.Error("automountServiceAccountToken must be false (the token is mounted into the agent only)")
	}
	if m := mount(agent, "kube-api-access"); m == nil || m.MountPath != "/var/run/secrets/kubernetes.io/serviceaccount" {
		t.Errorf("agent API token mount %+v", m)
	}
	if mount(gw, "kube-api-access") != nil {
		t.Error("API token mounted into the gateway")
	}
	if v := volume(d, "kube-api-access"); v == nil || v.Projected == nil || len(v.Projected.Sources) != 3 || v.Projected.Sources[0].ServiceAccountToken == nil {
		t.Errorf("API token volume %+v", v)
	}
	if v := volume(d, "cache"); v == nil || len(v.Secret.Items) != 1 || v.Secret.Items[0].Key != "cache.external.connectionString" {
		t.Errorf("cache volume %+v", v)
	}
	if !slices.Contains(gw.Args, "--shutdown-delay=15s") || *ps.TerminationGracePeriodSeconds < 15+30 {
		t.Errorf("drain: args %v grace %d", gw.Args, *ps.TerminationGracePeriodSeconds)
	}
	if !slices.Contains(gw.Args, "--cache-connection-string-file=/apim/cache/cache.external.connectionString") {
		t.Errorf("gateway args %v", gw.Args)
	}
	for _, p := range []*corev1.Probe{gw.ReadinessProbe, gw.LivenessProbe} {
		if p == nil || p.HTTPGet.Path != "/status-0123456789abcdef" || p.HTTPGet.Port.StrVal != "http" {
			t.Errorf("gateway probe %+v", p)
		}
	}
	if agent.ReadinessProbe.HTTPGet.Path != "/readyz" || agent.LivenessProbe.HTTPGet.Path != "/healthz" || agent.ReadinessProbe.HTTPGet.Port.StrVal != "agent-health" {
		t.Errorf("agent probes %+v %+v", agent.ReadinessProbe, agent.LivenessProbe)
	}
	if port := agent.Ports[0]; port.ContainerPort != 9091 {
		t.Errorf("agent port %+v", port)
	}
	if !strings.Contains(strings.Join(testPod.Spec.Containers[0].Args, " "), "http://"+fullname+"."+namespace+".svc:8080/status-0123456789abcdef") {
		t.Errorf("test pod args %v", testPod.Spec.Containers[0].Args)
	}
	if testPod.Annotations["helm.sh/hook"] != "test" {
		t.Errorf("test pod annotations %v", testPod.Annotations)
	}
}

// TestValuesFileMatchesSchema: values.yaml holds every settings key at its
// nested path, with the schema's default (or null), and no alias is set.
func TestValuesFileMatchesSchema(t *testing.T) {
	t.Parallel()
	schema, err := settings.ParseSchema(schemas.ExtensionSettings)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(chartDir(t), "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var values map[string]any
	if err := yaml.Unmarshal(raw, &values); err != nil {
		t.Fatal(err)
	}
	get := func(key string) (any, bool) {
		var cur any = values
		for _, p := range strings.Split(key, ".") {
			m, ok := cur.(map[string]any)
			if !ok {
				return nil, false
			}
			if cur, ok = m[p]; !ok {
				return nil, false
			}
		}
		return cur, true
	}
	for _, name := range schema.Keys() {
		k, _ := schema.Key(name)
		v, ok := get(name)
		if !ok {
			t.Errorf("values.yaml has no %s", name)
			continue
		}
		if k.HasDefault && fmt.Sprint(v) != fmt.Sprint(k.Default) && !(fmt.Sprint(v) == "map[]" || fmt.Sprint(v) == "[]") {
			t.Errorf("values.yaml %s = %v, schema default %v", name, v, k.Default)
		}
		if k.Protected && v != nil {
			t.Errorf("values.yaml sets protected %s", name)
		}
		for _, a := range k.Aliases {
			if _, ok := get(a); ok {
				t.Errorf("values.yaml sets alias %s of %s", a, name)
			}
		}
	}
}

// TestInstallDocCoversEveryValue: docs/install.md names every setting, alias
// and chart-only value, so a new key cannot ship undocumented.
func TestInstallDocCoversEveryValue(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile(filepath.Join(chartDir(t), "..", "..", "docs", "install.md"))
	if err != nil {
		t.Fatal(err)
	}
	schema, err := settings.ParseSchema(schemas.ExtensionSettings)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, name := range schema.Keys() {
		k, _ := schema.Key(name)
		names = append(names, name)
		names = append(names, k.Aliases...)
	}
	raw, err := os.ReadFile(filepath.Join(chartDir(t), "..", "..", "scripts", "gen-values-schema", "chart-values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var chartValues struct {
		Properties map[string]struct {
			Aliases []string `json:"x-aliases"`
		} `json:"properties"`
	}
	if err := yaml.Unmarshal(raw, &chartValues); err != nil {
		t.Fatal(err)
	}
	for name, p := range chartValues.Properties {
		names = append(names, name)
		names = append(names, p.Aliases...)
	}
	for _, name := range names {
		short := name[strings.LastIndex(name, ".")+1:]
		if !strings.Contains(string(doc), "`"+name+"`") && !strings.Contains(string(doc), "."+short+"`") {
			t.Errorf("docs/install.md does not mention %s", name)
		}
	}
}
