package machines

import (
	"strings"
	"testing"

	configv1 "github.com/openshift/api/config/v1"
	machinev1 "github.com/openshift/api/machine/v1"
	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// The situations the ControlPlaneMachineSet operator's mapping and controller tests pin,
// as a set that operator laid out may be in when quorumguard takes it over.
func TestPlanParity(t *testing.T) {
	adopt := func(i int) mod { return func(m *Machine) { m.Index = i; m.Adopt = true } }
	cases := []struct {
		name string
		in   Input
		want want
	}{
		{
			name: "OnDelete: an index whose only Machine is deleting is replaced in the under-used domain",
			in:   input(OnDelete, abc, with(mc("m-0", 0, "a"), deleting), mc("m-1", 1, "a"), mc("m-2", 2, "a")),
			want: want{action: "Create 0 b 1", progressing: ReasonReplacingDeleted, inFlight: true},
		},
		{
			name: "RollingUpdate: the same replacement goes to b first, before any healthy Machine moves",
			in:   input(RollingUpdate, abc, with(mc("m-0", 0, "a"), deleting), mc("m-1", 1, "a"), mc("m-2", 2, "a")),
			want: want{action: "Create 0 b 1", progressing: ReasonReplacingDeleted, inFlight: true},
		},
		{
			name: "OnDelete: after that replacement, the other over-used index only waits to be deleted",
			in:   input(OnDelete, abc, mc("m-b-0", 0, "b"), mc("m-1", 1, "a"), mc("m-2", 2, "a")),
			want: want{action: "None", progressing: ReasonNeedsUpdate, message: "m-2 (index 2): index 2 moves from a to c"},
		},
		{
			name: "a Machine whose name carries no index is adopted before anything else",
			in:   input(RollingUpdate, abc, mc("m-0", 0, "a"), with(mc("m-bootstrap", 0, "b"), adopt(1)), mc("m-2", 2, "c")),
			want: want{action: "Adopt", progressing: ReasonAdopting, inFlight: true, message: "adopting Machine m-bootstrap at index 1"},
		},
		{
			name: "an adopted Machine in a layout the operator made moves nothing",
			in:   input(RollingUpdate, abc, mc("m-0", 0, "a"), with(mc("m-bootstrap", 0, "b"), func(m *Machine) { m.Index = 1 }), mc("m-2", 2, "c")),
			want: want{action: "None", progressing: ReasonAllReplicasUpdated + "=False", counts: &[4]int32{3, 3, 3, 0}},
		},
		{
			name: "a Machine that cannot be adopted is a problem that stops every action",
			in: input(RollingUpdate, abc, mc("m-0", 0, "a"), mc("m-1", 1, "b"), mc("m-2", 2, "c"),
				with(mc("m-extra", 0, "a"), func(m *Machine) { m.IndexErr = `"m-extra" carries no index and cannot be adopted` })),
			want: want{action: "None", degraded: ReasonMachineNameHasNoIndex, message: "Machine m-extra metadata.name"},
		},
		{
			name: "two live Machines reporting one address are a problem naming both and the address",
			in: input(RollingUpdate, abc, mc("m-0", 0, "a"), with(mc("m-1", 1, "b"), func(m *Machine) { m.Addresses = []string{"10.0.0.1"} }),
				with(mc("m-2", 2, "c"), func(m *Machine) { m.Addresses = []string{"10.0.0.1"} })),
			want: want{action: "None", degraded: ReasonDuplicateAddress, message: `Machine m-2 status.addresses: "10.0.0.1" is also an address of Machine m-1`},
		},
		{
			name: "a replacement that shares its index with the Machine it replaces is not a problem",
			in: input(OnDelete, abc, with(mc("c-master-0", 0, "a"), deleting),
				with(mc("c-master-replacement-0", 0, "a"), newer), mc("c-master-1", 1, "b"), mc("c-master-2", 2, "c")),
			want: want{action: "None", progressing: ReasonReplacingDeleted, counts: &[4]int32{4, 3, 3, 0}},
		},
		{
			name: "two fitting Machines at one index count as one updated replica",
			in: input(RollingUpdate, abc, mc("m-0", 0, "a"), with(mc("m-new-0", 0, "a"), newer, notVoting),
				mc("m-1", 1, "b"), mc("m-2", 2, "c")),
			want: want{counts: &[4]int32{4, 4, 3, 0}},
		},
		{
			name: "with the input invalid, updated replicas still count indexes",
			in: func() Input {
				in := input(RollingUpdate, abc, mc("m-0", 0, "a"), with(mc("m-new-0", 0, "a"), newer), mc("m-1", 1, "b"), mc("m-2", 2, "c"))
				in.Problems = []Problem{{ReasonInvalidTemplate, templateProviderSpec, "broken"}}
				return in
			}(),
			want: want{degraded: ReasonInvalidTemplate, counts: &[4]int32{4, 4, 3, 0}},
		},
		{
			name: "no failure domains listed: Machines in other zones than the template's are up to date, nothing moves",
			in:   input(RollingUpdate, nil, mc("m-0", 0, ""), mc("m-1", 1, ""), mc("m-2", 2, "")),
			want: want{action: "None", progressing: ReasonAllReplicasUpdated + "=False"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkDecision(t, Plan(tc.in), tc.want)
		})
	}
}

func awsCPMS(template string, fds *machinev1.FailureDomains) *machinev1.ControlPlaneMachineSet {
	return &machinev1.ControlPlaneMachineSet{
		ObjectMeta: metav1.ObjectMeta{Name: "cluster", Namespace: "openshift-machine-api"},
		Spec: machinev1.ControlPlaneMachineSetSpec{Template: machinev1.ControlPlaneMachineSetTemplate{
			MachineType: machinev1.OpenShiftMachineV1Beta1MachineType,
			OpenShiftMachineV1Beta1Machine: &machinev1.OpenShiftMachineV1Beta1MachineTemplate{
				FailureDomains: fds,
				Spec:           machinev1beta1.MachineSpec{ProviderSpec: machinev1beta1.ProviderSpec{Value: &runtime.RawExtension{Raw: []byte(template)}}},
			},
		}},
	}
}

func zones(zs ...string) *machinev1.FailureDomains {
	list := []machinev1.AWSFailureDomain{}
	for _, z := range zs {
		list = append(list, machinev1.AWSFailureDomain{Placement: machinev1.AWSFailureDomainPlacement{AvailabilityZone: z}})
	}
	return &machinev1.FailureDomains{Platform: configv1.AWSPlatformType, AWS: &list}
}

func TestTemplateFactsParity(t *testing.T) {
	const good = `{"kind":"AWSMachineProviderConfig","instanceType":"m6i.xlarge","placement":{"availabilityZone":"a","region":"r"}}`
	tests := []struct {
		name     string
		cpms     *machinev1.ControlPlaneMachineSet
		domains  []string
		problems []string // each "Reason field: message", in full
	}{
		{
			name:    "duplicate failure domains count once",
			cpms:    awsCPMS(good, zones("a", "b", "a", "c")),
			domains: []string{"a", "b", "c"},
		},
		{
			name: "an empty list is no domains",
			cpms: awsCPMS(good, zones()),
		},
		{
			name:    "a subnet given as a string is one problem naming the field and the value",
			cpms:    awsCPMS(`{"kind":"AWSMachineProviderConfig","placement":{"availabilityZone":"a"},"subnet":"subnet-0abc"}`, zones("a", "b", "c")),
			domains: []string{"a", "b", "c"},
			problems: []string{ReasonInvalidTemplate + " " + templateProviderSpec +
				`.subnet: malformed providerSpec: want an object, got a string "subnet-0abc"`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			domains, _, problems := templateFacts(tc.cpms)
			var keys, got []string
			for _, d := range domains {
				keys = append(keys, d.Key())
			}
			for _, p := range problems {
				got = append(got, p.Reason+" "+p.String())
			}
			if strings.Join(keys, ",") != strings.Join(tc.domains, ",") {
				t.Errorf("domains %q, want %q", keys, tc.domains)
			}
			if strings.Join(got, "\n") != strings.Join(tc.problems, "\n") {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.problems, "\n"))
			}
		})
	}
}

func TestInheritDomainWithoutDomains(t *testing.T) {
	tmpl := &runtime.RawExtension{Raw: []byte(`{"kind":"AWSMachineProviderConfig","instanceType":"m6i.2xlarge","placement":{"availabilityZone":"a","region":"r"},"subnet":{"id":"s-a"}}`)}
	from := &runtime.RawExtension{Raw: []byte(`{"kind":"AWSMachineProviderConfig","instanceType":"m6i.xlarge","placement":{"availabilityZone":"c","region":"r"},"subnet":{"id":"s-c"}}`)}
	got, err := inheritDomain(tmpl, from)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"instanceType":"m6i.2xlarge","kind":"AWSMachineProviderConfig","placement":{"availabilityZone":"c","region":"r"},"subnet":{"id":"s-c"}}`
	if string(got.Raw) != want {
		t.Errorf("got %s, want %s", got.Raw, want)
	}
}
