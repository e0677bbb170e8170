package testkit

import (
	"context"
	"sync"

	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

var _ ports.SecretStore = (*FakeSecrets)(nil)

// FakeSecrets is an in-memory secret driver for tests of the secret's
// consumers, with libvirt's lookup rules and errors. It keeps every value it
// handed out, so that a test can check the consumer zeroed it after use.
type FakeSecrets struct {
	mu      sync.Mutex
	secrets []fakeSecret
	handed  [][]byte
	// Err, when set, is what every call returns (the secret driver down).
	Err error
}

type fakeSecret struct {
	domain.Secret
	value []byte
}

// Add defines a secret with its value (nil: none set).
func (f *FakeSecrets) Add(uuid domain.UUID, usage domain.SecretUsageType, usageID string, value []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.secrets = append(f.secrets, fakeSecret{Secret: domain.Secret{UUID: uuid, UsageType: usage, UsageID: usageID}, value: value})
}

func (f *FakeSecrets) find(ref domain.SecretRef, usage domain.SecretUsageType) (fakeSecret, error) {
	if f.Err != nil {
		return fakeSecret{}, f.Err
	}
	for _, s := range f.secrets {
		if (ref.ByUUID && s.UUID == ref.UUID) || (!ref.ByUUID && s.UsageType == usage && s.UsageID == ref.Usage) {
			return s, nil
		}
	}
	return fakeSecret{}, domain.ErrNoSecret(ref)
}

// LookupSecret finds a secret as the secret driver does.
func (f *FakeSecrets) LookupSecret(_ context.Context, ref domain.SecretRef, usage domain.SecretUsageType) (domain.Secret, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, err := f.find(ref, usage)
	return s.Secret, err
}

// SecretValue returns a copy of the value, and remembers the copy.
func (f *FakeSecrets) SecretValue(_ context.Context, ref domain.SecretRef, usage domain.SecretUsageType) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, err := f.find(ref, usage)
	if err != nil {
		return nil, err
	}
	if s.UsageType != usage {
		return nil, domain.ErrSecretUsage(s.Secret, usage)
	}
	if s.value == nil {
		return nil, &domain.Error{Kind: domain.KindNoSecret, Domain: domain.FromSecret,
			Detail: "secret '" + s.UUID.String() + "' does not have a value"}
	}
	v := append([]byte(nil), s.value...)
	f.handed = append(f.handed, v)
	return v, nil
}

// AllZeroed reports whether every value handed out has been zeroed by its
// consumer, and how many there were.
func (f *FakeSecrets) AllZeroed() (bool, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, v := range f.handed {
		for _, b := range v {
			if b != 0 {
				return false, len(f.handed)
			}
		}
	}
	return true, len(f.handed)
}
