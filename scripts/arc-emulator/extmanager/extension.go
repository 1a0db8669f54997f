// Package extmanager does what Azure Arc's extension manager does for one
// extension type: it keeps extension instances (the ARM resources) in a
// state file, resolves versions from extension-manifest.yaml, turns
// configuration and protected settings into Helm values with the Azure.*
// values injected, and installs, upgrades and uninstalls the chart with the
// Helm SDK. Protected values are never written to the state file nor
// printed: they live only in the Helm release (a Secret in the cluster).
package extmanager

import (
	"crypto/sha256"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Extension is one extension instance as the state file keeps it.
type Extension struct {
	Subscription  string `json:"subscription"`
	ResourceGroup string `json:"resourceGroup"`
	ClusterName   string `json:"clusterName"`
	ClusterType   string `json:"clusterType"`
	Name          string `json:"name"`
	ExtensionType string `json:"extensionType"`

	AutoUpgradeMinorVersion bool   `json:"autoUpgradeMinorVersion"`
	ReleaseTrain            string `json:"releaseTrain"`
	// Version is the pinned version; empty while auto-upgrading.
	Version string `json:"version,omitempty"`
	// CurrentVersion is the version installed in the cluster.
	CurrentVersion string `json:"currentVersion"`
	// ChartVersion is the chart version CurrentVersion deploys.
	ChartVersion string `json:"chartVersion"`

	Scope     string `json:"scope"` // "cluster" or "namespace"
	Namespace string `json:"namespace"`

	ConfigurationSettings map[string]string `json:"configurationSettings"`
	// ProtectedKeys names the protected settings in force; their values
	// are only in the Helm release.
	ProtectedKeys []string `json:"protectedKeys"`

	Cluster Cluster `json:"cluster"`
	Proxy   Proxy   `json:"proxy"`

	ProvisioningState string     `json:"provisioningState"`
	ErrorMessage      string     `json:"errorMessage,omitempty"`
	CreatedAt         time.Time  `json:"createdAt"`
	LastModifiedAt    time.Time  `json:"lastModifiedAt"`
	LastAutoUpgrade   *time.Time `json:"lastAutoUpgrade,omitempty"`
}

// Cluster holds the connected-cluster facts Arc injects as Azure.Cluster.*.
type Cluster struct {
	Region         string `json:"region"`
	Distribution   string `json:"distribution"`
	Infrastructure string `json:"infrastructure"`
	Cloud          string `json:"cloud"`
	// Kubeconfig is the file the cluster is reached with; kept so delete
	// and reconcile work without repeating it.
	Kubeconfig string `json:"kubeconfig,omitempty"`
}

// Proxy holds the cluster's proxy settings (az connectedk8s connect
// --proxy-http/--proxy-https/--proxy-skip-range/--proxy-cert), injected as
// Azure.proxySettings.*.
type Proxy struct {
	HTTPProxy  string `json:"httpProxy,omitempty"`
	HTTPSProxy string `json:"httpsProxy,omitempty"`
	NoProxy    string `json:"noProxy,omitempty"`
	Cert       string `json:"cert,omitempty"` // PEM
}

// clusterProviders maps --cluster-type to its resource provider.
var clusterProviders = map[string]string{
	"connectedClusters":   "Microsoft.Kubernetes",
	"managedClusters":     "Microsoft.ContainerService",
	"provisionedClusters": "Microsoft.HybridContainerService",
	"appliances":          "Microsoft.ResourceConnector",
}

// ClusterID is the ARM id of the cluster.
func (e *Extension) ClusterID() string {
	return fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/%s/%s/%s",
		e.Subscription, e.ResourceGroup, clusterProviders[e.ClusterType], e.ClusterType, e.ClusterName)
}

// ID is the ARM id of the extension instance.
func (e *Extension) ID() string {
	return e.ClusterID() + "/providers/Microsoft.KubernetesConfiguration/extensions/" + e.Name
}

// key identifies an instance in the state file (ARM ids are case-insensitive).
func (e *Extension) key() string { return strings.ToLower(e.ID()) }

// principalID is a stable made-up object id for the extension's
// system-assigned identity, derived from its resource id.
func (e *Extension) principalID() string {
	h := sha256.Sum256([]byte(e.key()))
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

// Resource is the extension resource as `az k8s-extension show` prints it
// (properties flattened). Protected settings show their keys only.
func (e *Extension) Resource() map[string]any {
	protected := map[string]any{}
	for _, k := range e.ProtectedKeys {
		protected[k] = nil
	}
	settings := map[string]any{}
	for k, v := range e.ConfigurationSettings {
		settings[k] = v
	}
	var scope map[string]any
	if e.Scope == "cluster" {
		scope = map[string]any{"cluster": map[string]any{"releaseNamespace": e.Namespace}, "namespace": nil}
	} else {
		scope = map[string]any{"cluster": nil, "namespace": map[string]any{"targetNamespace": e.Namespace}}
	}
	var version any
	if e.Version != "" {
		version = e.Version
	}
	var errorInfo any
	statuses := []any{}
	if e.ErrorMessage != "" {
		errorInfo = map[string]any{"code": "ExtensionOperationFailed", "message": e.ErrorMessage}
		statuses = append(statuses, map[string]any{
			"code": "InstallationFailed", "displayStatus": nil, "level": "Error",
			"message": e.ErrorMessage, "time": e.LastModifiedAt.UTC().Format(time.RFC3339),
		})
	}
	return map[string]any{
		"id":                             e.ID(),
		"name":                           e.Name,
		"type":                           "Microsoft.KubernetesConfiguration/extensions",
		"resourceGroup":                  e.ResourceGroup,
		"extensionType":                  e.ExtensionType,
		"autoUpgradeMinorVersion":        e.AutoUpgradeMinorVersion,
		"releaseTrain":                   e.ReleaseTrain,
		"version":                        version,
		"currentVersion":                 e.CurrentVersion,
		"isSystemExtension":              false,
		"scope":                          scope,
		"configurationSettings":          settings,
		"configurationProtectedSettings": protected,
		"provisioningState":              e.ProvisioningState,
		"errorInfo":                      errorInfo,
		"statuses":                       statuses,
		"packageUri":                     nil,
		"aksAssignedIdentity":            nil,
		"customLocationSettings":         nil,
		"plan":                           nil,
		"identity": map[string]any{
			"type":        "SystemAssigned",
			"principalId": e.principalID(),
			"tenantId":    nil,
		},
		"systemData": map[string]any{
			"createdAt":          e.CreatedAt.UTC().Format(time.RFC3339),
			"createdBy":          nil,
			"lastModifiedAt":     e.LastModifiedAt.UTC().Format(time.RFC3339),
			"lastModifiedBy":     nil,
			"createdByType":      nil,
			"lastModifiedByType": nil,
		},
	}
}

// clone returns a deep copy, so a failed operation leaves the stored
// instance untouched.
func (e *Extension) clone() *Extension {
	c := *e
	c.ConfigurationSettings = maps.Clone(e.ConfigurationSettings)
	c.ProtectedKeys = slices.Clone(e.ProtectedKeys)
	return &c
}
