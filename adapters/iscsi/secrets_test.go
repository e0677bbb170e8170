package iscsi_test

import (
	"context"
	"testing"

	"go.uber.org/mock/gomock"

	"github.com/virtstoraged-go/virtstoraged/adapters/iscsi"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/ports/mocks"
)

// The CHAP password is asked of the secret driver as an iscsi secret, by
// UUID or by usage, whichever the pool's <auth> names.
func TestStoreSecrets(t *testing.T) {
	const id = "2a8e6b3c-4f1d-4e2a-9b7c-0d1e2f3a4b5c"
	u, err := domain.ParseUUID(id)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		give    domain.PoolAuth
		wantRef domain.SecretRef
	}{
		{name: "by usage", give: domain.PoolAuth{Type: "chap", Username: "u", SecretUsage: "libvirtiscsi"}, wantRef: domain.SecretByUsage("libvirtiscsi")},
		{name: "by uuid", give: domain.PoolAuth{Type: "chap", Username: "u", SecretUUID: id}, wantRef: domain.SecretByUUID(u)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := mocks.NewMockSecretStore(gomock.NewController(t))
			store.EXPECT().SecretValue(gomock.Any(), tt.wantRef, domain.SecretUsageISCSI).Return([]byte("pa55word"), nil)
			got, err := iscsi.StoreSecrets{Store: store}.ISCSISecret(context.Background(), tt.give)
			if err != nil || string(got) != "pa55word" {
				t.Fatalf("got %q, %v", got, err)
			}
		})
	}
	t.Run("bad uuid", func(t *testing.T) {
		store := mocks.NewMockSecretStore(gomock.NewController(t))
		_, err := iscsi.StoreSecrets{Store: store}.ISCSISecret(context.Background(), domain.PoolAuth{Type: "chap", SecretUUID: "nope"})
		if err == nil {
			t.Fatal("a malformed uuid was looked up")
		}
	})
}
