package rbd

import (
	"encoding/json"
	"fmt"
)

// Usage is what `rados df -p POOL` reports: the cluster's raw space and the
// pool's stored bytes, the three figures of libvirt's rbd pool.
type Usage struct {
	Capacity, Available, Allocation uint64
}

// ParseDf reads `rados df -p POOL --format json`. Cluster totals are in KiB
// there, as in rados_cluster_stat, and libvirt multiplies them by 1024.
func ParseDf(out []byte, pool string) (Usage, error) {
	var r struct {
		Pools []struct {
			Name      string `json:"name"`
			SizeBytes uint64 `json:"size_bytes"`
		} `json:"pools"`
		TotalSpace uint64 `json:"total_space"`
		TotalAvail uint64 `json:"total_avail"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		return Usage{}, fmt.Errorf("rbd: rados df output: %w", err)
	}
	u := Usage{Capacity: r.TotalSpace * 1024, Available: r.TotalAvail * 1024}
	for _, p := range r.Pools {
		if p.Name == pool {
			u.Allocation = p.SizeBytes
			return u, nil
		}
	}
	return Usage{}, fmt.Errorf("rbd: rados df output has no pool %q", pool)
}

// Image is one image of a listing: its name, id (unique in its pool and
// never reused) and size.
type Image struct {
	Name string
	ID   string
	Size uint64
}

// ParseList reads `rbd ls -l --format json`: the images, without the rows of
// their snapshots, in the listing's order.
func ParseList(out []byte) ([]Image, error) {
	var rows []struct {
		Image    string  `json:"image"`
		ID       string  `json:"id"`
		Size     uint64  `json:"size"`
		Snapshot *string `json:"snapshot"`
	}
	if err := json.Unmarshal(out, &rows); err != nil {
		return nil, fmt.Errorf("rbd: rbd ls output: %w", err)
	}
	imgs := make([]Image, 0, len(rows))
	for _, r := range rows {
		if r.Snapshot != nil {
			continue
		}
		imgs = append(imgs, Image{Name: r.Image, ID: r.ID, Size: r.Size})
	}
	return imgs, nil
}

// ParseDu reads `rbd du --format json`: the images (their head rows, with
// their provisioned size, in order) and each image's used bytes, its head
// and its snapshots together, the space the image holds in the cluster.
// (With fast-diff, du counts whole objects, as libvirt's own measure does.)
func ParseDu(out []byte) ([]Image, map[string]uint64, error) {
	var r struct {
		Images []struct {
			Name        string  `json:"name"`
			ID          string  `json:"id"`
			Snapshot    *string `json:"snapshot"`
			Provisioned uint64  `json:"provisioned_size"`
			Used        uint64  `json:"used_size"`
		} `json:"images"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		return nil, nil, fmt.Errorf("rbd: rbd du output: %w", err)
	}
	imgs := make([]Image, 0, len(r.Images))
	used := make(map[string]uint64, len(r.Images))
	for _, i := range r.Images {
		used[i.Name] += i.Used
		if i.Snapshot == nil {
			imgs = append(imgs, Image{Name: i.Name, ID: i.ID, Size: i.Provisioned})
		}
	}
	return imgs, used, nil
}

// Info is what `rbd info --format json` tells of an image.
type Info struct {
	Name        string   `json:"name"`
	ID          string   `json:"id"`
	Size        uint64   `json:"size"`
	ObjectSize  uint64   `json:"object_size"`
	Format      int      `json:"format"`
	Features    []string `json:"features"`
	StripeUnit  uint64   `json:"stripe_unit"`
	StripeCount uint64   `json:"stripe_count"`
}

// ParseInfo reads `rbd info --format json`.
func ParseInfo(out []byte) (Info, error) {
	var i Info
	if err := json.Unmarshal(out, &i); err != nil {
		return Info{}, fmt.Errorf("rbd: rbd info output: %w", err)
	}
	return i, nil
}

// Snap is one snapshot of `rbd snap ls`.
type Snap struct {
	Name      string
	Protected bool
}

// ParseSnaps reads `rbd snap ls --format json`, in its order (creation).
func ParseSnaps(out []byte) ([]Snap, error) {
	var rows []struct {
		Name      string `json:"name"`
		Protected string `json:"protected"`
	}
	if err := json.Unmarshal(out, &rows); err != nil {
		return nil, fmt.Errorf("rbd: rbd snap ls output: %w", err)
	}
	snaps := make([]Snap, len(rows))
	for i, r := range rows {
		snaps[i] = Snap{Name: r.Name, Protected: r.Protected == "true"}
	}
	return snaps, nil
}

// ParseDiffEmpty reports whether `rbd diff --format json` listed nothing.
func ParseDiffEmpty(out []byte) (bool, error) {
	var rows []json.RawMessage
	if err := json.Unmarshal(out, &rows); err != nil {
		return false, fmt.Errorf("rbd: rbd diff output: %w", err)
	}
	return len(rows) == 0, nil
}

// cloneFeatures are the image features `rbd clone --image-feature` takes;
// others a parent may show (data-pool, operations, migrating) are not set
// that way.
var cloneFeatures = map[string]bool{
	"layering": true, "striping": true, "exclusive-lock": true, "object-map": true,
	"fast-diff": true, "deep-flatten": true, "journaling": true,
}
