package rpc_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"go.uber.org/mock/gomock"

	"github.com/virtstoraged-go/virtstoraged/adapters/rpc"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/gen/remote"
	"github.com/virtstoraged-go/virtstoraged/gen/virnet"
	"github.com/virtstoraged-go/virtstoraged/ports/mocks"
)

// TestProcedureMapping checks, procedure by procedure, that wire arguments reach
// the port in domain terms and results come back on the wire.
func TestProcedureMapping(t *testing.T) {
	t.Parallel()
	pool := domain.PoolHandle{Name: "p", UUID: domain.UUID{1, 2, 3, 15: 9}}
	wpool := remote.StoragePool{Name: "p", UUID: remote.UUID(pool.UUID)}
	vol := domain.VolHandle{Pool: "p", Name: "v", Key: "/k/v"}
	wvol := remote.StorageVol{Pool: "p", Name: "v", Key: "/k/v"}
	anyArg := gomock.Any()
	boom := domain.Errorf(domain.KindOperationInvalid, "storage pool 'p' is not active")

	tests := []struct {
		name   string
		expect func(m *mocks.MockStorageAPI)
		call   func(ctx context.Context, c *remote.Client) (any, error)
		want   any
	}{
		{"NUM_OF_STORAGE_POOLS", func(m *mocks.MockStorageAPI) { m.EXPECT().NumOfPools(anyArg, true).Return(4, nil) },
			func(ctx context.Context, c *remote.Client) (any, error) { return c.ConnectNumOfStoragePools(ctx) },
			&remote.ConnectNumOfStoragePoolsRet{Num: 4}},
		{"NUM_OF_DEFINED_STORAGE_POOLS", func(m *mocks.MockStorageAPI) { m.EXPECT().NumOfPools(anyArg, false).Return(2, nil) },
			func(ctx context.Context, c *remote.Client) (any, error) {
				return c.ConnectNumOfDefinedStoragePools(ctx)
			},
			&remote.ConnectNumOfDefinedStoragePoolsRet{Num: 2}},
		{"LIST_DEFINED_STORAGE_POOLS", func(m *mocks.MockStorageAPI) {
			m.EXPECT().ListPoolNames(anyArg, false, 5).Return([]string{"a"}, nil)
		}, func(ctx context.Context, c *remote.Client) (any, error) {
			return c.ConnectListDefinedStoragePools(ctx, &remote.ConnectListDefinedStoragePoolsArgs{Maxnames: 5})
		}, &remote.ConnectListDefinedStoragePoolsRet{Names: []string{"a"}}},
		{"FIND_STORAGE_POOL_SOURCES", func(m *mocks.MockStorageAPI) {
			m.EXPECT().FindPoolSources(anyArg, "logical", "<source/>", uint32(0)).Return("<sources/>", nil)
		}, func(ctx context.Context, c *remote.Client) (any, error) {
			return c.ConnectFindStoragePoolSources(ctx, &remote.ConnectFindStoragePoolSourcesArgs{Type: "logical", SrcSpec: remote.OptString{"<source/>"}})
		}, &remote.ConnectFindStoragePoolSourcesRet{XML: "<sources/>"}},
		{"POOL_CREATE_XML", func(m *mocks.MockStorageAPI) {
			m.EXPECT().PoolCreateXML(anyArg, "<pool/>", uint32(1)).Return(pool, nil)
		},
			func(ctx context.Context, c *remote.Client) (any, error) {
				return c.StoragePoolCreateXML(ctx, &remote.StoragePoolCreateXMLArgs{XML: "<pool/>", Flags: 1})
			}, &remote.StoragePoolCreateXMLRet{Pool: wpool}},
		{"POOL_DEFINE_XML", func(m *mocks.MockStorageAPI) {
			m.EXPECT().PoolDefineXML(anyArg, "<pool/>", uint32(1)).Return(pool, nil)
		},
			func(ctx context.Context, c *remote.Client) (any, error) {
				return c.StoragePoolDefineXML(ctx, &remote.StoragePoolDefineXMLArgs{XML: "<pool/>", Flags: 1})
			}, &remote.StoragePoolDefineXMLRet{Pool: wpool}},
		{"POOL_CREATE", func(m *mocks.MockStorageAPI) { m.EXPECT().PoolCreate(anyArg, pool, uint32(4)).Return(nil) },
			func(ctx context.Context, c *remote.Client) (any, error) {
				return nil, c.StoragePoolCreate(ctx, &remote.StoragePoolCreateArgs{Pool: wpool, Flags: 4})
			}, nil},
		{"POOL_BUILD", func(m *mocks.MockStorageAPI) { m.EXPECT().PoolBuild(anyArg, pool, uint32(8)).Return(nil) },
			func(ctx context.Context, c *remote.Client) (any, error) {
				return nil, c.StoragePoolBuild(ctx, &remote.StoragePoolBuildArgs{Pool: wpool, Flags: 8})
			}, nil},
		{"POOL_DESTROY", func(m *mocks.MockStorageAPI) { m.EXPECT().PoolDestroy(anyArg, pool).Return(nil) },
			func(ctx context.Context, c *remote.Client) (any, error) {
				return nil, c.StoragePoolDestroy(ctx, &remote.StoragePoolDestroyArgs{Pool: wpool})
			}, nil},
		{"POOL_DELETE", func(m *mocks.MockStorageAPI) { m.EXPECT().PoolDelete(anyArg, pool, uint32(1)).Return(nil) },
			func(ctx context.Context, c *remote.Client) (any, error) {
				return nil, c.StoragePoolDelete(ctx, &remote.StoragePoolDeleteArgs{Pool: wpool, Flags: 1})
			}, nil},
		{"POOL_UNDEFINE", func(m *mocks.MockStorageAPI) { m.EXPECT().PoolUndefine(anyArg, pool).Return(nil) },
			func(ctx context.Context, c *remote.Client) (any, error) {
				return nil, c.StoragePoolUndefine(ctx, &remote.StoragePoolUndefineArgs{Pool: wpool})
			}, nil},
		{"POOL_REFRESH", func(m *mocks.MockStorageAPI) { m.EXPECT().PoolRefresh(anyArg, pool, uint32(0)).Return(nil) },
			func(ctx context.Context, c *remote.Client) (any, error) {
				return nil, c.StoragePoolRefresh(ctx, &remote.StoragePoolRefreshArgs{Pool: wpool})
			}, nil},
		{"POOL_LOOKUP_BY_VOLUME", func(m *mocks.MockStorageAPI) { m.EXPECT().PoolLookupByVolume(anyArg, vol).Return(pool, nil) },
			func(ctx context.Context, c *remote.Client) (any, error) {
				return c.StoragePoolLookupByVolume(ctx, &remote.StoragePoolLookupByVolumeArgs{Vol: wvol})
			}, &remote.StoragePoolLookupByVolumeRet{Pool: wpool}},
		{"POOL_LOOKUP_BY_TARGET_PATH", func(m *mocks.MockStorageAPI) { m.EXPECT().PoolLookupByTargetPath(anyArg, "/t").Return(pool, nil) },
			func(ctx context.Context, c *remote.Client) (any, error) {
				return c.StoragePoolLookupByTargetPath(ctx, &remote.StoragePoolLookupByTargetPathArgs{Path: "/t"})
			}, &remote.StoragePoolLookupByTargetPathRet{Pool: wpool}},
		{"POOL_GET_XML_DESC", func(m *mocks.MockStorageAPI) {
			m.EXPECT().PoolGetXMLDesc(anyArg, pool, uint32(1)).Return("<pool/>", nil)
		},
			func(ctx context.Context, c *remote.Client) (any, error) {
				return c.StoragePoolGetXMLDesc(ctx, &remote.StoragePoolGetXMLDescArgs{Pool: wpool, Flags: 1})
			}, &remote.StoragePoolGetXMLDescRet{XML: "<pool/>"}},
		{"POOL_IS_PERSISTENT", func(m *mocks.MockStorageAPI) { m.EXPECT().PoolIsPersistent(anyArg, pool).Return(true, nil) },
			func(ctx context.Context, c *remote.Client) (any, error) {
				return c.StoragePoolIsPersistent(ctx, &remote.StoragePoolIsPersistentArgs{Pool: wpool})
			}, &remote.StoragePoolIsPersistentRet{Persistent: 1}},
		{"POOL_IS_ACTIVE", func(m *mocks.MockStorageAPI) { m.EXPECT().PoolIsActive(anyArg, pool).Return(false, nil) },
			func(ctx context.Context, c *remote.Client) (any, error) {
				return c.StoragePoolIsActive(ctx, &remote.StoragePoolIsActiveArgs{Pool: wpool})
			}, &remote.StoragePoolIsActiveRet{Active: 0}},
		{"POOL_NUM_OF_VOLUMES", func(m *mocks.MockStorageAPI) { m.EXPECT().PoolNumOfVolumes(anyArg, pool).Return(7, nil) },
			func(ctx context.Context, c *remote.Client) (any, error) {
				return c.StoragePoolNumOfVolumes(ctx, &remote.StoragePoolNumOfVolumesArgs{Pool: wpool})
			}, &remote.StoragePoolNumOfVolumesRet{Num: 7}},
		{"POOL_LIST_VOLUMES", func(m *mocks.MockStorageAPI) { m.EXPECT().PoolListVolumes(anyArg, pool, 3).Return([]string{"v"}, nil) },
			func(ctx context.Context, c *remote.Client) (any, error) {
				return c.StoragePoolListVolumes(ctx, &remote.StoragePoolListVolumesArgs{Pool: wpool, Maxnames: 3})
			}, &remote.StoragePoolListVolumesRet{Names: []string{"v"}}},
		{"VOL_LOOKUP_BY_KEY", func(m *mocks.MockStorageAPI) { m.EXPECT().VolLookupByKey(anyArg, "/k/v").Return(vol, nil) },
			func(ctx context.Context, c *remote.Client) (any, error) {
				return c.StorageVolLookupByKey(ctx, &remote.StorageVolLookupByKeyArgs{Key: "/k/v"})
			}, &remote.StorageVolLookupByKeyRet{Vol: wvol}},
		{"VOL_LOOKUP_BY_PATH", func(m *mocks.MockStorageAPI) { m.EXPECT().VolLookupByPath(anyArg, "/k/v").Return(vol, nil) },
			func(ctx context.Context, c *remote.Client) (any, error) {
				return c.StorageVolLookupByPath(ctx, &remote.StorageVolLookupByPathArgs{Path: "/k/v"})
			}, &remote.StorageVolLookupByPathRet{Vol: wvol}},
		{"VOL_CREATE_XML_FROM", func(m *mocks.MockStorageAPI) {
			m.EXPECT().VolCreateXMLFrom(anyArg, pool, "<volume/>", vol, uint32(2)).Return(vol, nil)
		}, func(ctx context.Context, c *remote.Client) (any, error) {
			return c.StorageVolCreateXMLFrom(ctx, &remote.StorageVolCreateXMLFromArgs{Pool: wpool, XML: "<volume/>", Clonevol: wvol, Flags: 2})
		}, &remote.StorageVolCreateXMLFromRet{Vol: wvol}},
		{"VOL_GET_INFO", func(m *mocks.MockStorageAPI) {
			m.EXPECT().VolGetInfo(anyArg, vol, uint32(0)).Return(domain.VolInfo{Type: domain.VolBlock, Capacity: 10, Allocation: 5}, nil)
		}, func(ctx context.Context, c *remote.Client) (any, error) {
			return c.StorageVolGetInfo(ctx, &remote.StorageVolGetInfoArgs{Vol: wvol})
		}, &remote.StorageVolGetInfoRet{Type: 1, Capacity: 10, Allocation: 5}},
		{"VOL_GET_INFO_FLAGS", func(m *mocks.MockStorageAPI) {
			m.EXPECT().VolGetInfo(anyArg, vol, uint32(1)).Return(domain.VolInfo{Type: domain.VolFile, Capacity: 10, Allocation: 9}, nil)
		}, func(ctx context.Context, c *remote.Client) (any, error) {
			return c.StorageVolGetInfoFlags(ctx, &remote.StorageVolGetInfoFlagsArgs{Vol: wvol, Flags: 1})
		}, &remote.StorageVolGetInfoFlagsRet{Type: 0, Capacity: 10, Allocation: 9}},
		{"VOL_GET_XML_DESC", func(m *mocks.MockStorageAPI) {
			m.EXPECT().VolGetXMLDesc(anyArg, vol, uint32(0)).Return("<volume/>", nil)
		},
			func(ctx context.Context, c *remote.Client) (any, error) {
				return c.StorageVolGetXMLDesc(ctx, &remote.StorageVolGetXMLDescArgs{Vol: wvol})
			}, &remote.StorageVolGetXMLDescRet{XML: "<volume/>"}},
		{"VOL_WIPE", func(m *mocks.MockStorageAPI) { m.EXPECT().VolWipe(anyArg, vol, domain.WipeZero, uint32(0)).Return(nil) },
			func(ctx context.Context, c *remote.Client) (any, error) {
				return nil, c.StorageVolWipe(ctx, &remote.StorageVolWipeArgs{Vol: wvol})
			}, nil},
		{"VOL_WIPE_PATTERN", func(m *mocks.MockStorageAPI) { m.EXPECT().VolWipe(anyArg, vol, domain.WipeDOD, uint32(0)).Return(nil) },
			func(ctx context.Context, c *remote.Client) (any, error) {
				return nil, c.StorageVolWipePattern(ctx, &remote.StorageVolWipePatternArgs{Vol: wvol, Algorithm: 2})
			}, nil},
		{"VOL_RESIZE", func(m *mocks.MockStorageAPI) { m.EXPECT().VolResize(anyArg, vol, uint64(1<<30), uint32(4)).Return(nil) },
			func(ctx context.Context, c *remote.Client) (any, error) {
				return nil, c.StorageVolResize(ctx, &remote.StorageVolResizeArgs{Vol: wvol, Capacity: 1 << 30, Flags: 4})
			}, nil},
		{"error passes through", func(m *mocks.MockStorageAPI) { m.EXPECT().PoolNumOfVolumes(anyArg, pool).Return(0, boom) },
			func(ctx context.Context, c *remote.Client) (any, error) {
				return c.StoragePoolNumOfVolumes(ctx, &remote.StoragePoolNumOfVolumesArgs{Pool: wpool})
			}, boom},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctrl := gomock.NewController(t)
			m := mocks.NewMockStorageAPI(ctrl)
			tt.expect(m)
			path := serveMock(t, m)
			c := (&daemon{}).client(t, path, "storage:///system", 0)
			got, err := tt.call(ctx5(t), c)
			if want, ok := tt.want.(*domain.Error); ok {
				var e *virnet.Error
				if !errors.As(err, &e) || e.Code != want.Kind.Code() || optStr(e.Message) != want.Error() {
					t.Fatalf("err = %v, want %v", err, want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.want != nil && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// serveMock runs a server around a mocked port on a private rw socket.
func serveMock(t *testing.T, m *mocks.MockStorageAPI) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "rpcm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	srv, err := rpc.NewServer(rpc.Config{Limits: rpc.DefaultLimits(), Privileged: true}, m, nil, logrusEntry())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln, rpc.ListenRW)
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	return path
}
