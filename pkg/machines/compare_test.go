package machines

import (
	"errors"
	"testing"

	configv1 "github.com/openshift/api/config/v1"
	machinev1 "github.com/openshift/api/machine/v1"
	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"

	"github.com/quorumguard/quorumguard/pkg/failuredomain"
)

const awsTemplate = `{"apiVersion":"machine.openshift.io/v1beta1","kind":"AWSMachineProviderConfig",
"instanceType":"m6i.xlarge","ami":{"id":"ami-1"},"placement":{"region":"us-east-1"},"subnet":{"id":"subnet-x"}}`

func testCPMS(providerSpec string, zones ...string) *machinev1.ControlPlaneMachineSet {
	var fds []machinev1.AWSFailureDomain
	for _, z := range zones {
		fds = append(fds, machinev1.AWSFailureDomain{
			Placement: machinev1.AWSFailureDomainPlacement{AvailabilityZone: z},
			Subnet:    &machinev1.AWSResourceReference{Type: machinev1.AWSIDReferenceType, ID: ptr.To("subnet-" + z)},
		})
	}
	tmpl := &machinev1.OpenShiftMachineV1Beta1MachineTemplate{
		Spec: machinev1beta1.MachineSpec{ProviderSpec: machinev1beta1.ProviderSpec{Value: &runtime.RawExtension{Raw: []byte(providerSpec)}}},
	}
	if len(zones) > 0 {
		tmpl.FailureDomains = &machinev1.FailureDomains{Platform: configv1.AWSPlatformType, AWS: &fds}
	}
	return &machinev1.ControlPlaneMachineSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: "openshift-machine-api", Name: "cluster"},
		Spec: machinev1.ControlPlaneMachineSetSpec{Template: machinev1.ControlPlaneMachineSetTemplate{
			MachineType: machinev1.OpenShiftMachineV1Beta1MachineType, OpenShiftMachineV1Beta1Machine: tmpl,
		}},
	}
}

func testMachine(providerSpec string) *machinev1beta1.Machine {
	return &machinev1beta1.Machine{
		ObjectMeta: metav1.ObjectMeta{Namespace: "openshift-machine-api", Name: "m-0"},
		Spec:       machinev1beta1.MachineSpec{ProviderSpec: machinev1beta1.ProviderSpec{Value: &runtime.RawExtension{Raw: []byte(providerSpec)}}},
	}
}

func TestProviderSpecDiff(t *testing.T) {
	cases := []struct {
		name    string
		zones   []string
		machine string
		want    string
		wantErr error
	}{
		{
			name:    "the same providerSpec in another domain matches",
			zones:   []string{"a", "b"},
			machine: `{"apiVersion":"machine.openshift.io/v1beta1","kind":"AWSMachineProviderConfig","instanceType":"m6i.xlarge","ami":{"id":"ami-1"},"placement":{"region":"us-east-1","availabilityZone":"b"},"subnet":{"id":"subnet-b"}}`,
		},
		{
			name:    "reordered keys, defaulted zero values and another number spelling match",
			zones:   []string{"a"},
			machine: `{"subnet":{"id":"subnet-a"},"placement":{"availabilityZone":"a","region":"us-east-1","tenancy":""},"ami":{"id":"ami-1"},"instanceType":"m6i.xlarge","kind":"AWSMachineProviderConfig","apiVersion":"machine.openshift.io/v1beta1","userDataSecret":null,"tags":[],"metadata":{"creationTimestamp":null},"spotMarketOptions":{},"publicIp":false}`,
		},
		{
			name:    "a different instance type differs",
			zones:   []string{"a"},
			machine: `{"apiVersion":"machine.openshift.io/v1beta1","kind":"AWSMachineProviderConfig","instanceType":"m6i.2xlarge","ami":{"id":"ami-1"},"placement":{"region":"us-east-1","availabilityZone":"a"},"subnet":{"id":"subnet-a"}}`,
			want:    "instanceType",
		},
		{
			name:    "a field the template lacks differs, by its full path",
			zones:   []string{"a"},
			machine: `{"apiVersion":"machine.openshift.io/v1beta1","kind":"AWSMachineProviderConfig","instanceType":"m6i.xlarge","ami":{"id":"ami-1"},"placement":{"region":"us-west-2","availabilityZone":"a"},"subnet":{"id":"subnet-a"},"iamInstanceProfile":{"id":"p"}}`,
			want:    "iamInstanceProfile, placement.region",
		},
		{
			name:    "a Machine in an unlisted domain is compared with the domain fields set alike",
			zones:   []string{"a"},
			machine: `{"apiVersion":"machine.openshift.io/v1beta1","kind":"AWSMachineProviderConfig","instanceType":"m6i.xlarge","ami":{"id":"ami-1"},"placement":{"region":"us-east-1","availabilityZone":"z"},"subnet":{"id":"subnet-z"}}`,
		},
		{
			name:    "without domains the zone and subnet are left out: a Machine is never replaced only to move it into the template's zone",
			machine: `{"apiVersion":"machine.openshift.io/v1beta1","kind":"AWSMachineProviderConfig","instanceType":"m6i.xlarge","ami":{"id":"ami-1"},"placement":{"region":"us-east-1","availabilityZone":"z"},"subnet":{"id":"subnet-x"}}`,
			want:    "",
		},
		{
			name:    "without domains the rest of the placement still counts",
			machine: `{"apiVersion":"machine.openshift.io/v1beta1","kind":"AWSMachineProviderConfig","instanceType":"m6i.xlarge","ami":{"id":"ami-1"},"placement":{"region":"us-west-2","availabilityZone":"z"}}`,
			want:    "placement.region",
		},
		{
			name:    "a Machine whose providerSpec is not JSON is an error naming it",
			zones:   []string{"a"},
			machine: `{"kind":`,
			wantErr: failuredomain.ErrMalformed,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cpms := testCPMS(awsTemplate, tc.zones...)
			domains, err := failuredomain.FromControlPlaneMachineSet(cpms)
			if err != nil {
				t.Fatal(err)
			}
			var d *failuredomain.Domain
			if len(domains) > 0 {
				d = &domains[0]
			}
			got, err := providerSpecDiff(cpms, testMachine(tc.machine), d)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("error %v, want %v", err, tc.wantErr)
				}
				var fe *failuredomain.FieldError
				if !errors.As(err, &fe) || fe.Object != "Machine openshift-machine-api/m-0" || fe.Field != machineProviderSpec {
					t.Fatalf("error %v does not name the Machine and its field", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("diff %q, want %q", got, tc.want)
			}
		})
	}
}

func TestNamePrefix(t *testing.T) {
	cases := []struct {
		name, cpmsPrefix, from, want string
	}{
		{"an installer name drops its index", "", "cluster-x7q2z-master-0", "cluster-x7q2z-master"},
		{"a generated name drops its random part and index", "", "cluster-x7q2z-master-bcd42-0", "cluster-x7q2z-master"},
		{"a five-letter word with vowels is not random", "", "cluster-infra-0", "cluster-infra"},
		{"the test cluster's names", "", "cluster-master-2", "cluster-master"},
		{"machineNamePrefix wins", "control-plane", "cluster-master-0", "control-plane"},
		{"a name with no dash is its own prefix", "", "solo", "solo"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := namePrefix(tc.cpmsPrefix, tc.from); got != tc.want {
				t.Fatalf("namePrefix(%q, %q) = %q, want %q", tc.cpmsPrefix, tc.from, got, tc.want)
			}
			if got := namePrefix("", machineName(tc.want, "bcd42", 1)); tc.cpmsPrefix == "" && tc.from != "solo" && got != tc.want {
				t.Fatalf("a generated name does not give back its prefix: %q", got)
			}
		})
	}
}
