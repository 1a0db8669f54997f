package extmanager

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Values turns Arc settings into Helm values the way the extension manager
// does: each dotted key is a path of nested values (a.b.c=v sets
// .Values.a.b.c), values stay the strings ARM carries (the chart converts
// them), and protected settings become values too (the chart keeps them in
// its Secret). injected holds the Azure.* values, already typed; settings
// may override them, as Arc allows.
func Values(injected map[string]any, plain, protected map[string]string) (map[string]any, error) {
	out := map[string]any{}
	for _, k := range slices.Sorted(maps.Keys(injected)) {
		if err := setPath(out, k, injected[k]); err != nil {
			return nil, err
		}
	}
	for _, k := range slices.Sorted(maps.Keys(plain)) {
		if err := setPath(out, k, plain[k]); err != nil {
			return nil, fmt.Errorf("configuration setting %w", err)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(protected)) {
		if err := setPath(out, k, protected[k]); err != nil {
			return nil, fmt.Errorf("protected setting %w", err)
		}
	}
	return out, nil
}

// setPath sets a dotted path. A path that runs through a value that is not
// a map (a=1 and a.b=2) is an error naming both keys; an injected Azure.*
// leaf may be replaced by a user setting of the same key.
func setPath(root map[string]any, key string, v any) error {
	parts := strings.Split(key, ".")
	if slices.Contains(parts, "") {
		return fmt.Errorf("%q: empty path segment", key)
	}
	m := root
	for i, p := range parts[:len(parts)-1] {
		next, ok := m[p]
		if !ok {
			child := map[string]any{}
			m[p] = child
			m = child
			continue
		}
		child, ok := next.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: conflicts with %s, which is a value, not an object", key, strings.Join(parts[:i+1], "."))
		}
		m = child
	}
	last := parts[len(parts)-1]
	if existing, ok := m[last].(map[string]any); ok && len(existing) > 0 {
		return fmt.Errorf("%s: conflicts with %s.%s", key, key, firstKey(existing))
	}
	m[last] = v
	return nil
}

func firstKey(m map[string]any) string {
	keys := slices.Sorted(maps.Keys(m))
	if sub, ok := m[keys[0]].(map[string]any); ok && len(sub) > 0 {
		return keys[0] + "." + firstKey(sub)
	}
	return keys[0]
}

// Injected returns the Azure.* values the extension manager gives every
// install (reference/arc.md section 3), keyed by dotted path.
func Injected(e *Extension) map[string]any {
	v := map[string]any{
		"Azure.Cluster.ResourceId":     e.ClusterID(),
		"Azure.Cluster.Region":         e.Cluster.Region,
		"Azure.Cluster.Distribution":   e.Cluster.Distribution,
		"Azure.Cluster.Infrastructure": e.Cluster.Infrastructure,
		"Azure.Cluster.Cloud":          e.Cluster.Cloud,
		"Azure.Extension.Name":         e.Name,
		"Azure.Extension.ResourceId":   e.ID(),
		"Azure.Extension.ReleaseTrain": e.ReleaseTrain,
		"Azure.Extension.Version":      e.CurrentVersion,
		"Azure.Identity.isEnabled":     true,
		"Azure.Identity.Type":          "SystemAssigned",
	}
	p := e.Proxy
	v["Azure.proxySettings.isProxyEnabled"] = p.HTTPProxy != "" || p.HTTPSProxy != ""
	v["Azure.proxySettings.httpProxy"] = p.HTTPProxy
	v["Azure.proxySettings.httpsProxy"] = p.HTTPSProxy
	v["Azure.proxySettings.noProxy"] = p.NoProxy
	v["Azure.proxySettings.proxyCert"] = p.Cert
	v["Azure.proxySettings.isCustomCert"] = p.Cert != ""
	return v
}
