package etcdjoin

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// CheckLocal says whether the peer URL's host is an address of this node: a member can only
// listen on its own addresses, so a peer URL elsewhere is a mistake in the input. A host is
// local when a socket can be bound to it (on Linux that includes all of 127.0.0.0/8).
func CheckLocal(peerURL string) error {
	u, err := url.Parse(peerURL)
	if err != nil || u.Hostname() == "" || u.Port() == "" {
		return fmt.Errorf("peer URL %q is not of the form https://host:port", peerURL)
	}
	if u.Scheme != "https" {
		return fmt.Errorf("peer URL %q must use https: etcd peers talk mutual TLS", peerURL)
	}
	ips, err := hostIPs(u.Hostname())
	if err != nil {
		return fmt.Errorf("peer URL %q: %w", peerURL, err)
	}
	for _, ip := range ips {
		l, err := net.Listen("tcp", net.JoinHostPort(ip.String(), "0"))
		if err == nil {
			l.Close()
			return nil
		}
	}
	return fmt.Errorf("peer URL %q is on no address of this node (%s): etcd could not listen there", peerURL, joinIPs(ips))
}

func hostIPs(host string) ([]net.IP, error) {
	if ip := net.ParseIP(host); ip != nil {
		return []net.IP{ip}, nil
	}
	ips, err := net.LookupIP(host)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", host, err)
	}
	return ips, nil
}

// PeerURLFromAddresses works out the peer URL from this node's addresses: the one global
// unicast address when there is exactly one (IPv4 preferred when there is one of each).
// Anything else is ambiguous and the caller must say.
func PeerURLFromAddresses(addrs []net.Addr, port int) (string, error) {
	var v4, v6 []net.IP
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || !ipn.IP.IsGlobalUnicast() {
			continue
		}
		if ipn.IP.To4() != nil {
			v4 = append(v4, ipn.IP)
		} else {
			v6 = append(v6, ipn.IP)
		}
	}
	pick := v4
	if len(v4) == 0 {
		pick = v6
	}
	switch len(pick) {
	case 1:
		return "https://" + net.JoinHostPort(pick[0].String(), fmt.Sprint(port)), nil
	case 0:
		return "", fmt.Errorf("this node has no global unicast address: give --peer-url or --node-ip")
	default:
		return "", fmt.Errorf("this node has several addresses (%s): give --peer-url or --node-ip", joinIPs(pick))
	}
}

func joinIPs(ips []net.IP) string {
	s := make([]string, len(ips))
	for i, ip := range ips {
		s[i] = ip.String()
	}
	return strings.Join(s, ", ")
}
