package failuredomain

import (
	"bytes"
	"errors"
	"testing"

	configv1 "github.com/openshift/api/config/v1"
	machinev1 "github.com/openshift/api/machine/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

const machineObject = "Machine openshift-machine-api/master-0"

func TestMachineDomainErrors(t *testing.T) {
	awsDomains, err := FromControlPlaneMachineSet(loadCPMS(t, "aws.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	vsphereDomains, err := FromControlPlaneMachineSet(loadCPMS(t, "vsphere.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		platform configv1.PlatformType
		domains  []Domain
		raw      string
		want     error
		field    string
	}{
		{"no providerSpec", configv1.AWSPlatformType, awsDomains, "", ErrMalformed, machineProviderSpecPath},
		{"not JSON", configv1.AWSPlatformType, awsDomains, `{"placement":`, ErrMalformed, machineProviderSpecPath},
		{"trailing data", configv1.AWSPlatformType, awsDomains, `{} {}`, ErrMalformed, machineProviderSpecPath},
		{"not an object", configv1.AWSPlatformType, awsDomains, `["placement"]`, ErrMalformed, machineProviderSpecPath},
		{"null", configv1.GCPPlatformType, nil, `null`, ErrMalformed, machineProviderSpecPath},
		{"kind of another platform", configv1.AWSPlatformType, awsDomains, `{"kind":"GCPMachineProviderSpec","zone":"a"}`, ErrMalformed, machineProviderSpecPath + ".kind"},
		{"placement not an object", configv1.AWSPlatformType, awsDomains, `{"placement":"us-east-1a"}`, ErrMalformed, machineProviderSpecPath + ".placement"},
		{"zone not a string", configv1.AWSPlatformType, awsDomains, `{"placement":{"availabilityZone":5}}`, ErrMalformed, machineProviderSpecPath + ".placement.availabilityZone"},
		{"filter value not a string", configv1.AWSPlatformType, awsDomains, `{"subnet":{"filters":[{"name":"x","values":[1]}]}}`, ErrMalformed, machineProviderSpecPath + ".subnet.filters[0].values[0]"},
		{"filters not a list", configv1.AWSPlatformType, awsDomains, `{"subnet":{"filters":{}}}`, ErrMalformed, machineProviderSpecPath + ".subnet.filters"},
		{"Azure zone not a string", configv1.AzurePlatformType, nil, `{"zone":1}`, ErrMalformed, machineProviderSpecPath + ".zone"},
		{"OpenStack root volume not an object", configv1.OpenStackPlatformType, nil, `{"rootVolume":[]}`, ErrMalformed, machineProviderSpecPath + ".rootVolume"},
		{"Nutanix failure domain name not a string", configv1.NutanixPlatformType, nil, `{"failureDomain":{"name":true}}`, ErrMalformed, machineProviderSpecPath + ".failureDomain.name"},
		{"unknown platform", configv1.BareMetalPlatformType, nil, `{}`, ErrUnknownPlatform, machineProviderSpecPath},
		{"domain of another platform", configv1.GCPPlatformType, awsDomains, `{"zone":"a"}`, ErrInvalid, machineProviderSpecPath},
		{"vSphere domain without topology", configv1.VSpherePlatformType, vsphereDomains, `{"workspace":{}}`, ErrUnresolved, machineProviderSpecPath + ".workspace"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, matched, err := MachineDomain(tc.platform, machineWith(tc.raw), tc.domains)
			assertFieldError(t, err, tc.want, machineObject, tc.field)
			if matched {
				t.Errorf("matched on error")
			}
		})
	}
	t.Run("no Machine", func(t *testing.T) {
		if _, _, err := MachineDomain(configv1.AWSPlatformType, nil, awsDomains); !errors.Is(err, ErrInvalid) {
			t.Errorf("err = %v, want %v", err, ErrInvalid)
		}
	})
}

func TestMachineDomainPrefersTheMostSpecific(t *testing.T) {
	str := func(s string) *string { return &s }
	domains, err := Parse(&machinev1.FailureDomains{Platform: configv1.AWSPlatformType, AWS: &[]machinev1.AWSFailureDomain{
		{Placement: machinev1.AWSFailureDomainPlacement{AvailabilityZone: "a"}},
		{Placement: machinev1.AWSFailureDomainPlacement{AvailabilityZone: "a"}, Subnet: &machinev1.AWSResourceReference{Type: machinev1.AWSIDReferenceType, ID: str("s1")}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, raw, want string
	}{
		{"subnet listed", `{"placement":{"availabilityZone":"a"},"subnet":{"id":"s1"}}`, "a (subnet.id=s1)"},
		{"other subnet", `{"placement":{"availabilityZone":"a"},"subnet":{"id":"s2"}}`, "a"},
		{"no subnet", `{"placement":{"availabilityZone":"a"}}`, "a"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, matched, err := MachineDomain(configv1.AWSPlatformType, machineWith(tc.raw), domains)
			if err != nil || !matched || got.Key() != tc.want {
				t.Errorf("got %q, %v, %v; want %q", got.Key(), matched, err, tc.want)
			}
		})
	}
}

func cpmsWithTemplate(raw string) *machinev1.ControlPlaneMachineSet {
	cpms := &machinev1.ControlPlaneMachineSet{
		ObjectMeta: metav1.ObjectMeta{Name: "cluster", Namespace: "openshift-machine-api"},
		Spec: machinev1.ControlPlaneMachineSetSpec{Template: machinev1.ControlPlaneMachineSetTemplate{
			OpenShiftMachineV1Beta1Machine: &machinev1.OpenShiftMachineV1Beta1MachineTemplate{},
		}},
	}
	if raw != "" {
		cpms.Spec.Template.OpenShiftMachineV1Beta1Machine.Spec.ProviderSpec.Value = &runtime.RawExtension{Raw: []byte(raw)}
	}
	return cpms
}

func TestWithDomainKeepsValuesExactly(t *testing.T) {
	d := Domain{Platform: configv1.GCPPlatformType, Name: "z", GCP: &machinev1.GCPFailureDomain{Zone: "z"}}
	out, err := WithDomain(cpmsWithTemplate(`{"kind":"GCPMachineProviderSpec","big":12345678901234567890,"f":1.50,"html":"<a&b>","zone":"old"}`), d)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"big":12345678901234567890,"f":1.50,"html":"<a&b>","kind":"GCPMachineProviderSpec","zone":"z"}`
	if string(out.Raw) != want {
		t.Errorf("WithDomain = %s, want %s", out.Raw, want)
	}

	// A template given as an Object rather than Raw is read too.
	cpms := cpmsWithTemplate("")
	cpms.Spec.Template.OpenShiftMachineV1Beta1Machine.Spec.ProviderSpec.Value = &runtime.RawExtension{
		Object: &machinev1.NutanixMachineProviderConfig{TypeMeta: metav1.TypeMeta{Kind: "NutanixMachineProviderConfig"}, BootType: "UEFI"},
	}
	out, err = WithDomain(cpms, Domain{Platform: configv1.NutanixPlatformType, Name: "fd", Nutanix: &machinev1.NutanixFailureDomainReference{Name: "fd"}})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out.Raw, []byte(`"failureDomain":{"name":"fd"}`)) || !bytes.Contains(out.Raw, []byte(`"bootType":"UEFI"`)) {
		t.Errorf("WithDomain = %s, want failureDomain.name fd and bootType kept", out.Raw)
	}
}

func TestWithDomainErrors(t *testing.T) {
	gcp := Domain{Platform: configv1.GCPPlatformType, Name: "z", GCP: &machinev1.GCPFailureDomain{Zone: "z"}}
	openstack := Domain{Platform: configv1.OpenStackPlatformType, Name: "az1", OpenStack: &machinev1.OpenStackFailureDomain{
		AvailabilityZone: "az1", RootVolume: &machinev1.RootVolume{AvailabilityZone: "c1", VolumeType: "fast"},
	}}
	vsphere := Domain{Platform: configv1.VSpherePlatformType, Name: "zone-a", VSphere: &machinev1.VSphereFailureDomain{Name: "zone-a"}}
	const base = templateProviderSpecPath
	tests := []struct {
		name  string
		raw   string
		d     Domain
		want  error
		field string
	}{
		{"malformed template", `{"zone":`, gcp, ErrMalformed, base},
		{"no template providerSpec", ``, gcp, ErrMalformed, base},
		{"template of another kind", `{"kind":"AWSMachineProviderConfig"}`, gcp, ErrMalformed, base + ".kind"},
		{"unknown platform", `{}`, Domain{Platform: "Libvirt", Name: "x"}, ErrUnknownPlatform, base},
		{"incomplete domain", `{}`, Domain{Platform: configv1.GCPPlatformType, Name: "x"}, ErrInvalid, base},
		{"OpenStack root volume without one in the template", `{"kind":"OpenstackProviderSpec"}`, openstack, ErrInvalid, base + ".rootVolume"},
		{"vSphere domain without topology", `{}`, vsphere, ErrUnresolved, base + ".workspace"},
		{"Azure template subnet not a string", `{"subnet":{}}`,
			Domain{Platform: configv1.AzurePlatformType, Name: "3", Azure: &machinev1.AzureFailureDomain{Zone: "3"}},
			ErrMalformed, base + ".subnet"},
		{"vSphere workspace not an object", `{"workspace":"x"}`,
			Domain{Platform: configv1.VSpherePlatformType, Name: "zone-a", VSphere: &machinev1.VSphereFailureDomain{Name: "zone-a"}, VSphereTopology: &VSphereTopology{Server: "vc"}},
			ErrMalformed, base + ".workspace"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := WithDomain(cpmsWithTemplate(tc.raw), tc.d)
			assertFieldError(t, err, tc.want, cpmsObject, tc.field)
			if out != nil {
				t.Errorf("WithDomain returned %s with an error", out.Raw)
			}
		})
	}
	t.Run("no machine template", func(t *testing.T) {
		cpms := cpmsWithTemplate("")
		cpms.Spec.Template.OpenShiftMachineV1Beta1Machine = nil
		_, err := WithDomain(cpms, gcp)
		assertFieldError(t, err, ErrInvalid, cpmsObject, "spec.template.machines_v1beta1_machine_openshift_io")
	})
}

// fuzzDomains are the testdata domains of every platform, vSphere resolved.
func fuzzDomains(t testing.TB) map[configv1.PlatformType][]Domain {
	out := map[configv1.PlatformType][]Domain{}
	for _, file := range []string{"aws.yaml", "azure.yaml", "gcp.yaml", "openstack.yaml", "vsphere.yaml", "nutanix.yaml"} {
		domains, err := FromControlPlaneMachineSet(loadCPMS(t, file))
		if err != nil {
			t.Fatal(err)
		}
		for i := range domains {
			if domains[i].Platform == configv1.VSpherePlatformType {
				domains[i].VSphereTopology = &VSphereTopology{Server: "vc", Datacenter: "dc", Datastore: domains[i].Name}
			}
		}
		out[domains[0].Platform] = domains
	}
	return out
}

var fuzzPlatforms = []configv1.PlatformType{
	configv1.AWSPlatformType, configv1.AzurePlatformType, configv1.GCPPlatformType,
	configv1.OpenStackPlatformType, configv1.VSpherePlatformType, configv1.NutanixPlatformType,
}

// FuzzProviderSpec feeds arbitrary bytes to the providerSpec reader and
// writer. Neither may panic, and whatever WithDomain writes, MachineDomain
// must read back as the same domain.
func FuzzProviderSpec(f *testing.F) {
	for _, seed := range []string{
		``, `{`, `null`, `[]`, `"x"`, `{}`, `{} {}`,
		`{"placement":{"availabilityZone":"us-east-1a"},"subnet":{"filters":[{"name":"tag:Name","values":["demo-subnet-private-us-east-1a"]}]}}`,
		`{"placement":null,"subnet":{"id":7,"filters":"x"}}`,
		`{"subnet":{"filters":[{"name":1},null]}}`,
		`{"zone":"1","subnet":"demo-master-subnet-1"}`,
		`{"availabilityZone":"nova-az1","rootVolume":{"availabilityZone":"cinder-az1","volumeType":"fast-az1"}}`,
		`{"rootVolume":{"volumeType":[]}}`,
		`{"workspace":{"server":"vc","datacenter":"dc","datastore":"zone-a"}}`,
		`{"failureDomain":{"name":"fd-pe1"}}`,
		`{"failureDomain":"fd-pe1","kind":"NutanixMachineProviderConfig"}`,
		`{"kind":5}`,
		"{\"a\":\"\xff\"}",
	} {
		for p := range fuzzPlatforms {
			f.Add(uint8(p), []byte(seed))
		}
	}
	domains := fuzzDomains(f)
	f.Fuzz(func(t *testing.T, p uint8, raw []byte) {
		platform := fuzzPlatforms[int(p)%len(fuzzPlatforms)]
		ds := domains[platform]
		mc := machineWith(string(raw))
		if _, _, err := MachineDomain(platform, mc, ds); err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Object != machineObject {
				t.Fatalf("MachineDomain error %v does not name the Machine", err)
			}
		}
		d := ds[int(p)/len(fuzzPlatforms)%len(ds)]
		out, err := WithDomain(cpmsWithTemplate(string(raw)), d)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Object != cpmsObject {
				t.Fatalf("WithDomain error %v does not name the ControlPlaneMachineSet", err)
			}
			return
		}
		mc.Spec.ProviderSpec.Value = out
		got, matched, err := MachineDomain(platform, mc, ds)
		if err != nil || !matched || got.Key() != d.Key() {
			t.Fatalf("WithDomain(%s, %s) = %s, read back as %q, %v, %v", raw, d.Key(), out.Raw, got.Key(), matched, err)
		}
	})
}
