package failuredomain

import (
	"errors"
	"fmt"
	"maps"
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

// operatorMapping is the ControlPlaneMachineSet operator's index to failure
// domain mapping (mapMachineIndexesToFailureDomains in
// pkg/machineproviders/providers/openshift/machine/v1beta1/mapping.go of
// openshift/cluster-control-plane-machine-set-operator), for one Machine per
// index: machines maps an index to its Machine's domain and deletingIndexes
// holds the indexes whose Machine is deleting.
func operatorMapping(replicas int, domains []string, machines map[int]string, deletingIndexes map[int]bool) map[int]string {
	sortedKeys := func(m map[int]string) []int {
		var out []int
		for i := range m {
			out = append(out, i)
		}
		slices.Sort(out)
		return out
	}

	// createBaseFailureDomainMapping.
	present := map[string]bool{}
	for _, d := range machines {
		present[d] = true
	}
	sorted := slices.Clone(domains)
	slices.Sort(sorted)
	slices.SortStableFunc(sorted, func(x, y string) int {
		switch {
		case present[x] && !present[y]:
			return -1
		case present[y] && !present[x]:
			return 1
		}
		return 0
	})
	base := map[int]string{}
	for i := range max(replicas, len(machines)) {
		base[i] = sorted[i%len(sorted)]
	}

	// reconcileMappings.
	out := maps.Clone(machines)
	candidates := maps.Clone(base)
	var nonPreferred, nonReconciled []int
	for _, i := range sortedKeys(candidates) {
		if _, ok := out[i]; !ok {
			nonPreferred = append(nonPreferred, i)
		}
	}
	for _, i := range sortedKeys(out) {
		if _, ok := candidates[i]; !ok {
			nonReconciled = append(nonReconciled, i)
		}
	}
	for _, i := range nonPreferred {
		if len(nonReconciled) == 0 {
			break
		}
		candidates[nonReconciled[0]] = candidates[i]
		delete(candidates, i)
		nonReconciled = nonReconciled[1:]
	}
	unmatched := map[int]bool{}
	for i := range candidates {
		unmatched[i] = true
	}
	use := func(i int) { delete(unmatched, i); delete(candidates, i) }

	for _, idy := range sortedKeys(out) {
		if deletingIndexes[idy] {
			continue
		}
		for _, idx := range sortedKeys(candidates) {
			if out[idy] == candidates[idx] {
				candidates[idx], candidates[idy] = candidates[idy], candidates[idx]
				use(idy)
				break
			}
		}
	}

	unique := map[string]bool{}
	for _, d := range base {
		unique[d] = true
	}
	maxPer := (len(base) + len(unique) - 1) / len(unique)
	count := func(d string) int {
		c := 0
		for _, e := range out {
			if e == d {
				c++
			}
		}
		return c
	}
	var walk []int
	for i := range unmatched {
		walk = append(walk, i)
	}
	slices.Sort(walk)
	for _, idx := range walk {
		d, exists := out[idx]
		switch {
		case !exists, !slices.Contains(domains, d), count(d) > maxPer:
			out[idx] = candidates[idx]
		}
		use(idx)
	}
	return out
}

// TestParityRebalanceMovesWhatTheOperatorMoves: in an over-used domain the
// operator walks the indexes its slots leave unmatched in ascending order and
// moves them while the domain holds more than ceil(n/k), so the lowest of
// them moves and the highest that still fit stay; each goes to the domain of
// the slot left at its index. Place moves the same indexes to the same
// domains.
func TestParityRebalanceMovesWhatTheOperatorMoves(t *testing.T) {
	tests := []struct {
		name     string
		replicas int
		domains  []string
		layout   string // the domain of the Machine at each index, "-" for none
		deleting []int
		want     string // the operator's mapping, worked out by hand
	}{
		{"5 replicas, c over-used: index 1 moves to b", 5, []string{"a", "b", "c"}, "c c c a b", nil, "c b c a b"},
		{"3 replicas, 3 domains, all in one", 3, []string{"a", "b", "c"}, "a a a", nil, "a b c"},
		{"3 replicas, 3 domains, all in the last", 3, []string{"a", "b", "c"}, "c c c", nil, "c a b"},
		{"5 replicas, 3 domains, all in one", 5, []string{"a", "b", "c"}, "b b b b b", nil, "b b c a a"},
		{"5 replicas, 3 domains, four in a", 5, []string{"a", "b", "c"}, "a a a a b", nil, "a a c b b"},
		{"5 replicas, 2 domains, all in b", 5, []string{"a", "b"}, "b b b b b", nil, "b b b a a"},
		{"6 replicas, 3 domains, all in one", 6, []string{"a", "b", "c"}, "c c c c c c", nil, "c c b a a b"},
		{"6 replicas, 3 domains, four in a and two in b", 6, []string{"a", "b", "c"}, "a a b a a b", nil, "a a b c c b"},
		{"6 replicas, 3 domains, already balanced out of order", 6, []string{"a", "b", "c"}, "c b a a c b", nil, "c b a a c b"},
		{"domain c removed from 3", 3, []string{"a", "b"}, "a b c", nil, "a b a"},
		{"domain a removed from 5", 5, []string{"b", "c"}, "a b c a c", nil, "b b c b c"},
		{"domain a removed from 5, the rest in c", 5, []string{"b", "c"}, "a c c a c", nil, "b c c b c"},
		{"domain c added to 3 in a, b, a", 3, []string{"a", "b", "c"}, "a b a", nil, "a b c"},
		{"domains d and e added to 5 in a, b, c", 5, []string{"a", "b", "c", "d", "e"}, "a b c a b", nil, "a b c d e"},
		{"domain c added to 5 in a and b", 5, []string{"a", "b", "c"}, "a a a b b", nil, "a a c b b"},
		{"domain c added to 6 in a and b", 6, []string{"a", "b", "c"}, "a b a b a b", nil, "a b a b c c"},
		{"a missing index and an over-used domain", 5, []string{"a", "b", "c"}, "a a a a -", nil, "a a c b b"},
		{"a deleting Machine in the over-used domain", 3, []string{"a", "b", "c"}, "a a a", []int{0}, "b a c"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			layout := strings.Fields(tc.layout)
			machines := map[int]string{}
			deleting := map[int]bool{}
			in := Input{Replicas: tc.replicas, Domains: tc.domains}
			for i, d := range layout {
				if d == "-" {
					continue
				}
				machines[i] = d
				mc := Machine{Name: fmt.Sprintf("m-%d", i), Index: i, Domain: d, Ready: true}
				if slices.Contains(tc.deleting, i) {
					mc.Deleting = true
					deleting[i] = true
				}
				in.Machines = append(in.Machines, mc)
			}
			ref := operatorMapping(tc.replicas, tc.domains, machines, deleting)
			var refList []string
			for i := range tc.replicas {
				refList = append(refList, ref[i])
			}
			if want := strings.Fields(tc.want); !slices.Equal(refList, want) {
				t.Fatalf("reference mapping = %q, want %q", refList, want)
			}
			got, err := Place(in)
			if err != nil {
				t.Fatalf("Place: %v", err)
			}
			if g := targetList(got); !slices.Equal(g, refList) {
				t.Errorf("Place targets = %q, the operator maps %q", g, refList)
			}
		})
	}
}

// TestParityRebalanceAgreesWithTheOperator compares Place with the operator
// on every layout of 3 and 5 Machines, one per index, over up to 3 listed
// domains and one that is no longer listed: with at most 3 domains the
// operator's bound of ceil(n/k) keeps its layout balanced.
func TestParityRebalanceAgreesWithTheOperator(t *testing.T) {
	for _, replicas := range []int{3, 5} {
		for k := 1; k <= 3; k++ {
			domains := []string{"a", "b", "c"}[:k]
			pool := append(slices.Clone(domains), "gone")
			total := 1
			for range replicas {
				total *= len(pool)
			}
			for code := range total {
				machines := map[int]string{}
				in := Input{Replicas: replicas, Domains: domains}
				for i, c := 0, code; i < replicas; i, c = i+1, c/len(pool) {
					d := pool[c%len(pool)]
					machines[i] = d
					in.Machines = append(in.Machines, m(fmt.Sprintf("m-%d", i), i, d))
				}
				ref := operatorMapping(replicas, domains, machines, nil)
				got, err := Place(in)
				if err != nil {
					t.Fatalf("Place(%+v): %v", in, err)
				}
				for i := range replicas {
					if got.Targets[i] != ref[i] {
						t.Errorf("%d replicas in %q, layout %v: Place targets %q, the operator maps %v", replicas, domains, machines, targetList(got), ref)
						break
					}
				}
			}
		}
	}
}
