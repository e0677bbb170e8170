//go:build wireinject

package main

import (
	"github.com/google/wire"

	"github.com/virtstoraged-go/virtstoraged/adapters/lib/relaxng"
	"github.com/virtstoraged-go/virtstoraged/adapters/osexec"
	"github.com/virtstoraged-go/virtstoraged/adapters/rpc"
	"github.com/virtstoraged-go/virtstoraged/adapters/secretclient"
	"github.com/virtstoraged-go/virtstoraged/adapters/statefile"
	"github.com/virtstoraged-go/virtstoraged/adapters/xmldef"
	"github.com/virtstoraged-go/virtstoraged/domain/service"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// newApp assembles the daemon from its settings. `make generate` turns this into
// wire_gen.go.
func newApp(s *settings) (*app, func(), error) {
	wire.Build(
		provideLogger,
		provideStorageLog,
		provideRunner,
		wire.Bind(new(ports.CommandRunner), new(*osexec.Runner)),
		provideSecretStore,
		wire.Bind(new(ports.SecretStore), new(*secretclient.Client)),
		provideKeys,
		provideBackends,
		provideValidator,
		wire.Bind(new(xmldef.Validator), new(*relaxng.Validator)),
		xmldef.NewValidating,
		wire.Bind(new(ports.XMLCodec), new(*xmldef.Codec)),
		provideStore,
		wire.Bind(new(ports.StateStore), new(*statefile.Store)),
		provideEventHub,
		wire.Bind(new(ports.EventSink), new(*rpc.EventHub)),
		provideService,
		wire.Bind(new(ports.StorageAPI), new(*service.Service)),
		providePolkit,
		wire.Bind(new(ports.StatusSource), new(*service.Service)),
		provideMetrics,
		provideRPCConfig,
		provideServer,
		wire.Struct(new(app), "service", "server", "metrics"),
	)
	return nil, nil, nil
}
