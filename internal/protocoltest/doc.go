// Package protocoltest holds the wire-conformance tests of the generated protocol packages
// (gen/virnet, gen/remote, gen/admin, gen/keepalive) against libvirt 9.0 as measured in
// shared/docs/protocol.md: byte-exact golden frames, frames rebuilt from the recorded
// traces, a field-by-field cross-check with github.com/digitalocean/go-libvirt's own types,
// the dispatch table (read-only, priority, streams, API names) and fuzz targets.
//
// The package has no non-test code; it lives apart from gen/ because gen/ is regenerated
// wholesale and must stay free of hand-written files.
package protocoltest
