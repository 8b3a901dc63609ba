package failuredomain

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	configv1 "github.com/openshift/api/config/v1"
	machinev1 "github.com/openshift/api/machine/v1"
	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

const cpmsObject = "ControlPlaneMachineSet openshift-machine-api/cluster"

func loadCPMS(t testing.TB, file string) *machinev1.ControlPlaneMachineSet {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	cpms := &machinev1.ControlPlaneMachineSet{}
	if err := yaml.Unmarshal(data, cpms); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return cpms
}

func machineWith(raw string) *machinev1beta1.Machine {
	mc := &machinev1beta1.Machine{ObjectMeta: metav1.ObjectMeta{Name: "master-0", Namespace: "openshift-machine-api"}}
	if raw != "" {
		mc.Spec.ProviderSpec.Value = &runtime.RawExtension{Raw: []byte(raw)}
	}
	return mc
}

func decodeJSON(t testing.TB, raw []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decoding %s: %v", raw, err)
	}
	return v
}

// flatten maps every leaf of a JSON value to its path, like
// "subnet.filters[0].values[1]"; empty objects and lists are leaves too.
func flatten(v any, path string, out map[string]string) {
	join := func(key string) string {
		if path == "" {
			return key
		}
		return path + "." + key
	}
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 0 {
			out[path] = "{}"
		}
		for k, e := range x {
			flatten(e, join(k), out)
		}
	case []any:
		if len(x) == 0 {
			out[path] = "[]"
		}
		for i, e := range x {
			flatten(e, fmt.Sprintf("%s[%d]", path, i), out)
		}
	default:
		out[path] = fmt.Sprintf("%T %v", v, v)
	}
}

func flat(t testing.TB, raw []byte) map[string]string {
	out := map[string]string{}
	flatten(decodeJSON(t, raw), "", out)
	return out
}

func TestPlatforms(t *testing.T) {
	vsphereTopology := map[string]VSphereTopology{
		"zone-a": {Server: "vc1.example.com", Datacenter: "dc1", Datastore: "/dc1/datastore/ds-a", ResourcePool: "/dc1/host/cluster-a/Resources", Folder: "/dc1/vm/demo"},
		"zone-b": {Server: "vc1.example.com", Datacenter: "dc1", Datastore: "/dc1/datastore/ds-b", ResourcePool: "/dc1/host/cluster-b/Resources", Folder: "/dc1/vm/demo"},
		"zone-c": {Server: "vc2.example.com", Datacenter: "dc2", Datastore: "/dc2/datastore/ds-c", ResourcePool: "/dc2/host/cluster-c/Resources"},
	}
	tests := []struct {
		file     string
		platform configv1.PlatformType
		keys     []string
		// changes lists the paths WithDomain may change; anything under them.
		changes []string
		// written are leaves WithDomain must set when writing the first domain.
		written map[string]string
		// machine is a Machine's providerSpec and inDomain the Key of the
		// domain it is in; unmatched is one in no listed domain.
		machine   string
		inDomain  string
		unmatched string
	}{
		{
			file:     "aws.yaml",
			platform: configv1.AWSPlatformType,
			keys: []string{
				"us-east-1a (subnet.filters=tag:Name=demo-subnet-private-us-east-1a)",
				"us-east-1b (subnet.id=subnet-0bbb)",
				"us-east-1c (subnet.arn=arn:aws:ec2:us-east-1:123456789012:subnet/subnet-0ccc)",
			},
			changes: []string{"placement.availabilityZone", "subnet.id", "subnet.arn", "subnet.filters"},
			written: map[string]string{
				"placement.availabilityZone":    "string us-east-1a",
				"subnet.filters[0].name":        "string tag:Name",
				"subnet.filters[0].values[0]":   "string demo-subnet-private-us-east-1a",
				"placement.region":              "string us-east-1",
				"subnet.notYetKnownSubnetField": "string kept",
			},
			machine:   `{"kind":"AWSMachineProviderConfig","placement":{"availabilityZone":"us-east-1b","region":"us-east-1"},"subnet":{"id":"subnet-0bbb"},"other":1}`,
			inDomain:  "us-east-1b (subnet.id=subnet-0bbb)",
			unmatched: `{"kind":"AWSMachineProviderConfig","placement":{"availabilityZone":"us-east-1b"},"subnet":{"id":"subnet-0other"}}`,
		},
		{
			file:     "azure.yaml",
			platform: configv1.AzurePlatformType,
			keys:     []string{"1 (subnet=demo-master-subnet-1)", "2", "3"},
			changes:  []string{"zone", "subnet"},
			written:  map[string]string{"zone": "string 1", "subnet": "string demo-master-subnet-1", "vnet": "string demo-vnet"},
			machine:  `{"kind":"AzureMachineProviderSpec","zone":"3","subnet":"demo-master-subnet"}`,
			inDomain: "3",
			// Zone 1 is listed only with its own subnet.
			unmatched: `{"kind":"AzureMachineProviderSpec","zone":"1","subnet":"demo-master-subnet"}`,
		},
		{
			file:      "gcp.yaml",
			platform:  configv1.GCPPlatformType,
			keys:      []string{"us-central1-a", "us-central1-b", "us-central1-f"},
			changes:   []string{"zone"},
			written:   map[string]string{"zone": "string us-central1-a", "region": "string us-central1"},
			machine:   `{"kind":"GCPMachineProviderSpec","zone":"us-central1-f","region":"us-central1"}`,
			inDomain:  "us-central1-f",
			unmatched: `{"kind":"GCPMachineProviderSpec","zone":"us-central1-c"}`,
		},
		{
			file:     "openstack.yaml",
			platform: configv1.OpenStackPlatformType,
			keys: []string{
				"nova-az1 (rootVolume.availabilityZone=cinder-az1, rootVolume.volumeType=fast-az1)",
				"nova-az2 (rootVolume.availabilityZone=cinder-az2, rootVolume.volumeType=fast-az2)",
				"nova-az3 (rootVolume.availabilityZone=cinder-az3, rootVolume.volumeType=fast-az3)",
			},
			changes: []string{"availabilityZone", "rootVolume.availabilityZone", "rootVolume.volumeType"},
			written: map[string]string{
				"availabilityZone":            "string nova-az1",
				"rootVolume.availabilityZone": "string cinder-az1",
				"rootVolume.volumeType":       "string fast-az1",
				"rootVolume.diskSize":         "json.Number 100",
			},
			machine:   `{"kind":"OpenstackProviderSpec","availabilityZone":"nova-az2","rootVolume":{"availabilityZone":"cinder-az2","volumeType":"fast-az2","diskSize":100}}`,
			inDomain:  "nova-az2 (rootVolume.availabilityZone=cinder-az2, rootVolume.volumeType=fast-az2)",
			unmatched: `{"kind":"OpenstackProviderSpec","availabilityZone":"nova-az2","rootVolume":{"availabilityZone":"cinder-az1","volumeType":"fast-az2"}}`,
		},
		{
			file:     "vsphere.yaml",
			platform: configv1.VSpherePlatformType,
			keys:     []string{"zone-a", "zone-b", "zone-c"},
			changes:  []string{"workspace.server", "workspace.datacenter", "workspace.datastore", "workspace.resourcePool", "workspace.folder"},
			written: map[string]string{
				"workspace.server":       "string vc1.example.com",
				"workspace.datacenter":   "string dc1",
				"workspace.datastore":    "string /dc1/datastore/ds-a",
				"workspace.resourcePool": "string /dc1/host/cluster-a/Resources",
				"workspace.folder":       "string /dc1/vm/demo",
				"workspace.vmGroup":      "string demo-vm-group",
			},
			machine:   `{"kind":"VSphereMachineProviderSpec","workspace":{"server":"vc1.example.com","datacenter":"dc1","datastore":"/dc1/datastore/ds-b","resourcePool":"/dc1/host/cluster-b/Resources","folder":"/dc1/vm/other"}}`,
			inDomain:  "zone-b",
			unmatched: `{"kind":"VSphereMachineProviderSpec","workspace":{"server":"vc1.example.com","datacenter":"dc1","datastore":"/dc1/datastore/ds-x","resourcePool":"/dc1/host/cluster-b/Resources"}}`,
		},
		{
			file:     "nutanix.yaml",
			platform: configv1.NutanixPlatformType,
			keys:     []string{"fd-pe1", "fd-pe2", "fd-pe3"},
			changes:  []string{"failureDomain.name"},
			written: map[string]string{
				"failureDomain.name":              "string fd-pe1",
				"failureDomain.futureNestedField": "string kept",
			},
			machine:   `{"kind":"NutanixMachineProviderConfig","failureDomain":{"name":"fd-pe3"}}`,
			inDomain:  "fd-pe3",
			unmatched: `{"kind":"NutanixMachineProviderConfig","cluster":{"type":"uuid","uuid":"x"}}`,
		},
	}
	for _, tc := range tests {
		t.Run(string(tc.platform), func(t *testing.T) {
			cpms := loadCPMS(t, tc.file)
			domains, err := FromControlPlaneMachineSet(cpms)
			if err != nil {
				t.Fatalf("FromControlPlaneMachineSet: %v", err)
			}
			var keys []string
			for i, d := range domains {
				keys = append(keys, d.Key())
				if d.Platform != tc.platform {
					t.Errorf("domain %s platform = %s, want %s", d.Key(), d.Platform, tc.platform)
				}
				if topo, ok := vsphereTopology[d.Name]; ok && tc.platform == configv1.VSpherePlatformType {
					domains[i].VSphereTopology = &topo
				}
			}
			if !slices.Equal(keys, tc.keys) {
				t.Fatalf("keys = %q, want %q", keys, tc.keys)
			}

			template := cpms.Spec.Template.OpenShiftMachineV1Beta1Machine.Spec.ProviderSpec.Value
			before := bytes.Clone(template.Raw)
			templateLeaves := flat(t, template.Raw)
			for i, d := range domains {
				out, err := WithDomain(cpms, d)
				if err != nil {
					t.Fatalf("WithDomain(%s): %v", d.Key(), err)
				}
				if !bytes.Equal(template.Raw, before) {
					t.Fatalf("WithDomain(%s) changed the template", d.Key())
				}
				leaves := flat(t, out.Raw)
				changeable := func(path string) bool {
					return slices.ContainsFunc(tc.changes, func(c string) bool {
						return path == c || strings.HasPrefix(path, c+".") || strings.HasPrefix(path, c+"[")
					})
				}
				for path, v := range templateLeaves {
					if !changeable(path) && leaves[path] != v {
						t.Errorf("WithDomain(%s): %s = %q, want it kept as %q", d.Key(), path, leaves[path], v)
					}
				}
				for path := range leaves {
					if _, ok := templateLeaves[path]; !ok && !changeable(path) {
						t.Errorf("WithDomain(%s) added %s", d.Key(), path)
					}
				}
				if i == 0 {
					for path, want := range tc.written {
						if leaves[path] != want {
							t.Errorf("WithDomain(%s): %s = %q, want %q", d.Key(), path, leaves[path], want)
						}
					}
				}

				mc := machineWith("")
				mc.Spec.ProviderSpec.Value = out
				got, matched, err := MachineDomain(tc.platform, mc, domains)
				if err != nil || !matched || got.Key() != d.Key() {
					t.Errorf("MachineDomain(WithDomain(%s)) = %q, %v, %v; want it back", d.Key(), got.Key(), matched, err)
				}
			}

			got, matched, err := MachineDomain(tc.platform, machineWith(tc.machine), domains)
			if err != nil || !matched || got.Key() != tc.inDomain {
				t.Errorf("MachineDomain(machine) = %q, %v, %v; want %q", got.Key(), matched, err, tc.inDomain)
			}
			got, matched, err = MachineDomain(tc.platform, machineWith(tc.unmatched), domains)
			if err != nil || matched {
				t.Errorf("MachineDomain(unmatched) = %q, %v, %v; want no match and no error", got.Key(), matched, err)
			}
		})
	}
}

func TestParseValid(t *testing.T) {
	id := func(s string) *string { return &s }
	tests := []struct {
		name string
		fds  *machinev1.FailureDomains
		keys []string
	}{
		{name: "no failure domains", fds: nil},
		{name: "empty platform and no lists", fds: &machinev1.FailureDomains{}},
		{name: "empty list", fds: &machinev1.FailureDomains{Platform: configv1.GCPPlatformType, GCP: &[]machinev1.GCPFailureDomain{}}},
		{
			name: "same zone, different subnets, ordered by zone then subnet",
			fds: &machinev1.FailureDomains{Platform: configv1.AWSPlatformType, AWS: &[]machinev1.AWSFailureDomain{
				{Placement: machinev1.AWSFailureDomainPlacement{AvailabilityZone: "b"}},
				{Placement: machinev1.AWSFailureDomainPlacement{AvailabilityZone: "a"}, Subnet: &machinev1.AWSResourceReference{Type: machinev1.AWSIDReferenceType, ID: id("s2")}},
				{Placement: machinev1.AWSFailureDomainPlacement{AvailabilityZone: "a"}, Subnet: &machinev1.AWSResourceReference{Type: machinev1.AWSIDReferenceType, ID: id("s1")}},
				{Placement: machinev1.AWSFailureDomainPlacement{AvailabilityZone: "a"}},
			}},
			keys: []string{"a", "a (subnet.id=s1)", "a (subnet.id=s2)", "b"},
		},
		{
			name: "OpenStack without compute zone is named by its root volume",
			fds: &machinev1.FailureDomains{Platform: configv1.OpenStackPlatformType, OpenStack: []machinev1.OpenStackFailureDomain{
				{RootVolume: &machinev1.RootVolume{AvailabilityZone: "cinder-1", VolumeType: "fast"}},
				{AvailabilityZone: "cinder-1"},
				{RootVolume: &machinev1.RootVolume{VolumeType: "slow"}},
			}},
			keys: []string{
				"cinder-1",
				"cinder-1 (availabilityZone=, rootVolume.availabilityZone=cinder-1, rootVolume.volumeType=fast)",
				"slow (availabilityZone=, rootVolume.volumeType=slow)",
			},
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

func TestParseErrors(t *testing.T) {
	aws := func(zone string, subnet *machinev1.AWSResourceReference) machinev1.AWSFailureDomain {
		return machinev1.AWSFailureDomain{Placement: machinev1.AWSFailureDomainPlacement{AvailabilityZone: zone}, Subnet: subnet}
	}
	tests := []struct {
		name  string
		fds   *machinev1.FailureDomains
		want  error
		field string
	}{
		{
			name:  "unknown platform",
			fds:   &machinev1.FailureDomains{Platform: configv1.BareMetalPlatformType},
			want:  ErrUnknownPlatform,
			field: failureDomainsPath + ".platform",
		},
		{
			name:  "platform with no list",
			fds:   &machinev1.FailureDomains{Platform: configv1.AWSPlatformType},
			want:  ErrMissingList,
			field: failureDomainsPath + ".aws",
		},
		{
			name:  "vSphere platform with no list",
			fds:   &machinev1.FailureDomains{Platform: configv1.VSpherePlatformType},
			want:  ErrMissingList,
			field: failureDomainsPath + ".vsphere",
		},
		{
			name: "list for another platform",
			fds: &machinev1.FailureDomains{Platform: configv1.AWSPlatformType,
				AWS: &[]machinev1.AWSFailureDomain{aws("a", nil)},
				GCP: &[]machinev1.GCPFailureDomain{{Zone: "a"}}},
			want:  ErrOtherPlatformList,
			field: failureDomainsPath + ".gcp",
		},
		{
			name:  "list with no platform",
			fds:   &machinev1.FailureDomains{Nutanix: []machinev1.NutanixFailureDomainReference{{Name: "a"}}},
			want:  ErrOtherPlatformList,
			field: failureDomainsPath + ".nutanix",
		},
		{
			name:  "empty GCP zone",
			fds:   &machinev1.FailureDomains{Platform: configv1.GCPPlatformType, GCP: &[]machinev1.GCPFailureDomain{{Zone: "a"}, {Zone: ""}}},
			want:  ErrEmptyName,
			field: failureDomainsPath + ".gcp[1].zone",
		},
		{
			name:  "empty AWS zone",
			fds:   &machinev1.FailureDomains{Platform: configv1.AWSPlatformType, AWS: &[]machinev1.AWSFailureDomain{aws("", nil)}},
			want:  ErrEmptyName,
			field: failureDomainsPath + ".aws[0].placement.availabilityZone",
		},
		{
			name:  "empty vSphere name",
			fds:   &machinev1.FailureDomains{Platform: configv1.VSpherePlatformType, VSphere: []machinev1.VSphereFailureDomain{{Name: ""}}},
			want:  ErrEmptyName,
			field: failureDomainsPath + ".vsphere[0].name",
		},
		{
			name:  "empty OpenStack domain",
			fds:   &machinev1.FailureDomains{Platform: configv1.OpenStackPlatformType, OpenStack: []machinev1.OpenStackFailureDomain{{AvailabilityZone: "a"}, {}}},
			want:  ErrEmptyName,
			field: failureDomainsPath + ".openstack[1].availabilityZone",
		},
		{
			name: "AWS subnet of type ID without an id",
			fds: &machinev1.FailureDomains{Platform: configv1.AWSPlatformType, AWS: &[]machinev1.AWSFailureDomain{
				aws("a", &machinev1.AWSResourceReference{Type: machinev1.AWSIDReferenceType}),
			}},
			want:  ErrInvalid,
			field: failureDomainsPath + ".aws[0].subnet.id",
		},
		{
			name: "AWS subnet of unknown type",
			fds: &machinev1.FailureDomains{Platform: configv1.AWSPlatformType, AWS: &[]machinev1.AWSFailureDomain{
				aws("a", &machinev1.AWSResourceReference{Type: "Name"}),
			}},
			want:  ErrInvalid,
			field: failureDomainsPath + ".aws[0].subnet.type",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cpms := &machinev1.ControlPlaneMachineSet{
				ObjectMeta: metav1.ObjectMeta{Name: "cluster", Namespace: "openshift-machine-api"},
				Spec: machinev1.ControlPlaneMachineSetSpec{Template: machinev1.ControlPlaneMachineSetTemplate{
					OpenShiftMachineV1Beta1Machine: &machinev1.OpenShiftMachineV1Beta1MachineTemplate{FailureDomains: tc.fds},
				}},
			}
			domains, err := FromControlPlaneMachineSet(cpms)
			assertFieldError(t, err, tc.want, cpmsObject, tc.field)
			if domains != nil {
				t.Errorf("domains = %v, want none on error", domains)
			}
			// Parse reports the same, without the object.
			_, err = Parse(tc.fds)
			assertFieldError(t, err, tc.want, "", tc.field)
		})
	}

	t.Run("no machine template", func(t *testing.T) {
		cpms := &machinev1.ControlPlaneMachineSet{ObjectMeta: metav1.ObjectMeta{Name: "cluster", Namespace: "openshift-machine-api"}}
		_, err := FromControlPlaneMachineSet(cpms)
		assertFieldError(t, err, ErrInvalid, cpmsObject, "spec.template.machines_v1beta1_machine_openshift_io")
	})
}

// assertFieldError checks that err wraps want and that a *FieldError of that
// kind names object and field, and that its text names them too.
func assertFieldError(t *testing.T, err, want error, object, field string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("err = %v, want %v", err, want)
	}
	var all []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		all = j.Unwrap()
	} else {
		all = []error{err}
	}
	for _, e := range all {
		var fe *FieldError
		if errors.As(e, &fe) && errors.Is(fe, want) {
			if fe.Object != object || fe.Field != field {
				t.Errorf("error names %q at %q, want %q at %q", fe.Object, fe.Field, object, field)
			}
			if !strings.Contains(err.Error(), object) || !strings.Contains(err.Error(), field) {
				t.Errorf("error text %q does not name %q and %q", err, object, field)
			}
			return
		}
	}
	t.Errorf("err = %v has no *FieldError for %v", err, want)
}

// parsedKeys parses fds and returns the domains' keys in order.
func parsedKeys(t *testing.T, fds *machinev1.FailureDomains) []string {
	t.Helper()
	domains, err := Parse(fds)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	var keys []string
	for _, d := range domains {
		keys = append(keys, d.Key())
	}
	return keys
}
