package framework

import (
	"context"
	"net"
	"sort"
	"sync"
	"time"

	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/quorumguard/quorumguard/test/framework/etcdnet"
)

// Agent stands in for the etcd static pod of each simulated control-plane machine. The
// machines named in Bootstrap start a fresh cluster together once all of them run; any later
// machine starts its member only after someone has added its peer URL to the member list
// (as a learner), and joins with cluster state "existing". A Machine without the master role
// label never gets a member.
type Agent struct {
	Net       *etcdnet.Network
	Bootstrap []string

	// work serialises MachineRunning and Close, which talk to etcd and start members (seconds);
	// mu guards the maps for short reads, so that RunningEndpoints never waits on a start.
	work         sync.Mutex
	mu           sync.Mutex
	bootIPs      map[string]net.IP
	bootstrapped bool
	members      map[string]*etcdnet.Member // by Machine name
	cli          *clientv3.Client
	ignored      map[string]bool
	held         map[string]bool
}

// NewAgent returns an agent for the network and bootstrap machine names.
func NewAgent(n *etcdnet.Network, bootstrap []string) *Agent {
	return &Agent{Net: n, Bootstrap: bootstrap, bootIPs: map[string]net.IP{}, members: map[string]*etcdnet.Member{}, ignored: map[string]bool{}, held: map[string]bool{}}
}

// Hold makes the agent never start etcd on the named Machine, as a node whose etcd fails to
// come up: its learner, once added, never starts.
func (a *Agent) Hold(machine string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.held[machine] = true
}

// Member returns the member of the named Machine, or nil.
func (a *Agent) Member(machine string) *etcdnet.Member {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.members[machine]
}

// Ignored says whether the agent has seen the Machine and declined to run etcd on it.
func (a *Agent) Ignored(machine string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.ignored[machine]
}

// RunningEndpoints are the client URLs of every member that is up.
func (a *Agent) RunningEndpoints() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, m := range a.members {
		if m.Running() {
			out = append(out, m.ClientURL())
		}
	}
	sort.Strings(out)
	return out
}

// MachineRunning is the simulator's OnRunning hook.
func (a *Agent) MachineRunning(ctx context.Context, m *machinev1beta1.Machine, ip net.IP) {
	a.work.Lock()
	defer a.work.Unlock()
	if m.Labels[RoleLabel] != "master" {
		a.mu.Lock()
		a.ignored[m.Name] = true
		a.mu.Unlock()
		return
	}
	if a.Member(m.Name) != nil {
		return
	}
	a.mu.Lock()
	held := a.held[m.Name]
	a.mu.Unlock()
	if held {
		return
	}
	if !a.bootstrapped && containsString(a.Bootstrap, m.Name) {
		a.bootIPs[m.Name] = ip
		if len(a.bootIPs) < len(a.Bootstrap) {
			return
		}
		initial := map[string]string{}
		for name, bip := range a.bootIPs {
			initial[name] = "https://" + net.JoinHostPort(bip.String(), "2380")
		}
		for name, bip := range a.bootIPs {
			mem, err := a.Net.StartMember(etcdnet.MemberConfig{Name: name, IP: bip, InitialCluster: initial})
			if err == nil {
				a.setMember(name, mem)
			}
		}
		a.bootstrapped = true
		return
	}
	if !a.bootstrapped {
		return
	}
	// A joining member waits until its peer URL is in the member list.
	peerURL := "https://" + net.JoinHostPort(ip.String(), "2380")
	list, err := a.memberList(ctx)
	if err != nil {
		return
	}
	initial := map[string]string{}
	found := false
	for _, mem := range list.Members {
		for _, u := range mem.PeerURLs {
			name := mem.Name
			if u == peerURL {
				found = true
				name = m.Name
			}
			if name != "" {
				initial[name] = u
			}
		}
	}
	if !found {
		return
	}
	mem, err := a.Net.StartMember(etcdnet.MemberConfig{Name: m.Name, IP: ip, InitialCluster: initial, Existing: true})
	if err == nil {
		a.setMember(m.Name, mem)
	}
}

func (a *Agent) setMember(name string, mem *etcdnet.Member) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.members[name] = mem
}

// memberList asks the running members for the member list; a.work is held.
func (a *Agent) memberList(ctx context.Context) (*clientv3.MemberListResponse, error) {
	eps := a.RunningEndpoints()
	if a.cli == nil {
		tc, err := a.Net.ClientTLS()
		if err != nil {
			return nil, err
		}
		a.cli, err = clientv3.New(clientv3.Config{Endpoints: eps, TLS: tc, DialTimeout: time.Second, Logger: zap.NewNop()})
		if err != nil {
			return nil, err
		}
	} else {
		a.cli.SetEndpoints(eps...)
	}
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	return a.cli.MemberList(cctx)
}

// MachineStopped is the simulator's OnStopped hook: the instance is gone, so is its member.
func (a *Agent) MachineStopped(m *machinev1beta1.Machine) {
	a.mu.Lock()
	mem := a.members[m.Name]
	a.mu.Unlock()
	if mem != nil {
		mem.Kill()
	}
}

// Close stops the agent's own client; members are stopped with the network.
func (a *Agent) Close() {
	a.work.Lock()
	defer a.work.Unlock()
	if a.cli != nil {
		a.cli.Close()
		a.cli = nil
	}
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
