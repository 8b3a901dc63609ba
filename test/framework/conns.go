package framework

import (
	"crypto/tls"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// endpointClients keeps one etcd client per endpoint, each dialling that endpoint only, so
// that a call goes through the member it names.
type endpointClients struct {
	tls *tls.Config
	mu  sync.Mutex
	m   map[string]*clientv3.Client
}

func newEndpointClients(tc *tls.Config) *endpointClients {
	return &endpointClients{tls: tc, m: map[string]*clientv3.Client{}}
}

func (e *endpointClients) get(ep string) (*clientv3.Client, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if c := e.m[ep]; c != nil {
		return c, nil
	}
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, TLS: e.tls, DialTimeout: time.Second, Logger: zap.NewNop()})
	if err != nil {
		return nil, err
	}
	e.m[ep] = c
	return c, nil
}

func (e *endpointClients) close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, c := range e.m {
		_ = c.Close()
	}
	e.m = map[string]*clientv3.Client{}
}
