package reliability_test

import (
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/virtstoraged-go/virtstoraged/gen/remote"
	"github.com/virtstoraged-go/virtstoraged/internal/reliability/daemonclient"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
	"github.com/virtstoraged-go/virtstoraged/xdr"
)

// TestHostileArgumentValues sends list bounds and stream offsets at the edges
// of their types: each call gets an answer (a result or a libvirt error, never
// a dropped connection) and the daemon's memory stays put — a bound used as an
// allocation size would show.
func TestHostileArgumentValues(t *testing.T) {
	tg := startProcess(t, testkit.DaemonOptions{})
	c := dial(t, tg.rw, 0)
	pool := createPool(t, c, "args", shortDir(t, "vsa"))
	vol := createVol(t, c, pool, "a.img", 1<<20)
	before := readProc(t, tg.pid)
	edges := []int32{1<<31 - 1, -1, -(1 << 31), 16384, 16385, 0}
	tests := []struct {
		name    string
		give    func(n int32) error
		wantErr func(n int32) bool // nil: either outcome is fine
	}{
		{name: "ConnectListStoragePools", give: func(n int32) error {
			_, err := c.ConnectListStoragePools(ctxFor(t), &remote.ConnectListStoragePoolsArgs{Maxnames: n})
			return err
		}, wantErr: func(n int32) bool { return n < 0 || n > 16384 }},
		{name: "ConnectListDefinedStoragePools", give: func(n int32) error {
			_, err := c.ConnectListDefinedStoragePools(ctxFor(t), &remote.ConnectListDefinedStoragePoolsArgs{Maxnames: n})
			return err
		}, wantErr: func(n int32) bool { return n < 0 || n > 16384 }},
		{name: "StoragePoolListVolumes", give: func(n int32) error {
			_, err := c.StoragePoolListVolumes(ctxFor(t), &remote.StoragePoolListVolumesArgs{Pool: pool, Maxnames: n})
			return err
		}, wantErr: func(n int32) bool { return n < 0 || n > 16384 }},
		{name: "StoragePoolListAllVolumes", give: func(n int32) error {
			_, err := c.StoragePoolListAllVolumes(ctxFor(t), &remote.StoragePoolListAllVolumesArgs{Pool: pool, NeedResults: n})
			return err
		}},
		{name: "ConnectListAllStoragePools", give: func(n int32) error {
			_, err := c.ConnectListAllStoragePools(ctxFor(t), &remote.ConnectListAllStoragePoolsArgs{NeedResults: n})
			return err
		}},
		{name: "StorageVolDownload", give: func(n int32) error {
			st, err := c.StorageVolDownload(ctxFor(t), &remote.StorageVolDownloadArgs{Vol: vol, Offset: uint64(n), Length: 1 << 63})
			if err != nil {
				return err
			}
			for {
				if _, _, err := st.Recv(); err != nil {
					if errors.Is(err, io.EOF) {
						return st.Finish()
					}
					return err
				}
			}
		}},
		{name: "StorageVolUpload", give: func(n int32) error {
			st, err := c.StorageVolUpload(ctxFor(t), &remote.StorageVolUploadArgs{Vol: vol, Offset: uint64(n), Length: 1 << 63})
			if err != nil {
				return err
			}
			if err := st.Send([]byte("data")); err != nil {
				return err
			}
			return st.Finish()
		}, wantErr: func(n int32) bool { return n < 0 || n > 1<<20 }}, // offsets past the capacity are refused
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, n := range edges {
				err := tt.give(n)
				if err != nil && daemonclient.WireError(err) == nil {
					t.Fatalf("%d: no libvirt error reply: %v", n, err)
				}
				if tt.wantErr != nil && tt.wantErr(n) != (err != nil) {
					t.Errorf("%d: got %s, want error %v", n, daemonclient.ErrText(err), tt.wantErr(n))
				}
			}
		})
	}
	if after := readProc(t, tg.pid); after.rssKB-before.rssKB > 50<<10 {
		t.Errorf("daemon RSS grew from %d to %d KiB over edge-value calls", before.rssKB, after.rssKB)
	}
}

// TestBadLengthWordsCloseAtOnce: a length word above 33554436 or below 28
// makes the daemon hang up without waiting for a body (libvirt does).
func TestBadLengthWordsCloseAtOnce(t *testing.T) {
	tg := startProcess(t, testkit.DaemonOptions{})
	tests := []struct {
		name    string
		giveLen uint32
	}{
		{name: "one over the maximum", giveLen: xdr.MaxFrameLen + 1},
		{name: "all ones", giveLen: 0xffffffff},
		{name: "shorter than a header", giveLen: xdr.MinFrameLen - 1},
		{name: "zero", giveLen: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc := rawConn(t, tg.rw)
			defer nc.Close()
			var lw [4]byte
			binary.BigEndian.PutUint32(lw[:], tt.giveLen)
			if _, err := nc.Write(lw[:]); err != nil {
				t.Fatal(err)
			}
			_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, err := nc.Read(make([]byte, 64))
			if err == nil || !errors.Is(err, io.EOF) && !isReset(err) {
				t.Errorf("length word %d: read %d bytes, %v; want the connection closed", tt.giveLen, n, err)
			}
		})
	}
	// The daemon still serves.
	if _, err := dial(t, tg.rw, 0).ConnectGetLibVersion(ctxFor(t)); err != nil {
		t.Errorf("after bad length words: %v", err)
	}
}
