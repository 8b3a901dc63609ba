package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/quorumguard/quorumguard/pkg/controlplane"
	"github.com/quorumguard/quorumguard/test/framework"
)

type sample struct {
	peakRSS, heap, cpu float64
	writesPerMin       float64
	etcdCallsPerMin    float64
	getsListsPerMin    float64
}

// scale runs the real binary against a cluster with no worker Machines, then with `workers`
// of them, with the label-selected cache and with an unfiltered one, three trials each, and
// reads memory, CPU and request counts from its metrics endpoint and /proc.
func scale(ctx context.Context, bin string, workers int) ([]row, error) {
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("%s: run `make build` first: %w", bin, err)
	}
	cp, dir, stop, err := startControlPlane(false)
	if err != nil {
		return nil, err
	}
	defer stop()
	c, err := framework.StartCluster(ctx, cp, framework.ClusterOptions{Dir: dir, OnlyMasters: true})
	if err != nil {
		return nil, err
	}
	defer c.Stop(context.Background())
	const trials = 3
	measure := func(all bool) ([]sample, error) {
		var out []sample
		for range trials {
			s, err := runAndSample(ctx, bin, cp, c, all)
			if err != nil {
				return nil, err
			}
			fmt.Printf("  cache-all=%v: peak RSS %.1f MiB, heap %.1f MiB, CPU %.2f%%, writes/min %.1f, etcd calls/min %.1f\n",
				all, s.peakRSS/(1<<20), s.heap/(1<<20), s.cpu, s.writesPerMin, s.etcdCallsPerMin)
			out = append(out, s)
		}
		return out, nil
	}
	fmt.Println("no worker Machines")
	none, err := measure(false)
	if err != nil {
		return nil, err
	}
	fmt.Printf("creating %d worker Machines\n", workers)
	if err := createWorkers(ctx, c, workers); err != nil {
		return nil, err
	}
	fmt.Printf("%d worker Machines, label-selected cache\n", workers)
	filtered, err := measure(false)
	if err != nil {
		return nil, err
	}
	fmt.Printf("%d worker Machines, unfiltered cache\n", workers)
	unfiltered, err := measure(true)
	if err != nil {
		return nil, err
	}
	pick := func(ss []sample, f func(sample) float64) float64 {
		xs := make([]float64, len(ss))
		for i, s := range ss {
			xs[i] = f(s)
		}
		return median(xs)
	}
	rss := func(s sample) float64 { return s.peakRSS / (1 << 20) }
	heap := func(s sample) float64 { return s.heap / (1 << 20) }
	cpu := func(s sample) float64 { return s.cpu }
	w := fmt.Sprintf("%d workers", workers)
	return []row{
		{figure: "peak RSS, " + w + ", label-selected cache", value: pick(filtered, rss), unit: "MiB", comparison: "no workers", cmpValue: pick(none, rss)},
		{figure: "Go heap in use, " + w + ", label-selected cache", value: pick(filtered, heap), unit: "MiB", comparison: "no workers", cmpValue: pick(none, heap)},
		{figure: "peak RSS, " + w + ", label-selected cache", value: pick(filtered, rss), unit: "MiB", comparison: "unfiltered cache, " + w, cmpValue: pick(unfiltered, rss)},
		{figure: "Go heap in use, " + w + ", label-selected cache", value: pick(filtered, heap), unit: "MiB", comparison: "unfiltered cache, " + w, cmpValue: pick(unfiltered, heap)},
		{figure: "CPU in steady state, " + w + ", label-selected cache", value: pick(filtered, cpu), unit: "%", comparison: "unfiltered cache, " + w, cmpValue: pick(unfiltered, cpu)},
		{figure: "API writes per minute, steady state", value: pick(filtered, func(s sample) float64 { return s.writesPerMin }), unit: "/min",
			note: fmt.Sprintf("API reads %.1f/min", pick(filtered, func(s sample) float64 { return s.getsListsPerMin }))},
		{figure: "etcd observations per minute, steady state", value: pick(filtered, func(s sample) float64 { return s.etcdCallsPerMin }), unit: "/min",
			note: fmt.Sprintf("each is a member list plus one status and one read per member; idle pass every %s", controlplane.DefaultIdleResync)},
	}, nil
}

func createWorkers(ctx context.Context, c *framework.Cluster, n int) error {
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	next := make(chan int)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				m := &machinev1beta1.Machine{ObjectMeta: metav1.ObjectMeta{
					Name: fmt.Sprintf("worker-%05d", i), Namespace: framework.MachineNamespace,
					Labels: map[string]string{framework.RoleLabel: "worker", framework.TypeLabel: "worker", framework.ClusterLabel: "cluster"}},
					Spec: machinev1beta1.MachineSpec{ProviderSpec: machinev1beta1.ProviderSpec{Value: framework.AWSProviderSpec("us-east-1a", "subnet-a")}}}
				if err := c.Client.Create(ctx, m); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// runAndSample starts the controller, lets it settle, then measures a 30 s steady window.
func runAndSample(ctx context.Context, bin string, cp *framework.ControlPlane, c *framework.Cluster, all bool) (sample, error) {
	port, err := freePort()
	if err != nil {
		return sample{}, err
	}
	ca, cert, key := c.Net.ClientFiles()
	args := []string{"--kubeconfig=" + cp.KubeconfigFile, "--etcd-ca-file=" + ca, "--etcd-cert-file=" + cert, "--etcd-key-file=" + key,
		"--leader-elect=none", fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", port), "--health-probe-bind-address=0",
		"--manage-machines=false", "--cluster-operator=", "--metrics-secure=false"}
	if all {
		args = append(args, "--cache-all-machines")
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		return sample{}, err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	url := fmt.Sprintf("http://127.0.0.1:%d/metrics", port)
	time.Sleep(15 * time.Second)
	before, err := scrape(url)
	if err != nil {
		return sample{}, err
	}
	const window = 30 * time.Second
	time.Sleep(window)
	after, err := scrape(url)
	if err != nil {
		return sample{}, err
	}
	perMin := func(prefix string, match func(string) bool) float64 {
		d := 0.0
		for k, v := range after {
			if strings.HasPrefix(k, prefix) && match(k) {
				d += v - before[k]
			}
		}
		return d * float64(time.Minute) / float64(window)
	}
	isWrite := func(k string) bool {
		for _, m := range []string{`method="POST"`, `method="PUT"`, `method="PATCH"`, `method="DELETE"`} {
			if strings.Contains(k, m) {
				return true
			}
		}
		return false
	}
	return sample{
		peakRSS:         vmHWM(cmd.Process.Pid),
		heap:            after["go_memstats_heap_inuse_bytes"],
		cpu:             100 * (after["process_cpu_seconds_total"] - before["process_cpu_seconds_total"]) / window.Seconds(),
		writesPerMin:    perMin("rest_client_requests_total", isWrite),
		getsListsPerMin: perMin("rest_client_requests_total", func(k string) bool { return !isWrite(k) }),
		etcdCallsPerMin: perMin("quorumguard_etcd_requests_total", func(string) bool { return true }),
	}, nil
}

func scrape(url string) (map[string]float64, error) {
	var resp *http.Response
	var err error
	for range 20 {
		if resp, err = http.Get(url); err == nil {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out, sc.Err()
}

// vmHWM is a process's peak resident set size, in bytes.
func vmHWM(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			var kb float64
			if _, err := fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(l, "VmHWM:")), "%f", &kb); err != nil {
				return 0
			}
			return kb * 1024
		}
	}
	return 0
}
