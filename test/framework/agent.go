package framework

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	machinev1beta1 "github.com/openshift/api/machine/v1beta1"

	"github.com/quorumguard/quorumguard/pkg/etcdjoin"
	"github.com/quorumguard/quorumguard/pkg/etcdmember"
	"github.com/quorumguard/quorumguard/test/framework/etcdnet"
)

// Agent stands in for the etcd static pod of each simulated control-plane machine. The
// machines named in Bootstrap start a fresh cluster together once all of them run, as an
// installer's bootstrap does; any later machine runs the shipped node-side join
// (pkg/etcdjoin, the package behind `quorumguard etcd-join`), which waits until someone has
// added its peer URL as a learner and writes the environment file the member then starts
// from, with cluster state "existing". A Machine without the master role label never gets a
// member. Each join's progress lines go to <etcd dir>/<machine>-join.log.
type Agent struct {
	Net       *etcdnet.Network
	Bootstrap []string

	// work serialises MachineRunning and member starts, which take seconds;
	// mu guards the maps for short reads, so that RunningEndpoints never waits on a start.
	work         sync.Mutex
	mu           sync.Mutex
	bootIPs      map[string]net.IP
	bootstrapped bool
	members      map[string]*etcdnet.Member // by Machine name
	joins        map[string]context.CancelFunc
	closed       bool
	ignored      map[string]bool
	held         map[string]bool
}

// NewAgent returns an agent for the network and bootstrap machine names.
func NewAgent(n *etcdnet.Network, bootstrap []string) *Agent {
	return &Agent{Net: n, Bootstrap: bootstrap, bootIPs: map[string]net.IP{}, members: map[string]*etcdnet.Member{}, joins: map[string]context.CancelFunc{}, ignored: map[string]bool{}, held: map[string]bool{}}
}

// Hold makes the agent never start etcd on the named Machine, as a node whose etcd fails to
// come up: its learner, once added, never starts.
func (a *Agent) Hold(machine string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.held[machine] = true
}

// adopt takes a bootstrap member started before the Machines existed (StartProtected).
func (a *Agent) adopt(machine string, m *etcdnet.Member) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.members[machine] = m
	a.bootIPs[machine] = m.IP
	a.bootstrapped = true
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
	if role := m.Labels[RoleLabel]; role != "master" && role != "arbiter" {
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
	a.startJoin(m.Name, ip)
}

// startJoin runs the shipped node-side join (`quorumguard etcd-join`'s package) for a
// Machine, once at a time: it waits until someone has added the Machine's peer URL, writes
// the environment file, and the member is started from what that file says. A join that
// fails (no member answered) is tried again on the simulator's next pass.
func (a *Agent) startJoin(name string, ip net.IP) {
	a.mu.Lock()
	if a.joins[name] != nil || a.closed {
		a.mu.Unlock()
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.joins[name] = cancel
	a.mu.Unlock()
	go func() {
		defer func() {
			a.mu.Lock()
			delete(a.joins, name)
			a.mu.Unlock()
			cancel()
		}()
		ca, cert, key := a.Net.ClientFiles()
		eps := a.RunningEndpoints()
		if len(eps) == 0 {
			return
		}
		cli, err := etcdmember.NewFromFiles(etcdmember.Config{Endpoints: eps, DialTimeout: time.Second, CallTimeout: 2 * time.Second},
			etcdmember.TLSFiles{CA: ca, Cert: cert, Key: key})
		if err != nil {
			return
		}
		defer func() { _ = cli.Close() }()
		dir := filepath.Join(a.Net.Dir, name)
		logf, err := os.OpenFile(filepath.Join(a.Net.Dir, name+"-join.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			return
		}
		defer logf.Close()
		res, err := etcdjoin.Run(ctx, etcdjoin.Config{
			Name: name, PeerURL: "https://" + net.JoinHostPort(ip.String(), "2380"),
			DataDir: a.Net.DataDir(name), EnvFile: dir + "-join.env",
			Members: followingLister{cli, a.RunningEndpoints}, Interval: 100 * time.Millisecond, Out: logf,
		})
		if err != nil {
			fmt.Fprintln(logf, "etcd-join:", err)
			return
		}
		initial := map[string]string{}
		for n, urls := range res.Env.Cluster() {
			initial[n] = urls[0]
		}
		a.work.Lock()
		defer a.work.Unlock()
		if ctx.Err() != nil || a.Member(name) != nil {
			return
		}
		mem, err := a.Net.StartMember(etcdnet.MemberConfig{Name: res.Env.Name, IP: ip, InitialCluster: initial, Existing: res.Env.State == "existing"})
		if err != nil {
			fmt.Fprintln(logf, "start etcd:", err)
			return
		}
		a.setMember(name, mem)
	}()
}

// followingLister asks whichever members run now, as a node's join would be pointed at the
// current members.
type followingLister struct {
	cli *etcdmember.Client
	eps func() []string
}

func (l followingLister) Members(ctx context.Context) ([]etcdmember.Member, error) {
	if eps := l.eps(); len(eps) > 0 {
		l.cli.SetEndpoints(eps...)
	}
	return l.cli.Members(ctx)
}

func (a *Agent) setMember(name string, mem *etcdnet.Member) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.members[name] = mem
}

// Wipe kills the Machine's etcd member, deletes its data dir and runs the node-side join
// again, as a node whose disk was replaced would on boot. The member is listed, and has run,
// so the join must wait for a fresh add rather than start it from nothing; Member returns nil
// until something starts one. It returns the join log's path.
func (a *Agent) Wipe(machine string) (string, error) {
	a.mu.Lock()
	mem := a.members[machine]
	delete(a.members, machine)
	a.mu.Unlock()
	if mem == nil {
		return "", fmt.Errorf("Machine %s runs no etcd member", machine)
	}
	mem.Kill()
	if err := os.RemoveAll(a.Net.DataDir(mem.Name)); err != nil {
		return "", fmt.Errorf("wipe the data dir of %s: %w", machine, err)
	}
	a.startJoin(machine, mem.IP)
	return filepath.Join(a.Net.Dir, machine+"-join.log"), nil
}

// MachineStopped is the simulator's OnStopped hook: the instance is gone, so is its member.
func (a *Agent) MachineStopped(m *machinev1beta1.Machine) {
	a.mu.Lock()
	mem := a.members[m.Name]
	if cancel := a.joins[m.Name]; cancel != nil {
		cancel()
	}
	a.mu.Unlock()
	if mem != nil {
		mem.Kill()
	}
}

// Close stops the joins still waiting; members are stopped with the network.
func (a *Agent) Close() {
	a.mu.Lock()
	a.closed = true
	for _, cancel := range a.joins {
		cancel()
	}
	a.mu.Unlock()
	// A join past its wait may be starting its member; let it finish before the network goes.
	a.work.Lock()
	defer a.work.Unlock()
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
