package etcdnet

import (
	"fmt"
	"sync"
	"testing"
)

// Networks started at the same moment must take different /24s, even when they draw the same
// candidates: one that only probed its candidate's port and closed it again would see it free
// and share it with another network, whose members would then fail to listen or, worse,
// answer for the other's.
func TestConcurrentNetworksTakeDistinctPrefixes(t *testing.T) {
	for _, tc := range []struct {
		name     string
		networks int
		// candidates returns each network's own source of candidate prefixes.
		candidates func() func() [3]byte
	}{
		{
			name: "every network draws the same candidates in the same order", networks: 6,
			candidates: func() func() [3]byte {
				next := 0
				return func() [3]byte {
					next++
					return [3]byte{127, 251, byte(next)}
				}
			},
		},
		{
			name: "random candidates", networks: 8,
			candidates: func() func() [3]byte { return randomPrefix },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nets := make([]*Network, tc.networks)
			errs := make([]error, tc.networks)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range tc.networks {
				wg.Add(1)
				go func() {
					defer wg.Done()
					candidate := tc.candidates()
					<-start
					nets[i], errs[i] = newNetwork(t.TempDir(), candidate)
				}()
			}
			close(start)
			wg.Wait()
			owner := map[[3]byte]int{}
			for i, n := range nets {
				if errs[i] != nil {
					t.Fatalf("network %d: %v", i, errs[i])
				}
				t.Cleanup(n.Close)
				if j, taken := owner[n.ipPrefix]; taken {
					t.Errorf("networks %d and %d both took %s", j, i, prefixString(n.ipPrefix))
					continue
				}
				owner[n.ipPrefix] = i
			}
		})
	}
}

func prefixString(p [3]byte) string { return fmt.Sprintf("%d.%d.%d.0/24", p[0], p[1], p[2]) }
