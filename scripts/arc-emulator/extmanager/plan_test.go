package extmanager

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/seed393f6fe3/apim-arc-gateway/extension/settings"
	"github.com/seed393f6fe3/apim-arc-gateway/schemas"
	"github.com/seed393f6fe3/apim-arc-gateway/scripts/release-train/manifest"
)

const token = "GatewayKey gw1&203001010000&c2VjcmV0LXNpZ25hdHVyZQ=="

var t0 = time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)

func catalog(t *testing.T) *Catalog {
	t.Helper()
	m, err := manifest.Read("testdata/manifest.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s, err := settings.ParseSchema(schemas.ExtensionSettings)
	if err != nil {
		t.Fatal(err)
	}
	return &Catalog{Manifest: m, Schema: s}
}

func ptr[T any](v T) *T { return &v }

var gw = Ref{Subscription: "sub1", ResourceGroup: "rg1", ClusterType: "connectedClusters", ClusterName: "arc1", Name: "apim"}

func baseCreate() CreateRequest {
	return CreateRequest{
		Ref: gw, ExtensionType: "Microsoft.ApiManagement.Gateway", TargetNamespace: "apim",
		Settings:  map[string]string{"gateway.configuration.uri": "https://contoso.configuration.azure-api.net", "service.type": "NodePort"},
		Protected: map[string]string{"gateway.auth.token": token},
		Cluster:   Cluster{Region: "westeurope", Distribution: "k3s", Infrastructure: "generic", Cloud: "AzureCloud"},
	}
}

func TestPlanCreate(t *testing.T) {
	c := catalog(t)
	tests := []struct {
		name        string
		change      func(*CreateRequest)
		wantVersion string
		wantNS      string
		wantErr     string
	}{
		{name: "defaults: stable, latest auto-upgrade target, namespace scope", change: func(*CreateRequest) {}, wantVersion: "0.2.0", wantNS: "apim"},
		{name: "preview train, case-insensitive", change: func(r *CreateRequest) { r.ReleaseTrain = "Preview" }, wantVersion: "0.3.0", wantNS: "apim"},
		{name: "pinned pinned-only version", change: func(r *CreateRequest) {
			r.ReleaseTrain, r.Version, r.AutoUpgrade = "preview", "1.0.0", ptr(false)
		}, wantVersion: "1.0.0", wantNS: "apim"},
		{name: "hidden train by name", change: func(r *CreateRequest) {
			r.ReleaseTrain, r.Version, r.AutoUpgrade = "dev", "0.3.0-dev.1", ptr(false)
		}, wantVersion: "0.3.0-dev.1", wantNS: "apim"},
		{name: "cluster scope defaults the namespace to the name", change: func(r *CreateRequest) {
			r.Scope, r.TargetNamespace = "cluster", ""
		}, wantVersion: "0.2.0", wantNS: "apim"},
		{name: "pin with auto-upgrade", change: func(r *CreateRequest) { r.Version = "0.1.0" },
			wantErr: "to pin to specific version, auto-upgrade-minor-version must be set to 'false'"},
		{name: "no pin without auto-upgrade", change: func(r *CreateRequest) { r.AutoUpgrade = ptr(false) },
			wantErr: `release train "stable": auto-upgrade-minor-version is false, so a version must be pinned with --version (listed: 0.1.0, 0.2.0)`},
		{name: "version not on the train", change: func(r *CreateRequest) { r.Version, r.AutoUpgrade = "0.3.0", ptr(false) },
			wantErr: `release train "stable": version 0.3.0: no version available (listed: 0.1.0, 0.2.0)`},
		{name: "unknown train", change: func(r *CreateRequest) { r.ReleaseTrain = "nightly" },
			wantErr: `release train "nightly" does not exist for Microsoft.ApiManagement.Gateway (trains: stable, preview)`},
		{name: "other extension type", change: func(r *CreateRequest) { r.ExtensionType = "Microsoft.Flux" },
			wantErr: `extension type "Microsoft.Flux" is not registered (this emulator serves Microsoft.ApiManagement.Gateway)`},
		{name: "unsupported cluster type", change: func(r *CreateRequest) { r.ClusterType = "appliances" },
			wantErr: "--cluster-type appliances is not supported by Microsoft.ApiManagement.Gateway (supported: connectedClusters, provisionedClusters)"},
		{name: "release namespace with namespace scope", change: func(r *CreateRequest) { r.ReleaseNamespace = "x" },
			wantErr: "--release-namespace is only allowed with --scope cluster; use --target-namespace with --scope namespace"},
		{name: "namespace scope needs a target", change: func(r *CreateRequest) { r.TargetNamespace = "" },
			wantErr: "--target-namespace is required with --scope namespace"},
		{name: "missing ids", change: func(r *CreateRequest) { r.ClusterName, r.ResourceGroup = "", "" },
			wantErr: "required: --cluster-name, --resource-group"},
		{name: "token as a plain setting", change: func(r *CreateRequest) {
			r.Protected = nil
			r.Settings["gateway.auth.token"] = token
		}, wantErr: "configuration setting gateway.auth.token is protected: pass it with --config-protected-settings"},
		{name: "alias of a protected key as a plain setting", change: func(r *CreateRequest) {
			r.Settings["gateway.auth.key"] = token
		}, wantErr: "configuration setting gateway.auth.key is protected: pass it with --config-protected-settings"},
		{name: "key given both ways", change: func(r *CreateRequest) { r.Protected["service.type"] = "NodePort" },
			wantErr: "setting service.type is given both as a configuration setting and as a protected setting"},
		{name: "key conflicting with another", change: func(r *CreateRequest) { r.Settings["service"] = "x" },
			wantErr: "configuration setting service.type: conflicts with service, which is a value, not an object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := baseCreate()
			tt.change(&req)
			e, a, err := c.PlanCreate(&State{}, req, t0)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "c2VjcmV0") {
					t.Fatalf("error leaks the token: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if e.CurrentVersion != tt.wantVersion || a.Version.Version != tt.wantVersion || a.Kind != Install {
				t.Errorf("version %s / action %s %s, want %s", e.CurrentVersion, a.Kind, a.Version.Version, tt.wantVersion)
			}
			if e.Namespace != tt.wantNS || a.Namespace != tt.wantNS || a.Release != "apim" {
				t.Errorf("namespace %s / release %s in %s", e.Namespace, a.Release, a.Namespace)
			}
			if pinned := req.AutoUpgrade != nil && !*req.AutoUpgrade; pinned != (e.Version != "") {
				t.Errorf("pinned version %q with auto-upgrade %v", e.Version, e.AutoUpgradeMinorVersion)
			}
		})
	}
	st := &State{}
	e, _, err := c.PlanCreate(st, baseCreate(), t0)
	if err != nil {
		t.Fatal(err)
	}
	st.put(e)
	if _, _, err := c.PlanCreate(st, baseCreate(), t0); err == nil || err.Error() != "extension apim already exists on cluster arc1; use update" {
		t.Errorf("second create: %v", err)
	}
}

func TestValues(t *testing.T) {
	c := catalog(t)
	req := baseCreate()
	req.Settings["service.annotations"] = `{"a": "b"}`
	req.Settings["Azure.Cluster.Distribution"] = "openshift" // users may override injected values
	req.Proxy = Proxy{HTTPSProxy: "http://proxy.local:3128", NoProxy: "10.0.0.0/8,.svc"}
	_, a, err := c.PlanCreate(&State{}, req, t0)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(a.Values)
	var v map[string]any
	_ = json.Unmarshal(got, &v)
	checks := map[string]any{
		"gateway.configuration.uri":          "https://contoso.configuration.azure-api.net",
		"gateway.auth.token":                 token,
		"service.type":                       "NodePort",
		"service.annotations":                `{"a": "b"}`, // a string, as ARM carries it; the chart parses it
		"Azure.Cluster.ResourceId":           "/subscriptions/sub1/resourceGroups/rg1/providers/Microsoft.Kubernetes/connectedClusters/arc1",
		"Azure.Cluster.Region":               "westeurope",
		"Azure.Cluster.Distribution":         "openshift",
		"Azure.Extension.Name":               "apim",
		"Azure.Extension.ResourceId":         "/subscriptions/sub1/resourceGroups/rg1/providers/Microsoft.Kubernetes/connectedClusters/arc1/providers/Microsoft.KubernetesConfiguration/extensions/apim",
		"Azure.Extension.ReleaseTrain":       "Stable",
		"Azure.Extension.Version":            "0.2.0",
		"Azure.proxySettings.isProxyEnabled": true,
		"Azure.proxySettings.httpsProxy":     "http://proxy.local:3128",
		"Azure.proxySettings.noProxy":        "10.0.0.0/8,.svc",
		"Azure.proxySettings.isCustomCert":   false,
	}
	for k, want := range checks {
		if got := lookupPath(v, k); got != want {
			t.Errorf("%s = %#v, want %#v", k, got, want)
		}
	}
	if _, err := Values(nil, map[string]string{"a..b": "x"}, nil); err == nil || err.Error() != `configuration setting "a..b": empty path segment` {
		t.Errorf("empty segment: %v", err)
	}
	if _, err := Values(nil, map[string]string{"a.b.c": "x"}, map[string]string{"a.b": "s3cret-value"}); err == nil ||
		err.Error() != "protected setting a.b: conflicts with a.b.c" {
		t.Errorf("object replaced by a value: %v", err)
	}
}

func created(t *testing.T, c *Catalog, change func(*CreateRequest)) *State {
	t.Helper()
	req := baseCreate()
	change(&req)
	e, _, err := c.PlanCreate(&State{}, req, t0)
	if err != nil {
		t.Fatal(err)
	}
	e.ProvisioningState = "Succeeded"
	return &State{Extensions: []*Extension{e}}
}

func TestPlanUpdate(t *testing.T) {
	c := catalog(t)
	onPreview := func(r *CreateRequest) { r.ReleaseTrain = "preview"; r.Version, r.AutoUpgrade = "0.1.0", ptr(false) }
	tests := []struct {
		name          string
		create        func(*CreateRequest)
		req           UpdateRequest
		wantVersion   string
		wantPinned    string
		wantProtected []string
		wantDeleted   []string
		wantSettings  map[string]string
		wantErr       string
	}{
		{
			name:          "protected settings omitted are deleted; plain settings merge",
			create:        func(*CreateRequest) {},
			req:           UpdateRequest{Settings: map[string]string{"replicaCount": "2"}},
			wantVersion:   "0.2.0",
			wantProtected: nil,
			wantDeleted:   []string{"gateway.auth.token"},
			wantSettings:  map[string]string{"gateway.configuration.uri": "https://contoso.configuration.azure-api.net", "service.type": "NodePort", "replicaCount": "2"},
		},
		{
			name:          "protected settings sent again are kept, new ones added",
			create:        func(*CreateRequest) {},
			req:           UpdateRequest{Protected: map[string]string{"gateway.auth.token": token + "2", "monitoring.ingestionKey": "a2V5"}},
			wantVersion:   "0.2.0",
			wantProtected: []string{"gateway.auth.token", "monitoring.ingestionKey"},
		},
		{
			name:          "pin the next version",
			create:        onPreview,
			req:           UpdateRequest{Version: "0.3.0", Protected: map[string]string{"gateway.auth.token": token}},
			wantVersion:   "0.3.0",
			wantPinned:    "0.3.0",
			wantProtected: []string{"gateway.auth.token"},
		},
		{
			name:          "roll back by pinning an older version",
			create:        func(r *CreateRequest) { r.ReleaseTrain = "preview"; r.Version, r.AutoUpgrade = "0.3.0", ptr(false) },
			req:           UpdateRequest{Version: "0.2.0", Protected: map[string]string{"gateway.auth.token": token}},
			wantVersion:   "0.2.0",
			wantPinned:    "0.2.0",
			wantProtected: []string{"gateway.auth.token"},
		},
		{
			name:        "turning auto-upgrade on moves to the newest target of the same major",
			create:      onPreview,
			req:         UpdateRequest{AutoUpgrade: ptr(true)},
			wantVersion: "0.3.0",
			wantDeleted: []string{"gateway.auth.token"},
		},
		{
			name:        "turning auto-upgrade off pins what is installed",
			create:      func(*CreateRequest) {},
			req:         UpdateRequest{AutoUpgrade: ptr(false)},
			wantVersion: "0.2.0",
			wantPinned:  "0.2.0",
			wantDeleted: []string{"gateway.auth.token"},
		},
		{
			name:        "switching train while auto-upgrading",
			create:      func(*CreateRequest) {},
			req:         UpdateRequest{ReleaseTrain: "preview"},
			wantVersion: "0.3.0",
			wantDeleted: []string{"gateway.auth.token"},
		},
		{
			name:    "version with auto-upgrade on",
			create:  func(*CreateRequest) {},
			req:     UpdateRequest{Version: "0.1.0"},
			wantErr: "to pin to specific version, auto-upgrade-minor-version must be set to 'false'",
		},
		{
			name:    "pin a version the train does not list",
			create:  onPreview,
			req:     UpdateRequest{Version: "0.9.0"},
			wantErr: `release train "preview": version 0.9.0: no version available (listed: 0.1.0, 0.2.0, 0.3.0, 1.0.0)`,
		},
		{
			name:    "token as a plain setting",
			create:  func(*CreateRequest) {},
			req:     UpdateRequest{Settings: map[string]string{"gateway.auth.token": token}},
			wantErr: "configuration setting gateway.auth.token is protected: pass it with --config-protected-settings",
		},
		{
			name:    "unknown instance",
			create:  func(*CreateRequest) {},
			req:     UpdateRequest{Ref: Ref{Subscription: "sub1", ResourceGroup: "rg1", ClusterType: "connectedClusters", ClusterName: "arc1", Name: "other"}},
			wantErr: "extension not found: other on cluster arc1 (resource group rg1)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := created(t, c, tt.create)
			before, _ := json.Marshal(st)
			req := tt.req
			if req.Ref == (Ref{}) {
				req.Ref = gw
			}
			e, a, deleted, err := c.PlanUpdate(st, req, t0.Add(time.Hour))
			if after, _ := json.Marshal(st); string(after) != string(before) {
				t.Errorf("planning changed the stored instance")
			}
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if e.CurrentVersion != tt.wantVersion || a.Version.Version != tt.wantVersion || e.Version != tt.wantPinned {
				t.Errorf("current %s, action %s, pinned %q; want %s pinned %q", e.CurrentVersion, a.Version.Version, e.Version, tt.wantVersion, tt.wantPinned)
			}
			if !slices.Equal(e.ProtectedKeys, tt.wantProtected) || !slices.Equal(deleted, tt.wantDeleted) {
				t.Errorf("protected %v deleted %v; want %v deleted %v", e.ProtectedKeys, deleted, tt.wantProtected, tt.wantDeleted)
			}
			// What is not sent again is gone from the values Helm gets.
			for _, k := range deleted {
				if lookupPath(a.Values, k) != nil {
					t.Errorf("deleted protected setting %s still in the values", k)
				}
			}
			for _, k := range e.ProtectedKeys {
				if lookupPath(a.Values, k) != req.Protected[k] {
					t.Errorf("protected %s not passed to Helm", k)
				}
			}
			if tt.wantSettings != nil && !mapsEqual(e.ConfigurationSettings, tt.wantSettings) {
				t.Errorf("settings %v, want %v", e.ConfigurationSettings, tt.wantSettings)
			}
			if lookupPath(a.Values, "Azure.Extension.Version") != tt.wantVersion {
				t.Errorf("Azure.Extension.Version = %v", lookupPath(a.Values, "Azure.Extension.Version"))
			}
		})
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestPlanAutoUpgrade(t *testing.T) {
	c := catalog(t)
	tests := []struct {
		name   string
		create func(*CreateRequest)
		bump   string // current version to pretend is installed
		want   string // "" = no upgrade
	}{
		{name: "newer target on the train", create: func(r *CreateRequest) { r.ReleaseTrain = "preview" }, bump: "0.1.0", want: "0.3.0"},
		{name: "already newest of its major", create: func(r *CreateRequest) { r.ReleaseTrain = "preview" }, bump: "0.3.0"},
		{name: "pinned instances never move", create: func(r *CreateRequest) { r.Version, r.AutoUpgrade = "0.1.0", ptr(false) }, bump: "0.1.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := created(t, c, tt.create)
			e := st.Extensions[0]
			e.CurrentVersion = tt.bump
			current := map[string]any{"gateway": map[string]any{"auth": map[string]any{"token": token}}}
			n, a, ok, err := c.PlanAutoUpgrade(e, current, t0)
			if err != nil {
				t.Fatal(err)
			}
			if ok != (tt.want != "") {
				t.Fatalf("upgrade = %v, want %q", ok, tt.want)
			}
			if !ok {
				return
			}
			if n.CurrentVersion != tt.want || a.Version.Version != tt.want || e.CurrentVersion != tt.bump {
				t.Errorf("upgraded to %s (action %s), stored %s", n.CurrentVersion, a.Version.Version, e.CurrentVersion)
			}
			// Arc re-delivers the protected settings on an auto-upgrade.
			if lookupPath(a.Values, "gateway.auth.token") != token || !slices.Contains(a.Secrets, token) {
				t.Errorf("token not carried over")
			}
			if lookupPath(a.Values, "Azure.Extension.Version") != tt.want {
				t.Errorf("Azure.Extension.Version = %v", lookupPath(a.Values, "Azure.Extension.Version"))
			}
		})
	}
}

// The state file and `show` keep protected keys, never their values.
func TestStateAndShowRedaction(t *testing.T) {
	c := catalog(t)
	st := created(t, c, func(r *CreateRequest) { r.Protected["monitoring.ingestionKey"] = "aW5nZXN0aW9uLWtleQ==" })
	st.Extensions[0].ErrorMessage = Scrub("helm install apim: value "+token+" rejected", []string{token})
	store := Store{Path: filepath.Join(t.TempDir(), "state", "state.json")}
	unlock, err := store.Lock()
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Save(st); err != nil {
		t.Fatal(err)
	}
	unlock()
	raw, err := os.ReadFile(store.Path)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(store.Path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v", fi.Mode().Perm())
	}
	loaded, err := store.Load()
	if err != nil {
		t.Fatal(err)
	}
	shown, _ := json.Marshal(loaded.Find(gw).Resource())
	for what, text := range map[string]string{"state file": string(raw), "show": string(shown)} {
		for _, secret := range []string{token, "c2VjcmV0LXNpZ25hdHVyZQ", "aW5nZXN0aW9uLWtleQ"} {
			if strings.Contains(text, secret) {
				t.Errorf("%s holds a protected value", what)
			}
		}
	}
	var res map[string]any
	_ = json.Unmarshal(shown, &res)
	prot, _ := res["configurationProtectedSettings"].(map[string]any)
	if _, ok := prot["gateway.auth.token"]; !ok || prot["gateway.auth.token"] != nil || len(prot) != 2 {
		t.Errorf("configurationProtectedSettings = %v, want the keys with no values", prot)
	}
	if res["id"] != "/subscriptions/sub1/resourceGroups/rg1/providers/Microsoft.Kubernetes/connectedClusters/arc1/providers/Microsoft.KubernetesConfiguration/extensions/apim" ||
		res["currentVersion"] != "0.2.0" || res["releaseTrain"] != "Stable" || res["version"] != nil {
		t.Errorf("resource = %s", shown)
	}
	if !strings.Contains(string(shown), "[REDACTED]") {
		t.Errorf("the scrubbed error is not shown: %s", shown)
	}
}
