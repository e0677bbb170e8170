package iscsi

import (
	"context"

	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// StoreSecrets reads CHAP passwords from libvirt's secret driver through
// ports.SecretStore, as libvirt's virSecretGetSecretString does for an iscsi
// pool: by UUID (the secret must then be of usage type iscsi) or by its iscsi
// usage id.
type StoreSecrets struct {
	Store ports.SecretStore
}

var _ Secrets = StoreSecrets{}

// ISCSISecret returns the value of the secret auth names; the caller zeroes it.
func (s StoreSecrets) ISCSISecret(ctx context.Context, auth domain.PoolAuth) ([]byte, error) {
	ref, err := auth.Ref()
	if err != nil {
		return nil, err
	}
	return s.Store.SecretValue(ctx, ref, domain.SecretUsageISCSI)
}
