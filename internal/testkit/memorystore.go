package testkit

import (
	"slices"
	"sync"

	"github.com/virtstoraged-go/virtstoraged/ports"
)

var _ ports.StateStore = (*MemoryStore)(nil)

// MemoryStore is an in-memory ports.StateStore.
type MemoryStore struct {
	mu        sync.Mutex
	configs   map[string]string
	autostart map[string]bool
	status    map[string]string
	// Err, when set, is returned by every write.
	Err error
}

// NewMemoryStore returns an empty store.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{configs: map[string]string{}, autostart: map[string]bool{}, status: map[string]string{}}
}

// LoadConfigs returns the configs sorted by name, with their autostart flag.
func (m *MemoryStore) LoadConfigs() ([]ports.StoredPool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]ports.StoredPool, 0, len(m.configs))
	for n, x := range m.configs {
		out = append(out, ports.StoredPool{Name: n, XML: x, Autostart: m.autostart[n]})
	}
	slices.SortFunc(out, func(a, b ports.StoredPool) int { return compare(a.Name, b.Name) })
	return out, nil
}

// SaveConfig stores a config.
func (m *MemoryStore) SaveConfig(name, xml string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Err != nil {
		return m.Err
	}
	m.configs[name] = xml
	return nil
}

// DeleteConfig removes a config.
func (m *MemoryStore) DeleteConfig(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Err != nil {
		return m.Err
	}
	delete(m.configs, name)
	return nil
}

// SetAutostart sets or clears the autostart link.
func (m *MemoryStore) SetAutostart(name string, on bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Err != nil {
		return m.Err
	}
	if on {
		m.autostart[name] = true
	} else {
		delete(m.autostart, name)
	}
	return nil
}

// LoadStatus returns the status files sorted by name.
func (m *MemoryStore) LoadStatus() ([]ports.StoredPool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]ports.StoredPool, 0, len(m.status))
	for n, x := range m.status {
		out = append(out, ports.StoredPool{Name: n, XML: x})
	}
	slices.SortFunc(out, func(a, b ports.StoredPool) int { return compare(a.Name, b.Name) })
	return out, nil
}

// SaveStatus stores a status file.
func (m *MemoryStore) SaveStatus(name, xml string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Err != nil {
		return m.Err
	}
	m.status[name] = xml
	return nil
}

// DeleteStatus removes a status file; a missing one is no error.
func (m *MemoryStore) DeleteStatus(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.status, name)
	return nil
}

// Config returns a stored config.
func (m *MemoryStore) Config(name string) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	x, ok := m.configs[name]
	return x, ok
}

// Status returns a stored status file.
func (m *MemoryStore) Status(name string) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	x, ok := m.status[name]
	return x, ok
}

// Autostart reports whether the autostart link exists.
func (m *MemoryStore) Autostart(name string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.autostart[name]
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
