package iscsi_test

import (
	"context"
	"testing"

	"go.uber.org/mock/gomock"

	"github.com/virtstoraged-go/virtstoraged/adapters/iscsi"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/ports/mocks"
)

// The CHAP password is asked of the secret driver as an iscsi secret.
func TestStoreSecrets(t *testing.T) {
	store := mocks.NewMockSecretStore(gomock.NewController(t))
	store.EXPECT().SecretValue(gomock.Any(), domain.SecretByUsage("libvirtiscsi"), domain.SecretUsageISCSI).Return([]byte("pa55word"), nil)
	got, err := iscsi.StoreSecrets{Store: store}.ISCSISecret(context.Background(), domain.PoolAuth{Type: "chap", Username: "u", SecretUsage: "libvirtiscsi"})
	if err != nil || string(got) != "pa55word" {
		t.Fatalf("got %q, %v", got, err)
	}
}
