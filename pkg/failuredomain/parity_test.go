package failuredomain

import (
	"errors"
	"slices"
	"strings"
	"testing"

	configv1 "github.com/openshift/api/config/v1"
	machinev1 "github.com/openshift/api/machine/v1"
)

// The situations the ControlPlaneMachineSet operator's own tests accept, which a set laid
// out by that operator may be in when quorumguard takes it over.

func TestParityDuplicateDomainsAreOneDomain(t *testing.T) {
	str := func(s string) *string { return &s }
	aws := func(zone string, subnet *machinev1.AWSResourceReference) machinev1.AWSFailureDomain {
		return machinev1.AWSFailureDomain{Placement: machinev1.AWSFailureDomainPlacement{AvailabilityZone: zone}, Subnet: subnet}
	}
	filters := func(fs ...machinev1.AWSResourceFilter) *machinev1.AWSResourceReference {
		return &machinev1.AWSResourceReference{Type: machinev1.AWSFiltersReferenceType, Filters: &fs}
	}
	tests := []struct {
		name string
		fds  *machinev1.FailureDomains
		keys []string
	}{
		{
			name: "AWS zone and subnet listed twice",
			fds: &machinev1.FailureDomains{Platform: configv1.AWSPlatformType, AWS: &[]machinev1.AWSFailureDomain{
				aws("a", &machinev1.AWSResourceReference{Type: machinev1.AWSIDReferenceType, ID: str("s1")}),
				aws("b", nil),
				aws("a", &machinev1.AWSResourceReference{Type: machinev1.AWSIDReferenceType, ID: str("s1")}),
			}},
			keys: []string{"a (subnet.id=s1)", "b"},
		},
		{
			name: "AWS zone listed twice, as the operator's installer-made sets sometimes are",
			fds: &machinev1.FailureDomains{Platform: configv1.AWSPlatformType, AWS: &[]machinev1.AWSFailureDomain{
				aws("a", nil), aws("a", nil), aws("b", nil),
			}},
			keys: []string{"a", "b"},
		},
		{
			name: "AWS filters in another order are the same domain",
			fds: &machinev1.FailureDomains{Platform: configv1.AWSPlatformType, AWS: &[]machinev1.AWSFailureDomain{
				aws("a", filters(machinev1.AWSResourceFilter{Name: "x", Values: []string{"1", "2"}}, machinev1.AWSResourceFilter{Name: "y"})),
				aws("a", filters(machinev1.AWSResourceFilter{Name: "y"}, machinev1.AWSResourceFilter{Name: "x", Values: []string{"2", "1"}})),
			}},
			keys: []string{"a (subnet.filters=x=1,2;y=)"},
		},
		{
			name: "Azure zone listed twice",
			fds:  &machinev1.FailureDomains{Platform: configv1.AzurePlatformType, Azure: &[]machinev1.AzureFailureDomain{{Zone: "1"}, {Zone: "2"}, {Zone: "1"}}},
			keys: []string{"1", "2"},
		},
		{
			name: "Nutanix name listed twice",
			fds:  &machinev1.FailureDomains{Platform: configv1.NutanixPlatformType, Nutanix: []machinev1.NutanixFailureDomainReference{{Name: "x"}, {Name: "x"}}},
			keys: []string{"x"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if keys := parsedKeys(t, tc.fds); !slices.Equal(keys, tc.keys) {
				t.Errorf("keys = %q, want %q", keys, tc.keys)
			}
		})
	}
}

func TestParityAWSDomainWithOnlyASubnet(t *testing.T) {
	str := func(s string) *string { return &s }
	domains, err := Parse(&machinev1.FailureDomains{Platform: configv1.AWSPlatformType, AWS: &[]machinev1.AWSFailureDomain{
		{Subnet: &machinev1.AWSResourceReference{Type: machinev1.AWSIDReferenceType, ID: str("subnet-1")}},
		{Subnet: &machinev1.AWSResourceReference{Type: machinev1.AWSIDReferenceType, ID: str("subnet-2")}},
	}})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	var keys []string
	for _, d := range domains {
		keys = append(keys, d.Key())
	}
	if want := []string{"subnet.id=subnet-1", "subnet.id=subnet-2"}; !slices.Equal(keys, want) {
		t.Fatalf("keys = %q, want %q", keys, want)
	}

	tests := []struct {
		name     string
		template string
		machine  string
		domain   string // "" for no match
		wantErr  string // a part of the WithDomain error, "" for none
	}{
		{
			name:     "a Machine in the template's zone and a listed subnet is in that domain",
			template: `{"kind":"AWSMachineProviderConfig","placement":{"availabilityZone":"us-east-1a","region":"us-east-1"},"subnet":{"id":"subnet-1"}}`,
			machine:  `{"kind":"AWSMachineProviderConfig","placement":{"availabilityZone":"us-east-1a","region":"us-east-1"},"subnet":{"id":"subnet-2"}}`,
			domain:   "subnet.id=subnet-2",
		},
		{
			name:     "a Machine in an unlisted subnet is in no domain",
			template: `{"kind":"AWSMachineProviderConfig","placement":{"availabilityZone":"us-east-1a"}}`,
			machine:  `{"kind":"AWSMachineProviderConfig","placement":{"availabilityZone":"us-east-1a"},"subnet":{"id":"subnet-9"}}`,
		},
		{
			name:     "a template without a zone cannot take a subnet-only domain",
			template: `{"kind":"AWSMachineProviderConfig","placement":{"region":"us-east-1"}}`,
			machine:  `{"kind":"AWSMachineProviderConfig","subnet":{"id":"subnet-1"}}`,
			domain:   "subnet.id=subnet-1",
			wantErr:  "placement.availabilityZone: invalid value: failure domain subnet.id=subnet-",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, matched, err := MachineDomain(configv1.AWSPlatformType, machineWith(tc.machine), domains)
			if err != nil {
				t.Fatalf("MachineDomain: %v", err)
			}
			if gotKey := map[bool]string{true: got.Key()}[matched]; gotKey != tc.domain {
				t.Errorf("domain = %q, want %q", gotKey, tc.domain)
			}
			for _, d := range domains {
				raw, err := WithDomain(cpmsWithTemplate(tc.template), d)
				if tc.wantErr != "" {
					if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
						t.Errorf("WithDomain(%s) error = %v, want one containing %q", d.Key(), err, tc.wantErr)
					}
					continue
				}
				if err != nil {
					t.Fatalf("WithDomain(%s): %v", d.Key(), err)
				}
				written := string(raw.Raw)
				if !strings.Contains(written, `"availabilityZone":"us-east-1a"`) || !strings.Contains(written, `"id":"`+*d.AWS.Subnet.ID+`"`) {
					t.Errorf("WithDomain(%s) = %s; want the template's zone and the domain's subnet", d.Key(), written)
				}
			}
		})
	}
}

func TestParityMessagesNameTheFieldAndValue(t *testing.T) {
	awsDomains, err := FromControlPlaneMachineSet(loadCPMS(t, "aws.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		platform configv1.PlatformType
		raw      string
		want     string
	}{
		{"subnet given as a string", configv1.AWSPlatformType, `{"placement":{"availabilityZone":"us-east-1a"},"subnet":"subnet-0abc"}`,
			`spec.providerSpec.value.subnet: malformed providerSpec: want an object, got a string "subnet-0abc"`},
		{"zone given as a number", configv1.AWSPlatformType, `{"placement":{"availabilityZone":5}}`,
			`spec.providerSpec.value.placement.availabilityZone: malformed providerSpec: want a string, got a number 5`},
		{"GCP zone given as a boolean", configv1.GCPPlatformType, `{"zone":true}`,
			`spec.providerSpec.value.zone: malformed providerSpec: want a string, got a boolean true`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var domains []Domain
			if tc.platform == configv1.AWSPlatformType {
				domains = awsDomains
			}
			_, _, err := MachineDomain(tc.platform, machineWith(tc.raw), domains)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestParityAssignIndexes(t *testing.T) {
	type want struct {
		index            int
		adopted, pending bool
		err              string
	}
	tests := []struct {
		name     string
		replicas int
		machines []Named
		want     map[string]want
	}{
		{
			name:     "indexed names keep their index, replacements share it",
			replicas: 3,
			machines: []Named{{Name: "c-master-0"}, {Name: "c-master-replacement-0"}, {Name: "c-master-1"}, {Name: "c-master-2"}},
			want: map[string]want{
				"c-master-0": {index: 0}, "c-master-replacement-0": {index: 0}, "c-master-1": {index: 1}, "c-master-2": {index: 2},
			},
		},
		{
			name:     "a Machine whose name carries no index is given the free one",
			replicas: 3,
			machines: []Named{{Name: "c-master-0"}, {Name: "c-master-2"}, {Name: "c-master-bootstrap"}},
			want: map[string]want{
				"c-master-0": {index: 0}, "c-master-2": {index: 2}, "c-master-bootstrap": {index: 1, adopted: true, pending: true},
			},
		},
		{
			name:     "several unindexed Machines take the free indexes by name, live ones first",
			replicas: 3,
			machines: []Named{{Name: "b"}, {Name: "a", Deleting: true}, {Name: "c"}, {Name: "m-1"}},
			want: map[string]want{
				"m-1": {index: 1}, "b": {index: 0, adopted: true, pending: true}, "c": {index: 2, adopted: true, pending: true},
				"a": {err: "cannot be adopted: every index of the 3 replicas is taken (indexes in use: 0, 1, 2)"},
			},
		},
		{
			name:     "a recorded adoption holds beside the replacement named with its index",
			replicas: 3,
			machines: []Named{{Name: "c-master-0"}, {Name: "c-master-1"}, {Name: "c-master-extra", Annotation: "2"}, {Name: "c-master-bcdfg-2"}},
			want: map[string]want{
				"c-master-0": {index: 0}, "c-master-1": {index: 1}, "c-master-extra": {index: 2, adopted: true}, "c-master-bcdfg-2": {index: 2},
			},
		},
		{
			name:     "an unindexed Machine beside a full set cannot be adopted",
			replicas: 3,
			machines: []Named{{Name: "c-master-0"}, {Name: "c-master-1"}, {Name: "c-master-2"}, {Name: "c-master-extra"}},
			want: map[string]want{
				"c-master-0": {index: 0}, "c-master-1": {index: 1}, "c-master-2": {index: 2},
				"c-master-extra": {err: `Machine c-master-extra: metadata.name: invalid value: "c-master-extra" carries no index and cannot be adopted`},
			},
		},
		{
			name:     "an annotation that is not a number is ignored",
			replicas: 3,
			machines: []Named{{Name: "c-master-0"}, {Name: "odd", Annotation: "two"}},
			want:     map[string]want{"c-master-0": {index: 0}, "odd": {index: 1, adopted: true, pending: true}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := AssignIndexes(tc.replicas, tc.machines)
			if len(got) != len(tc.want) {
				t.Errorf("%d assignments, want %d: %+v", len(got), len(tc.want), got)
			}
			for name, w := range tc.want {
				a := got[name]
				if w.err != "" {
					if a.Err == nil || !strings.Contains(a.Err.Error(), w.err) || !errors.Is(a.Err, ErrInvalid) {
						t.Errorf("%s: err = %v, want one containing %q", name, a.Err, w.err)
					}
					continue
				}
				if a.Err != nil || a.Index != w.index || a.Adopted != w.adopted || a.Pending != w.pending {
					t.Errorf("%s: got %+v, want %+v", name, a, w)
				}
			}
		})
	}
}
