package release

import (
	"context"
	"fmt"
	"time"

	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// EventReason is the reason of every Event a release records.
const EventReason = "ManualRelease"

// reportingController names the release in its Events, beside the controller's "quorumguard".
const reportingController = "quorumguard-release"

// noteLimit is the apiserver's limit on an Event's note.
const noteLimit = 1024

// event records note on each Machine, written at once (not through a broadcaster that may
// drop it when the command exits). A failed write is printed and does not stop the release.
func (cfg Config) event(ctx context.Context, on []*machinev1beta1.Machine, typ, action, note string) {
	if len(note) > noteLimit {
		note = note[:noteLimit-3] + "..."
	}
	instance := cfg.Instance
	if instance == "" {
		instance = reportingController
	}
	for _, m := range on {
		if m == nil {
			continue
		}
		ev := &eventsv1.Event{
			ObjectMeta:          metav1.ObjectMeta{Name: fmt.Sprintf("%s.%x", m.Name, time.Now().UnixNano()), Namespace: m.Namespace},
			EventTime:           metav1.NowMicro(),
			ReportingController: reportingController,
			ReportingInstance:   instance,
			Action:              action,
			Reason:              EventReason,
			Type:                typ,
			Note:                note,
			Regarding: corev1.ObjectReference{Kind: "Machine", APIVersion: machinev1beta1.GroupVersion.String(),
				Namespace: m.Namespace, Name: m.Name, UID: m.UID, ResourceVersion: m.ResourceVersion},
		}
		if err := cfg.Client.Create(ctx, ev); err != nil {
			cfg.printf("%s", fmt.Sprintf("(the Event on Machine %s could not be recorded: %v)", m.Name, err))
		}
	}
}
