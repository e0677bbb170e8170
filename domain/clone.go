package domain

import "slices"

// Clone returns a deep copy, so that a backend may fill or adjust it while other
// goroutines read the original.
func (d *PoolDef) Clone() *PoolDef {
	if d == nil {
		return nil
	}
	c := *d
	c.Source.Hosts = slices.Clone(d.Source.Hosts)
	c.Source.Devices = slices.Clone(d.Source.Devices)
	for i := range c.Source.Devices {
		c.Source.Devices[i].FreeExtents = slices.Clone(d.Source.Devices[i].FreeExtents)
	}
	if d.Source.Auth != nil {
		a := *d.Source.Auth
		c.Source.Auth = &a
	}
	if d.Source.Adapter != nil {
		a := *d.Source.Adapter
		if a.ParentAddr != nil {
			pa := *a.ParentAddr
			a.ParentAddr = &pa
		}
		c.Source.Adapter = &a
	}
	c.MountOpts = slices.Clone(d.MountOpts)
	c.RBDConfigOpts = slices.Clone(d.RBDConfigOpts)
	if d.Source.Auth != nil {
		a := *d.Source.Auth
		c.Source.Auth = &a
	}
	return &c
}

// Clone returns a deep copy of the volume definition.
func (d *VolDef) Clone() *VolDef {
	if d == nil {
		return nil
	}
	c := *d
	if d.Target.Timestamps != nil {
		ts := *d.Target.Timestamps
		c.Target.Timestamps = &ts
	}
	if d.Backing != nil {
		b := *d.Backing
		c.Backing = &b
	}
	c.Extents = slices.Clone(d.Extents)
	c.Target.Encryption.Secrets = slices.Clone(d.Target.Encryption.Secrets)
	return &c
}
