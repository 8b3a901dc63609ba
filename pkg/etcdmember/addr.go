package etcdmember

import (
	"net/netip"

	"github.com/quorumguard/quorumguard/pkg/quorum"
)

// parseAddr reads an IP address as pkg/quorum's mapping does, so that a peer URL compares
// equal here exactly when it maps to the same Machine there.
func parseAddr(s string) (netip.Addr, error) { return quorum.ParseIP(s) }
