// Package relaxng validates pool and volume XML against libvirt's RelaxNG
// schemas for the VALIDATE flags (VIR_STORAGE_POOL_DEFINE_VALIDATE,
// VIR_STORAGE_VOL_CREATE_VALIDATE), with libvirt's error code and text.
//
// libvirt validates with libxml2 and passes libxml2's messages on to the
// client ("Invalid sequence in interleave", "Element pool failed to validate
// content"). Which messages come, and in which order, follows from libxml2's
// algorithm and the schema's exact shape, so the texts can only be had from
// libxml2 itself run on libvirt's own schemas: this package runs xmllint
// (Debian's libxml2-utils, the same libxml2) through ports.CommandRunner on
// copies of libvirt 9.0's schemas embedded in the binary. No maintained
// pure-Go RelaxNG validator gives libxml2's texts.
package relaxng

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// Schema names one of libvirt's schema files.
type Schema string

// The schemas the storage driver validates against.
const (
	Pool Schema = "storagepool.rng"
	Vol  Schema = "storagevol.rng"
)

// LibvirtSchemaDir is where libvirt installs its schemas; its messages name
// the schema by this path, and so do ours, wherever our copy lives.
const LibvirtSchemaDir = "/usr/share/libvirt/schemas"

// Program is the validator run, found through PATH.
const Program = "xmllint"

// schemas holds libvirt 9.0's storage schemas with the files they include
// (LGPL-2.1-or-later, see schemas/README.md).
//
//go:embed schemas/*.rng
var schemas embed.FS

// Dir is the directory the embedded schemas are written to for xmllint,
// which resolves a schema's <include href> next to the schema file.
type Dir string

// Validator checks documents against the embedded schemas. The schema files
// are written to its directory at the first validation and removed by Close.
type Validator struct {
	runner  ports.CommandRunner
	dir     string
	program string

	mu        sync.Mutex
	installed bool
}

// New returns a Validator that runs xmllint through runner with the schemas
// written to dir.
func New(runner ports.CommandRunner, dir Dir) *Validator {
	return &Validator{runner: runner, dir: string(dir), program: Program}
}

// WithProgram returns a copy of v that runs program instead of xmllint, so
// that tests can stand for a host without it.
func (v *Validator) WithProgram(program string) *Validator {
	return &Validator{runner: v.runner, dir: v.dir, program: program}
}

// Validate checks doc against schema. A document the schema refuses gives
// libvirt's VIR_ERR_XML_INVALID_SCHEMA error with libxml2's messages, one a
// line, exactly as virXMLValidatorValidate reports them.
func (v *Validator) Validate(ctx context.Context, schema Schema, doc string) error {
	libvirtPath := LibvirtSchemaDir + "/" + string(schema)
	if err := v.install(); err != nil {
		return domain.Errorf(domain.KindInternal, "cannot validate against %s: %v", libvirtPath, err)
	}
	argv := Argv(v.program, filepath.Join(v.dir, string(schema)))
	_, err := v.runner.Run(ctx, ports.Command{Path: argv[0], Args: argv[1:], Stdin: []byte(doc)})
	if err == nil {
		return nil
	}
	if errors.Is(err, ports.ErrCommandNotFound) {
		return domain.Errorf(domain.KindOperationUnsupported,
			"cannot validate against %s: %s (Debian package libxml2-utils) is not installed", libvirtPath, v.program)
	}
	var xe *ports.ExitError
	if errors.As(err, &xe) && xe.Code == exitInvalid {
		return SchemaError(libvirtPath, Messages(xe.Stderr))
	}
	if ctx.Err() != nil {
		return domain.Errorf(domain.KindOperationFailed, "validation against %s interrupted: %v", libvirtPath, ctx.Err())
	}
	return domain.Errorf(domain.KindInternal, "cannot validate against %s: %v", libvirtPath, err)
}

// exitInvalid is xmllint's status for a document that fails validation
// (XMLLINT_ERR_VALID); others mean it could not get that far.
const exitInvalid = 3

// Argv is the xmllint command line validating standard input against the
// schema file at path. --nonet keeps the parser off the network, as libvirt's
// XML_PARSE_NONET does.
func Argv(program, path string) []string {
	return []string{program, "--noout", "--nonet", "--relaxng", path, "-"}
}

// validityMark precedes each of libxml2's RelaxNG messages in xmllint's
// report ("-:1: element pool: Relax-NG validity error : ..."); libvirt
// collects the messages alone.
const validityMark = "Relax-NG validity error : "

// Messages extracts libxml2's RelaxNG messages from xmllint's standard error,
// in order. A line without the mark continues the message before it (a value
// quoted in a message may hold a newline); xmllint's own verdict line goes.
func Messages(stderr string) []string {
	var msgs []string
	for _, line := range strings.Split(strings.TrimRight(stderr, "\n"), "\n") {
		if i := strings.Index(line, validityMark); i >= 0 {
			msgs = append(msgs, line[i+len(validityMark):])
			continue
		}
		if line == "- fails to validate" || line == "- validates" {
			continue
		}
		if len(msgs) > 0 {
			msgs[len(msgs)-1] += "\n" + line
		}
	}
	return msgs
}

// SchemaError is libvirt's VIR_ERR_XML_INVALID_SCHEMA error for a document
// schemaPath refuses: virXMLValidatorValidate's "Unable to validate doc
// against" line followed by libxml2's messages, each ending in a newline, in
// the XML error domain.
func SchemaError(schemaPath string, msgs []string) *domain.Error {
	var b strings.Builder
	b.WriteString("XML document failed to validate against schema: Unable to validate doc against ")
	b.WriteString(schemaPath)
	b.WriteString("\n")
	for _, m := range msgs {
		b.WriteString(m)
		b.WriteString("\n")
	}
	return &domain.Error{Kind: domain.KindXMLInvalidSchema, Domain: domain.FromXML, Detail: b.String()}
}

// install writes the embedded schemas to the directory, once; a failure is
// retried at the next validation.
func (v *Validator) install() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.installed {
		return nil
	}
	if err := os.MkdirAll(v.dir, 0o755); err != nil {
		return fmt.Errorf("relaxng: %w", err)
	}
	entries, err := schemas.ReadDir("schemas")
	if err != nil {
		return fmt.Errorf("relaxng: %w", err)
	}
	for _, e := range entries {
		data, err := schemas.ReadFile("schemas/" + e.Name())
		if err != nil {
			return fmt.Errorf("relaxng: %w", err)
		}
		if err := writeIfChanged(v.dir, e.Name(), data); err != nil {
			return err
		}
	}
	v.installed = true
	return nil
}

// writeIfChanged replaces dir/name with data through a rename, so that an
// xmllint running meanwhile never reads half a schema; a file already equal
// to data (left by an earlier run of the daemon) is kept.
func writeIfChanged(dir, name string, data []byte) error {
	path := filepath.Join(dir, name)
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return nil
	}
	f, err := os.CreateTemp(dir, "."+name+".*")
	if err != nil {
		return fmt.Errorf("relaxng: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("relaxng: write %s: %w", path, err)
	}
	return nil
}

// Close removes the schema files and their directory, if they were written.
func (v *Validator) Close() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.installed {
		return nil
	}
	v.installed = false
	if err := os.RemoveAll(v.dir); err != nil {
		return fmt.Errorf("relaxng: %w", err)
	}
	return nil
}
