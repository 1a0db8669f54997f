package extmanager

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Manager runs extension operations end to end: plan against the state and
// the manifest, run Helm, record the outcome.
type Manager struct {
	Catalog   *Catalog
	Store     Store
	ChartsDir string
	// Kube is the Helm/cluster access. Its Kubeconfig, when set, overrides
	// the one an instance was created with.
	Kube Kube
	Now  func() time.Time
}

func (m *Manager) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now().UTC()
}

func (m *Manager) kubeFor(e *Extension) Kube {
	k := m.Kube
	if k.Kubeconfig == "" {
		k.Kubeconfig = e.Cluster.Kubeconfig
	}
	return k
}

// withState runs f with the state locked and loaded, and saves it after.
func (m *Manager) withState(f func(*State) error) error {
	unlock, err := m.Store.Lock()
	if err != nil {
		return err
	}
	defer unlock()
	st, err := m.Store.Load()
	if err != nil {
		return err
	}
	ferr := f(st)
	if err := m.Store.Save(st); err != nil {
		return err
	}
	return ferr
}

// run applies an action and records Succeeded or Failed on e, which is
// stored either way (Arc keeps a failed instance, with its error).
func (m *Manager) run(ctx context.Context, st *State, e *Extension, a *Action) error {
	err := m.kubeFor(e).Apply(ctx, a, m.ChartsDir, m.Catalog.Manifest.Chart.Name)
	e.LastModifiedAt = m.now()
	if err != nil {
		msg := Scrub(err.Error(), a.Secrets)
		e.ProvisioningState, e.ErrorMessage = "Failed", msg
		err = errors.New(msg)
	} else {
		e.ProvisioningState, e.ErrorMessage = "Succeeded", ""
	}
	st.put(e)
	return err
}

// Create creates an instance and installs its chart.
func (m *Manager) Create(ctx context.Context, req CreateRequest) (*Extension, error) {
	var out *Extension
	err := m.withState(func(st *State) error {
		e, a, err := m.Catalog.PlanCreate(st, req, m.now())
		if err != nil {
			return err
		}
		out = e
		return m.run(ctx, st, e, a)
	})
	return out, err
}

// Update patches an instance and upgrades its release. It returns the
// protected keys the update deleted.
func (m *Manager) Update(ctx context.Context, req UpdateRequest) (*Extension, []string, error) {
	var out *Extension
	var deleted []string
	err := m.withState(func(st *State) error {
		e, a, del, err := m.Catalog.PlanUpdate(st, req, m.now())
		if err != nil {
			return err
		}
		out, deleted = e, del
		return m.run(ctx, st, e, a)
	})
	return out, deleted, err
}

// Delete uninstalls the release and removes the instance.
func (m *Manager) Delete(ctx context.Context, r Ref) error {
	return m.withState(func(st *State) error {
		e := st.Find(r)
		if e == nil {
			return fmt.Errorf("%w: %s on cluster %s (resource group %s)", ErrNotFound, r.Name, r.ClusterName, r.ResourceGroup)
		}
		a := &Action{Kind: Uninstall, Release: e.Name, Namespace: e.Namespace}
		if err := m.kubeFor(e).Apply(ctx, a, m.ChartsDir, m.Catalog.Manifest.Chart.Name); err != nil {
			e.ProvisioningState, e.ErrorMessage = "Failed", err.Error()
			return err
		}
		st.remove(e)
		return nil
	})
}

// Show returns one instance.
func (m *Manager) Show(r Ref) (*Extension, error) {
	st, err := m.Store.Load()
	if err != nil {
		return nil, err
	}
	e := st.Find(r)
	if e == nil {
		return nil, fmt.Errorf("%w: %s on cluster %s (resource group %s)", ErrNotFound, r.Name, r.ClusterName, r.ResourceGroup)
	}
	return e, nil
}

// List returns the instances on a cluster.
func (m *Manager) List(r Ref) ([]*Extension, error) {
	st, err := m.Store.Load()
	if err != nil {
		return nil, err
	}
	return st.OnCluster(r), nil
}

// Reconcile does the extension manager's periodic auto-upgrade pass for the
// instances on a cluster and returns a line per upgrade it ran.
func (m *Manager) Reconcile(ctx context.Context, r Ref) ([]string, error) {
	var done []string
	err := m.withState(func(st *State) error {
		for _, e := range st.OnCluster(r) {
			if !e.AutoUpgradeMinorVersion {
				continue
			}
			current, err := m.kubeFor(e).ReleaseValues(e.Name, e.Namespace)
			if err != nil {
				return fmt.Errorf("extension %s: %w", e.Name, err)
			}
			n, a, ok, err := m.Catalog.PlanAutoUpgrade(e, current, m.now())
			if err != nil {
				return fmt.Errorf("extension %s: %w", e.Name, err)
			}
			if !ok {
				continue
			}
			if err := m.run(ctx, st, n, a); err != nil {
				return fmt.Errorf("extension %s: auto-upgrade to %s: %w", e.Name, n.CurrentVersion, err)
			}
			done = append(done, fmt.Sprintf("%s: %s -> %s", e.Name, e.CurrentVersion, n.CurrentVersion))
		}
		return nil
	})
	return done, err
}
