package domain_test

import (
	"testing"

	"github.com/virtstoraged-go/virtstoraged/domain"
)

// A pool's <auth> names its secret by UUID or by usage id, whichever it gives.
func TestPoolAuthRef(t *testing.T) {
	const id = "2a8e6b3c-4f1d-4e2a-9b7c-0d1e2f3a4b5c"
	u, err := domain.ParseUUID(id)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		give    domain.PoolAuth
		want    domain.SecretRef
		wantErr bool
	}{
		{name: "by usage", give: domain.PoolAuth{SecretUsage: "libvirtiscsi"}, want: domain.SecretByUsage("libvirtiscsi")},
		{name: "by uuid", give: domain.PoolAuth{SecretUUID: id}, want: domain.SecretByUUID(u)},
		{name: "bad uuid", give: domain.PoolAuth{SecretUUID: "nope"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.give.Ref()
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("Ref() = %v, %v; want %v (error %v)", got, err, tt.want, tt.wantErr)
			}
		})
	}
}
