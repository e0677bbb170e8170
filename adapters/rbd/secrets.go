package rbd

import (
	"context"

	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// StoreSecrets reads cephx keys from libvirt's secret driver through
// ports.SecretStore, as libvirt's rbd backend does (virSecretGetSecretString
// with usage type ceph): by UUID, the secret then being checked to be a ceph
// one, or by its ceph usage id.
type StoreSecrets struct {
	Store ports.SecretStore
}

var _ SecretLookup = StoreSecrets{}

// CephKey returns the raw key the auth names; the caller zeroes it.
func (s StoreSecrets) CephKey(ctx context.Context, auth domain.PoolAuth) ([]byte, error) {
	ref, err := auth.Ref()
	if err != nil {
		return nil, err
	}
	return s.Store.SecretValue(ctx, ref, domain.SecretUsageCeph)
}
