package rbd_test

import (
	"context"
	"testing"

	"go.uber.org/mock/gomock"

	"github.com/virtstoraged-go/virtstoraged/adapters/rbd"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/ports/mocks"
)

// The cephx key is asked of the secret driver as a ceph secret.
func TestStoreSecrets(t *testing.T) {
	store := mocks.NewMockSecretStore(gomock.NewController(t))
	store.EXPECT().SecretValue(gomock.Any(), domain.SecretByUsage("client.libvirt secret"), domain.SecretUsageCeph).Return([]byte("key"), nil)
	got, err := rbd.StoreSecrets{Store: store}.CephKey(context.Background(), domain.PoolAuth{Type: "ceph", Username: "libvirt", SecretUsage: "client.libvirt secret"})
	if err != nil || string(got) != "key" {
		t.Fatalf("got %q, %v", got, err)
	}
}
