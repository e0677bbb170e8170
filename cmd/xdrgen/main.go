// Command xdrgen generates Go from one of our XDR protocol files (xdr/*.x): types with
// explicit Encode/Decode methods and, for a file that defines a program, the procedure
// constants, dispatch table, Server interface, Dispatch function and typed Client.
//
//	go run ./cmd/xdrgen -in xdr/remote.x -out gen/remote/remote.gen.go -pkg remote -import github.com/virtstoraged-go/virtstoraged/xdr/rpcconn
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/virtstoraged-go/virtstoraged/xdr/xdrlang"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "xdrgen:", err)
		os.Exit(1)
	}
}

func run(argv []string) error {
	fs := flag.NewFlagSet("xdrgen", flag.ContinueOnError)
	in := fs.String("in", "", "input .x file")
	out := fs.String("out", "", "output .go file")
	pkg := fs.String("pkg", "", "Go package name of the output")
	imp := fs.String("import", "", "import path of xdr/rpcconn; emits a typed Client when set")
	src := fs.String("source", "", "name of the input in the generated header (default xdr/<base of -in>)")
	if err := fs.Parse(argv); err != nil {
		return err
	}
	if *in == "" || *out == "" || *pkg == "" || fs.NArg() != 0 {
		return fmt.Errorf("usage: xdrgen -in FILE.x -out FILE.go -pkg NAME [-import RPCCONN]")
	}
	text, err := os.ReadFile(*in)
	if err != nil {
		return err
	}
	if *src == "" {
		// The header names the file relative to the repository, whatever the cwd
		// (go generate runs in xdr/), so output does not depend on where we ran.
		*src = "xdr/" + filepath.Base(*in)
	}
	f, err := xdrlang.Parse(*in, string(text))
	if err != nil {
		return err
	}
	code, err := xdrlang.Emit(f, xdrlang.Options{Source: *src, Package: *pkg, RPCConnImport: *imp})
	if err != nil {
		return err
	}
	if old, err := os.ReadFile(*out); err == nil && bytes.Equal(old, code) {
		return nil // keep the mtime, so make does not rebuild needlessly
	}
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return err
	}
	return os.WriteFile(*out, code, 0o644)
}
