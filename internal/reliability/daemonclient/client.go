// Package daemonclient is the client side that the reliability tests and their
// load generator (internal/reliability/loadgen) have in common: opening a
// connection, the volumes and streams of their workloads, the way they print a
// libvirt error, and loadgen's report, which the tests parse.
//
// It is a package of its own, not test code, because loadgen is a program: it
// is built without the race detector, so it cannot import the tests' helpers.
package daemonclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/virtstoraged-go/virtstoraged/gen/remote"
	"github.com/virtstoraged-go/virtstoraged/gen/virnet"
	"github.com/virtstoraged-go/virtstoraged/xdr/rpcconn"
)

// Dial connects to the daemon socket sock and opens the connection with flags
// (1: read-only). ctx bounds the dial and the open, not the connection, which
// the caller closes through Conn.
func Dial(ctx context.Context, sock string, flags uint32) (*remote.Client, error) {
	conn, err := rpcconn.Dial(ctx, sock)
	if err != nil {
		return nil, err
	}
	c := remote.NewClient(conn)
	if err := c.ConnectOpen(ctx, &remote.ConnectOpenArgs{Flags: flags}); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("connect open: %w", err)
	}
	return c, nil
}

// WireError returns the libvirt error in err, or nil: an error the daemon sent,
// as opposed to one of the connection.
func WireError(err error) *virnet.Error {
	var e *virnet.Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// ErrText is a libvirt error's code, domain and message ("55/18 ..."), or err's
// text: the code and domain are what a failure report needs to tell a refusal
// from a fault.
func ErrText(err error) string {
	if e := WireError(err); e != nil && len(e.Message) > 0 {
		return fmt.Sprintf("%d/%d %s", e.Code, e.Domain, e.Message[0])
	}
	return fmt.Sprint(err)
}

// VolumeXML describes a raw volume of capacity bytes, allocated on demand.
func VolumeXML(name string, capacity int64) string {
	return fmt.Sprintf("<volume><name>%s</name><capacity>%d</capacity><allocation>0</allocation>"+
		"<target><format type='raw'/></target></volume>", name, capacity)
}

// CreateVolume creates the raw volume of VolumeXML in pool.
func CreateVolume(ctx context.Context, c *remote.Client, pool remote.StoragePool, name string, capacity int64) (remote.StorageVol, error) {
	ret, err := c.StorageVolCreateXML(ctx, &remote.StorageVolCreateXMLArgs{Pool: pool, XML: VolumeXML(name, capacity)})
	if err != nil {
		return remote.StorageVol{}, err
	}
	return ret.Vol, nil
}

// Upload writes payload to the start of vol through an upload stream.
func Upload(ctx context.Context, c *remote.Client, vol remote.StorageVol, payload []byte) error {
	up, err := c.StorageVolUpload(ctx, &remote.StorageVolUploadArgs{Vol: vol, Length: uint64(len(payload))})
	if err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	if err := up.Send(payload); err != nil {
		return fmt.Errorf("upload send: %w", err)
	}
	if err := up.Finish(); err != nil {
		return fmt.Errorf("upload finish: %w", err)
	}
	return nil
}

// Download reads len(want) bytes of vol back through a download stream; verify
// compares them with want, which is only sound when no other client wrote the
// volume since want was uploaded.
func Download(ctx context.Context, c *remote.Client, vol remote.StorageVol, want []byte, verify bool) error {
	down, err := c.StorageVolDownload(ctx, &remote.StorageVolDownloadArgs{Vol: vol, Length: uint64(len(want))})
	if err != nil {
		return fmt.Errorf("download: %w", err)
	}
	got, err := down.ReadAll()
	if err != nil {
		return err
	}
	if verify && !bytes.Equal(got, want) {
		return fmt.Errorf("downloaded %d bytes differ from the %d uploaded", len(got), len(want))
	}
	return nil
}

// RoundTrip uploads payload to vol and downloads it back, comparing the bytes
// when verify is set (see Download).
func RoundTrip(ctx context.Context, c *remote.Client, vol remote.StorageVol, payload []byte, verify bool) error {
	if err := Upload(ctx, c, vol, payload); err != nil {
		return err
	}
	return Download(ctx, c, vol, payload, verify)
}
