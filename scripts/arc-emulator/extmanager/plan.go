package extmanager

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/seed393f6fe3/apim-arc-gateway/extension/settings"
	"github.com/seed393f6fe3/apim-arc-gateway/scripts/release-train/manifest"
)

// Catalog is what the extension manager knows about the extension type.
type Catalog struct {
	Manifest *manifest.Manifest
	// Schema resolves aliases, so an alias of a protected key counts as
	// protected too.
	Schema *settings.Schema
}

// CreateRequest is `az k8s-extension create`.
type CreateRequest struct {
	Ref
	ExtensionType    string
	Scope            string // "" = the manifest's default scope
	ReleaseNamespace string // --release-namespace, cluster scope only
	TargetNamespace  string // --target-namespace, namespace scope only
	ReleaseTrain     string // "" = Stable
	Version          string
	AutoUpgrade      *bool // nil = true
	Settings         map[string]string
	Protected        map[string]string
	Cluster          Cluster
	Proxy            Proxy
}

// UpdateRequest is `az k8s-extension update`: a PATCH.
type UpdateRequest struct {
	Ref
	ReleaseTrain string // "" = unchanged
	Version      string // "" = unchanged, unless auto-upgrade is turned on
	AutoUpgrade  *bool  // nil = unchanged
	// Settings are merged over the current configuration settings.
	Settings map[string]string
	// Protected replaces every protected setting: Arc treats omitted ones
	// as obsolete and deletes them, so they must all be sent again.
	Protected map[string]string
}

// ActionKind is what happens in the cluster.
type ActionKind string

const (
	Install   ActionKind = "install"
	Upgrade   ActionKind = "upgrade"
	Uninstall ActionKind = "uninstall"
)

// Action is one Helm operation. Values holds protected values: never log it.
type Action struct {
	Kind      ActionKind
	Release   string
	Namespace string
	Version   manifest.Version
	Values    map[string]any
	// Secrets are the protected values in Values, so errors from Helm or
	// the chart can be scrubbed of them before they are stored or printed.
	Secrets []string
}

// ErrNotFound means the named extension instance does not exist.
var ErrNotFound = errors.New("extension not found")

const defaultTrain = "Stable"

// PlanCreate validates a create request against the manifest and returns
// the new instance and the install to run.
func (c *Catalog) PlanCreate(st *State, req CreateRequest, now time.Time) (*Extension, *Action, error) {
	m := c.Manifest
	if err := req.Ref.validate(); err != nil {
		return nil, nil, err
	}
	if req.ExtensionType == "" {
		return nil, nil, errors.New("--extension-type is required")
	}
	if !strings.EqualFold(req.ExtensionType, m.ExtensionType) {
		return nil, nil, fmt.Errorf("extension type %q is not registered (this emulator serves %s)", req.ExtensionType, m.ExtensionType)
	}
	if !slices.Contains(m.SupportedClusterTypes, req.ClusterType) {
		return nil, nil, fmt.Errorf("--cluster-type %s is not supported by %s (supported: %s)", req.ClusterType, m.ExtensionType, strings.Join(m.SupportedClusterTypes, ", "))
	}
	if st.Find(req.Ref) != nil {
		return nil, nil, fmt.Errorf("extension %s already exists on cluster %s; use update", req.Name, req.ClusterName)
	}
	scope, ns, err := c.scope(req)
	if err != nil {
		return nil, nil, err
	}
	trainName := req.ReleaseTrain
	if trainName == "" {
		trainName = defaultTrain
	}
	train, ok := m.Train(trainName)
	if !ok {
		return nil, nil, fmt.Errorf("release train %q does not exist for %s (trains: %s)", trainName, m.ExtensionType, strings.Join(publicTrains(m), ", "))
	}
	auto := req.AutoUpgrade == nil || *req.AutoUpgrade
	v, err := train.ResolveInstall(req.Version, auto)
	if err != nil {
		return nil, nil, err
	}
	if err := c.checkSettings(req.Settings, req.Protected); err != nil {
		return nil, nil, err
	}
	e := &Extension{
		Subscription: req.Subscription, ResourceGroup: req.ResourceGroup,
		ClusterName: req.ClusterName, ClusterType: req.ClusterType, Name: req.Name,
		ExtensionType:           m.ExtensionType,
		AutoUpgradeMinorVersion: auto,
		ReleaseTrain:            trainName,
		CurrentVersion:          v.Version,
		ChartVersion:            v.ChartVersion,
		Scope:                   scope,
		Namespace:               ns,
		ConfigurationSettings:   maps.Clone(req.Settings),
		ProtectedKeys:           slices.Sorted(maps.Keys(req.Protected)),
		Cluster:                 req.Cluster,
		Proxy:                   req.Proxy,
		ProvisioningState:       "Creating",
		CreatedAt:               now,
		LastModifiedAt:          now,
	}
	if !auto {
		e.Version = v.Version
	}
	if e.ConfigurationSettings == nil {
		e.ConfigurationSettings = map[string]string{}
	}
	values, err := Values(Injected(e), req.Settings, req.Protected)
	if err != nil {
		return nil, nil, err
	}
	return e, &Action{Kind: Install, Release: e.Name, Namespace: ns, Version: v, Values: values, Secrets: secretValues(req.Protected)}, nil
}

func (c *Catalog) scope(req CreateRequest) (scope, namespace string, err error) {
	m := c.Manifest
	scope = req.Scope
	if scope == "" {
		scope = m.Scopes.Default
	}
	if !slices.Contains(m.Scopes.Allowed, scope) {
		return "", "", fmt.Errorf("--scope %s is not allowed for %s (allowed: %s)", scope, m.ExtensionType, strings.Join(m.Scopes.Allowed, ", "))
	}
	switch scope {
	case "cluster":
		if req.TargetNamespace != "" {
			return "", "", errors.New("--target-namespace is only allowed with --scope namespace; use --release-namespace with --scope cluster")
		}
		namespace = req.ReleaseNamespace
		if namespace == "" {
			namespace = req.Name
		}
	case "namespace":
		if req.ReleaseNamespace != "" {
			return "", "", errors.New("--release-namespace is only allowed with --scope cluster; use --target-namespace with --scope namespace")
		}
		if req.TargetNamespace == "" {
			return "", "", errors.New("--target-namespace is required with --scope namespace")
		}
		namespace = req.TargetNamespace
	}
	if err := dnsLabel(namespace); err != nil {
		return "", "", fmt.Errorf("namespace %q: %w", namespace, err)
	}
	return scope, namespace, nil
}

// checkSettings refuses a protected key passed as a plain setting (the
// manifest lists them; aliases count) and a key passed both ways. Errors
// name keys, never values.
func (c *Catalog) checkSettings(plain, protected map[string]string) error {
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(plain)) {
		canonical := k
		if c.Schema != nil {
			if ck, _, ok := c.Schema.Canonical(k); ok {
				canonical = ck
			}
		}
		if slices.Contains(c.Manifest.Settings.Protected, canonical) {
			errs = append(errs, fmt.Errorf("configuration setting %s is protected: pass it with --config-protected-settings", k))
		}
		if _, both := protected[k]; both {
			errs = append(errs, fmt.Errorf("setting %s is given both as a configuration setting and as a protected setting", k))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(protected)) {
		if k == "" || strings.TrimSpace(k) != k {
			errs = append(errs, fmt.Errorf("protected setting key %q is not valid", k))
		}
	}
	return errors.Join(errs...)
}

// PlanUpdate applies a PATCH to an instance and returns the upgrade to run
// and the protected keys the update deleted (sent before, not sent now).
func (c *Catalog) PlanUpdate(st *State, req UpdateRequest, now time.Time) (*Extension, *Action, []string, error) {
	if err := req.Ref.validate(); err != nil {
		return nil, nil, nil, err
	}
	old := st.Find(req.Ref)
	if old == nil {
		return nil, nil, nil, fmt.Errorf("%w: %s on cluster %s (resource group %s)", ErrNotFound, req.Name, req.ClusterName, req.ResourceGroup)
	}
	e := old.clone()
	if req.AutoUpgrade != nil {
		e.AutoUpgradeMinorVersion = *req.AutoUpgrade
	}
	if req.ReleaseTrain != "" {
		e.ReleaseTrain = req.ReleaseTrain
	}
	train, ok := c.Manifest.Train(e.ReleaseTrain)
	if !ok {
		return nil, nil, nil, fmt.Errorf("release train %q does not exist for %s (trains: %s)", e.ReleaseTrain, c.Manifest.ExtensionType, strings.Join(publicTrains(c.Manifest), ", "))
	}
	var target manifest.Version
	switch {
	case req.Version != "" && e.AutoUpgradeMinorVersion:
		return nil, nil, nil, errors.New("to pin to specific version, auto-upgrade-minor-version must be set to 'false'")
	case !e.AutoUpgradeMinorVersion:
		pin := req.Version
		if pin == "" {
			pin = e.Version
		}
		if pin == "" {
			// Turning auto-upgrade off without a version pins the
			// version that is installed.
			pin = e.CurrentVersion
		}
		v, err := train.ResolveInstall(pin, false)
		if err != nil {
			return nil, nil, nil, err
		}
		target, e.Version = v, v.Version
	default:
		e.Version = ""
		if v, ok := train.AutoUpgrade(e.CurrentVersion); ok {
			target = v
		} else if v, ok := train.Find(e.CurrentVersion); ok {
			target = v
		} else {
			// The installed version is not on the (new) train and nothing
			// of its major is: stay, as Arc never crosses a major version
			// on its own.
			target = manifest.Version{Version: e.CurrentVersion, ChartVersion: e.ChartVersion}
		}
	}
	merged := maps.Clone(e.ConfigurationSettings)
	if merged == nil {
		merged = map[string]string{}
	}
	maps.Copy(merged, req.Settings)
	if err := c.checkSettings(merged, req.Protected); err != nil {
		return nil, nil, nil, err
	}
	var deleted []string
	for _, k := range e.ProtectedKeys {
		if _, kept := req.Protected[k]; !kept {
			deleted = append(deleted, k)
		}
	}
	e.ConfigurationSettings = merged
	e.ProtectedKeys = slices.Sorted(maps.Keys(req.Protected))
	e.CurrentVersion, e.ChartVersion = target.Version, target.ChartVersion
	e.ProvisioningState = "Updating"
	e.ErrorMessage = ""
	e.LastModifiedAt = now
	values, err := Values(Injected(e), merged, req.Protected)
	if err != nil {
		return nil, nil, nil, err
	}
	return e, &Action{Kind: Upgrade, Release: e.Name, Namespace: e.Namespace, Version: target, Values: values, Secrets: secretValues(req.Protected)}, deleted, nil
}

// PlanAutoUpgrade returns the upgrade Arc runs on its own for an
// auto-upgrading instance when its train offers a newer auto-upgrade target
// of the same major version. current is the release's values as Helm
// stored them (protected ones included, since Arc re-delivers them).
func (c *Catalog) PlanAutoUpgrade(e *Extension, current map[string]any, now time.Time) (*Extension, *Action, bool, error) {
	if !e.AutoUpgradeMinorVersion {
		return nil, nil, false, nil
	}
	train, ok := c.Manifest.Train(e.ReleaseTrain)
	if !ok {
		return nil, nil, false, fmt.Errorf("release train %q does not exist", e.ReleaseTrain)
	}
	v, ok := train.AutoUpgrade(e.CurrentVersion)
	if !ok {
		return nil, nil, false, nil
	}
	n := e.clone()
	n.CurrentVersion, n.ChartVersion = v.Version, v.ChartVersion
	n.LastModifiedAt = now
	n.LastAutoUpgrade = &now
	n.ProvisioningState = "Updating"
	values := deepCopy(current)
	for _, k := range []string{"Azure.Extension.Version", "Azure.Extension.ReleaseTrain"} {
		if err := setPath(values, k, Injected(n)[k]); err != nil {
			return nil, nil, false, err
		}
	}
	var secrets []string
	for _, k := range n.ProtectedKeys {
		if s, ok := lookupPath(values, k).(string); ok {
			secrets = append(secrets, s)
		}
	}
	return n, &Action{Kind: Upgrade, Release: n.Name, Namespace: n.Namespace, Version: v, Values: values, Secrets: secrets}, true, nil
}

func secretValues(protected map[string]string) []string {
	var out []string
	for _, v := range protected {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}

func lookupPath(m map[string]any, key string) any {
	var cur any = m
	for _, p := range strings.Split(key, ".") {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[p]
	}
	return cur
}

// Scrub replaces every secret in an error text, so a chart or Helm message
// that quotes a value never carries a protected one further.
func Scrub(text string, secrets []string) string {
	for _, s := range secrets {
		if s != "" {
			text = strings.ReplaceAll(text, s, "[REDACTED]")
		}
	}
	return text
}

func deepCopy(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok {
			out[k] = deepCopy(sub)
		} else {
			out[k] = v
		}
	}
	return out
}

func (r Ref) validate() error {
	var missing []string
	for _, f := range []struct{ flag, v string }{
		{"--name", r.Name}, {"--cluster-name", r.ClusterName},
		{"--resource-group", r.ResourceGroup}, {"--cluster-type", r.ClusterType},
	} {
		if f.v == "" {
			missing = append(missing, f.flag)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("required: %s", strings.Join(missing, ", "))
	}
	if _, ok := clusterProviders[r.ClusterType]; !ok {
		return fmt.Errorf("--cluster-type %q is not one of connectedClusters, managedClusters, appliances, provisionedClusters", r.ClusterType)
	}
	// The name is the Helm release name and part of object names.
	if err := dnsLabel(r.Name); err != nil || len(r.Name) > 53 {
		return fmt.Errorf("--name %q must be a lowercase DNS label of at most 53 characters", r.Name)
	}
	return nil
}

func dnsLabel(s string) error {
	if s == "" || len(s) > 63 {
		return errors.New("must be 1 to 63 characters")
	}
	for i, c := range s {
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' && i > 0 && i < len(s)-1
		if !ok {
			return errors.New("must be lowercase letters, digits and inner hyphens")
		}
	}
	return nil
}

func publicTrains(m *manifest.Manifest) []string {
	var out []string
	for _, t := range m.ReleaseTrains {
		if !t.Hidden {
			out = append(out, t.Name)
		}
	}
	return out
}
