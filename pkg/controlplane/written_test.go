package controlplane

import (
	"testing"

	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func version(name, rv, label string) machinev1beta1.Machine {
	return machinev1beta1.Machine{ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-" + name), ResourceVersion: rv, Labels: map[string]string{"v": label}}}
}

// TestOwnWritesStandInForAStaleCache: a listed version that one of this controller's writes
// replaced (directly or through a chain of them) is swapped for what was written; any other
// version, or the written one itself, means the cache caught up and the write is forgotten.
func TestOwnWritesStandInForAStaleCache(t *testing.T) {
	for _, tc := range []struct {
		name   string
		listed string
		want   string
		kept   bool
	}{
		{"the cache still holds the version the first write replaced", "1", "written", true},
		{"the cache holds the version between two writes", "2", "written", true},
		{"the cache has caught up", "3", "cache", false},
		{"someone else wrote after us", "7", "cache", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var own ownWrites
			m2 := version("m-0", "2", "between")
			own.record("1", &m2)
			m3 := version("m-0", "3", "written")
			own.record("2", &m3)
			list := []machinev1beta1.Machine{version("m-0", tc.listed, "cache"), version("m-1", "5", "cache")}
			own.apply(list)
			if got := list[0].Labels["v"]; got != tc.want {
				t.Errorf("decided on %q; want %q", got, tc.want)
			}
			if list[1].Labels["v"] != "cache" {
				t.Error("a Machine this controller did not write was replaced")
			}
			if _, ok := own["m-0"]; ok != tc.kept {
				t.Errorf("write remembered = %v; want %v", ok, tc.kept)
			}
		})
	}
	var own ownWrites
	m := version("m-0", "2", "written")
	own.record("1", &m)
	own.apply(nil)
	if len(own) != 0 {
		t.Error("the write of a Machine that is gone was kept")
	}
}
