package endpoints

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Publisher keeps the ConfigMap.
type Publisher struct {
	// Client should read through to the apiserver: a consumer's acknowledgement must be seen
	// as written.
	Client    client.Client
	Namespace string
	Name      string
	Consumers []string
}

// Sync publishes want when it differs from the published list (a new generation, with its
// digest) and returns what is published now. An empty want publishes nothing. A ConfigMap
// whose data cannot be read is an error and is not overwritten: a person must look. A
// digest missing or wrong beside an unchanged list (a ConfigMap written before digests, or
// edited by hand) is rewritten; the decision never reads it, it computes the digest from the
// list (Holds).
func (p *Publisher) Sync(ctx context.Context, want []string) (Published, error) {
	var cm corev1.ConfigMap
	key := client.ObjectKey{Namespace: p.Namespace, Name: p.Name}
	err := p.Client.Get(ctx, key, &cm)
	switch {
	case apierrors.IsNotFound(err):
		if len(want) == 0 {
			return Published{}, nil
		}
		cm = corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: p.Name, Labels: map[string]string{"app.kubernetes.io/name": "quorumguard"}},
			Data:       map[string]string{DataEndpoints: strings.Join(want, ","), DataDigest: Digest(want), DataGeneration: "1"},
		}
		if err := p.Client.Create(ctx, &cm); err != nil {
			return Published{}, fmt.Errorf("create ConfigMap %s: %w", key, err)
		}
		return Published{Endpoints: want, Generation: 1, Acks: map[string]string{}}, nil
	case err != nil:
		return Published{}, fmt.Errorf("read ConfigMap %s: %w", key, err)
	}
	cur, err := parse(cm.Data, cm.Annotations)
	if err != nil {
		return cur, fmt.Errorf("ConfigMap %s: %w", key, err)
	}
	if cm.Data == nil {
		cm.Data = map[string]string{}
	}
	if len(want) == 0 || slices.Equal(cur.Endpoints, want) {
		if len(cur.Endpoints) > 0 && cm.Data[DataDigest] != cur.Digest() {
			cm.Data[DataDigest] = cur.Digest()
			if err := p.Client.Update(ctx, &cm); err != nil {
				return cur, fmt.Errorf("write the digest of the published endpoints to ConfigMap %s: %w", key, err)
			}
		}
		return cur, nil
	}
	cm.Data[DataEndpoints] = strings.Join(want, ",")
	cm.Data[DataDigest] = Digest(want)
	cm.Data[DataGeneration] = strconv.FormatInt(cur.Generation+1, 10)
	// A conflict (a consumer acknowledging at the same moment) is retried on the next pass.
	if err := p.Client.Update(ctx, &cm); err != nil {
		return cur, fmt.Errorf("publish generation %d (%s) to ConfigMap %s: %w", cur.Generation+1, Short(Digest(want)), key, err)
	}
	cur.Endpoints, cur.Generation = want, cur.Generation+1
	return cur, nil
}

// Acknowledge is the consumer's side: it records that consumer has rolled out the list
// rolledOut, by writing its Digest. It is here for consumers written in Go and for the tests'
// stand-in apiserver operator. Pass the list actually rolled out, not one read afterwards.
func Acknowledge(ctx context.Context, c client.Client, namespace, name, consumer string, rolledOut []string) error {
	var cm corev1.ConfigMap
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &cm); err != nil {
		return err
	}
	if cm.Annotations == nil {
		cm.Annotations = map[string]string{}
	}
	cm.Annotations[AckPrefix+consumer] = Digest(rolledOut)
	return c.Update(ctx, &cm)
}

// Read returns what is published, for a consumer.
func Read(ctx context.Context, c client.Client, namespace, name string) (Published, error) {
	var cm corev1.ConfigMap
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &cm); err != nil {
		return Published{}, err
	}
	return parse(cm.Data, cm.Annotations)
}
