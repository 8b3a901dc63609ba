package controlplane

import (
	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
)

// ownWrites remembers, per Machine, what this controller last wrote and every version that
// write replaced. The cache learns of a write only when its watch event arrives, so the
// pass right after a write (250 ms later) may still list the version before it; it then
// decides on what was written instead, as a fresh read (quorumguard status) does. Without
// this, that pass would release a hook already released, or count a promotion's health
// window from nothing.
type ownWrites map[string]ownWrite

type ownWrite struct {
	replaced map[string]bool
	after    machinev1beta1.Machine
}

// record notes that the Machine at resourceVersion replaced is now after.
func (w *ownWrites) record(replaced string, after *machinev1beta1.Machine) {
	if *w == nil {
		*w = ownWrites{}
	}
	e := ownWrite{replaced: map[string]bool{replaced: true}, after: *after.DeepCopy()}
	if prev, ok := (*w)[after.Name]; ok && prev.after.ResourceVersion == replaced {
		for rv := range prev.replaced {
			e.replaced[rv] = true
		}
	}
	(*w)[after.Name] = e
}

// apply puts the written version in place of every listed Machine that is a version it
// replaced, and forgets a write the cache has caught up with (or that someone else's write
// superseded).
func (w ownWrites) apply(list []machinev1beta1.Machine) {
	seen := map[string]bool{}
	for i := range list {
		m := &list[i]
		seen[m.Name] = true
		e, ok := w[m.Name]
		if !ok {
			continue
		}
		if e.replaced[m.ResourceVersion] && m.UID == e.after.UID {
			*m = *e.after.DeepCopy()
			continue
		}
		delete(w, m.Name)
	}
	for name := range w {
		if !seen[name] {
			delete(w, name)
		}
	}
}
