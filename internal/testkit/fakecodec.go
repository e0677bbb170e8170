package testkit

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

var _ ports.XMLCodec = FakeCodec{}

// FakeCodec is a trivial ports.XMLCodec for service tests: its "XML" is JSON of
// the domain types, so tests need not depend on adapters/xmldef. Build inputs with
// PoolXML and VolXML.
type FakeCodec struct{}

type poolDoc struct {
	Pool   *domain.PoolDef
	Stats  *domain.PoolStats `json:",omitempty"`
	Status bool              `json:",omitempty"`
}

type volDoc struct {
	Pool string `json:",omitempty"`
	Vol  *domain.VolDef
}

// PoolXML encodes a pool definition for FakeCodec.
func PoolXML(def *domain.PoolDef) string {
	b, _ := json.Marshal(poolDoc{Pool: def})
	return string(b)
}

// VolXML encodes a volume definition for FakeCodec.
func VolXML(def *domain.VolDef) string {
	b, _ := json.Marshal(volDoc{Vol: def})
	return string(b)
}

// DecodePool decodes what FakeCodec.FormatPool produced.
func DecodePool(s string) (*domain.PoolDef, *domain.PoolStats, error) {
	var d poolDoc
	if err := json.Unmarshal([]byte(s), &d); err != nil {
		return nil, nil, err
	}
	return d.Pool, d.Stats, nil
}

// DecodeVol decodes what FakeCodec.FormatVol produced.
func DecodeVol(s string) (*domain.VolDef, error) {
	var d volDoc
	if err := json.Unmarshal([]byte(s), &d); err != nil {
		return nil, err
	}
	return d.Vol, nil
}

func xmlErr(err error) error {
	return domain.Errorf(domain.KindXMLDetail, "(fake codec): %v", err)
}

// ParsePool decodes a pool document.
func (FakeCodec) ParsePool(xml string, flags uint32) (*domain.PoolDef, error) {
	d, _, err := DecodePool(xml)
	if err != nil {
		return nil, xmlErr(err)
	}
	if d == nil {
		return nil, domain.Errorf(domain.KindXMLError, "missing pool element")
	}
	if d.Target.Path == "" && (d.Type == domain.PoolDir || d.Type == domain.PoolFS || d.Type == domain.PoolNetFS) {
		return nil, domain.Errorf(domain.KindXMLError, "missing storage pool target path")
	}
	return d, nil
}

// ValidatePool accepts any document the fake decodes: it has no schema.
func (FakeCodec) ValidatePool(ctx context.Context, xml string) error {
	_, _, err := DecodePool(xml)
	if err != nil {
		return xmlErr(err)
	}
	return nil
}

// ValidateVol accepts any document the fake decodes.
func (FakeCodec) ValidateVol(ctx context.Context, xml string) error {
	if _, err := DecodeVol(xml); err != nil {
		return xmlErr(err)
	}
	return nil
}

// FormatPool encodes a pool with its figures.
func (FakeCodec) FormatPool(def *domain.PoolDef, stats *domain.PoolStats) (string, error) {
	b, err := json.Marshal(poolDoc{Pool: def, Stats: stats})
	return string(b), err
}

// ParseVol decodes a volume document.
func (FakeCodec) ParseVol(xml string, pool *domain.PoolDef, flags uint32) (*domain.VolDef, error) {
	d, err := DecodeVol(xml)
	if err != nil {
		return nil, xmlErr(err)
	}
	if d == nil {
		return nil, domain.Errorf(domain.KindXMLError, "missing volume element")
	}
	d.Key, d.Target.Path = "", ""
	if d.Capacity != 0 {
		d.HasCapacity = true
	}
	if !d.HasAllocation {
		d.Allocation = d.Capacity
	}
	return d, nil
}

// FormatVol encodes a volume.
func (FakeCodec) FormatVol(pool *domain.PoolDef, vol *domain.VolDef) (string, error) {
	b, err := json.Marshal(volDoc{Pool: pool.Name, Vol: vol})
	return string(b), err
}

// FormatPoolStatus encodes a status document.
func (FakeCodec) FormatPoolStatus(def *domain.PoolDef, stats *domain.PoolStats) (string, error) {
	b, err := json.Marshal(poolDoc{Pool: def, Stats: stats, Status: true})
	return string(b), err
}

// ParsePoolStatus decodes a status document.
func (c FakeCodec) ParsePoolStatus(xml string) (*domain.PoolDef, error) {
	return c.ParsePool(xml, 0)
}

// FormatPoolCapabilities lists the types.
func (FakeCodec) FormatPoolCapabilities(types []domain.PoolType) (string, error) {
	return "poolcaps:" + typeList(types), nil
}

// FormatCapabilities lists the types.
func (FakeCodec) FormatCapabilities(types []domain.PoolType) (string, error) {
	return "caps:" + typeList(types), nil
}

// FormatPoolSources encodes the sources.
func (FakeCodec) FormatPoolSources(t domain.PoolType, sources []domain.PoolSource) (string, error) {
	b, err := json.Marshal(sources)
	return string(b), err
}

// ParsePoolSource decodes a source; "" gives an empty one.
func (FakeCodec) ParsePoolSource(t domain.PoolType, xml string) (*domain.PoolSource, error) {
	src := &domain.PoolSource{}
	if xml == "" {
		return src, nil
	}
	if err := json.Unmarshal([]byte(xml), src); err != nil {
		return nil, xmlErr(err)
	}
	return src, nil
}

func typeList(types []domain.PoolType) string {
	names := make([]string, len(types))
	for i, t := range types {
		names[i] = t.String()
	}
	return strings.Join(names, ",")
}
