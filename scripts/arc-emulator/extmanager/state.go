package extmanager

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// State is the set of extension instances, as ARM would hold them.
type State struct {
	Extensions []*Extension `json:"extensions"`
}

// Ref names one extension instance the way az does.
type Ref struct {
	Subscription, ResourceGroup, ClusterType, ClusterName, Name string
}

func (r Ref) ext() *Extension {
	return &Extension{Subscription: r.Subscription, ResourceGroup: r.ResourceGroup,
		ClusterType: r.ClusterType, ClusterName: r.ClusterName, Name: r.Name}
}

// Find returns the instance r names, or nil.
func (s *State) Find(r Ref) *Extension {
	k := r.ext().key()
	for _, e := range s.Extensions {
		if e.key() == k {
			return e
		}
	}
	return nil
}

// put replaces or adds an instance.
func (s *State) put(e *Extension) {
	for i, old := range s.Extensions {
		if old.key() == e.key() {
			s.Extensions[i] = e
			return
		}
	}
	s.Extensions = append(s.Extensions, e)
}

func (s *State) remove(e *Extension) {
	s.Extensions = slices.DeleteFunc(s.Extensions, func(x *Extension) bool { return x.key() == e.key() })
}

// OnCluster lists the instances on one cluster, sorted by name.
func (s *State) OnCluster(r Ref) []*Extension {
	cluster := strings.ToLower(r.ext().ClusterID())
	var out []*Extension
	for _, e := range s.Extensions {
		if strings.ToLower(e.ClusterID()) == cluster {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b *Extension) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Store is the JSON state file. It holds no secret values, but it is
// written 0600 anyway: settings may still be sensitive to someone.
type Store struct {
	Path string
}

// Lock takes an exclusive lock next to the state file, so two emulator
// runs do not overwrite each other's changes.
func (st Store) Lock() (unlock func(), err error) {
	if err := os.MkdirAll(filepath.Dir(st.Path), 0o700); err != nil {
		return nil, fmt.Errorf("state folder: %w", err)
	}
	f, err := os.OpenFile(st.Path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("state lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("state lock: %w", err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// Load reads the state; a missing file is an empty state.
func (st Store) Load() (*State, error) {
	data, err := os.ReadFile(st.Path)
	if errors.Is(err, os.ErrNotExist) {
		return &State{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	var s State
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("state %s: %w", st.Path, err)
	}
	return &s, nil
}

// Save writes the state atomically.
func (st Store) Save(s *State) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	tmp := st.Path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	if err := os.Rename(tmp, st.Path); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	return nil
}
