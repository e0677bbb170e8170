package rpc_test

import (
	"testing"

	"github.com/virtstoraged-go/virtstoraged/gen/admin"
	"github.com/virtstoraged-go/virtstoraged/xdr/rpcconn"
)

func adminClient(t testing.TB, d *daemon) *admin.AdminClient {
	t.Helper()
	c, err := rpcconn.Dial(ctx5(t), d.adm)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	a := admin.NewAdminClient(c)
	if err := a.ConnectOpen(ctx5(t), &admin.ConnectOpenArgs{}); err != nil {
		t.Fatal(err)
	}
	return a
}
