package xdr

// The generated packages under gen/ come from the .x files here; `make generate` runs these.
//go:generate go run ../cmd/xdrgen -in virnet.x -out ../gen/virnet/virnet.gen.go -pkg virnet
//go:generate go run ../cmd/xdrgen -in keepalive.x -out ../gen/keepalive/keepalive.gen.go -pkg keepalive
//go:generate go run ../cmd/xdrgen -in remote.x -out ../gen/remote/remote.gen.go -pkg remote -import github.com/virtstoraged-go/virtstoraged/xdr/rpcconn
//go:generate go run ../cmd/xdrgen -in admin.x -out ../gen/admin/admin.gen.go -pkg admin -import github.com/virtstoraged-go/virtstoraged/xdr/rpcconn
