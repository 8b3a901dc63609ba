package failuredomain

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	configv1 "github.com/openshift/api/config/v1"
	machinev1 "github.com/openshift/api/machine/v1"
	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	"k8s.io/apimachinery/pkg/runtime"
)

const (
	machineProviderSpecPath  = "spec.providerSpec.value"
	templateProviderSpecPath = "spec.template.machines_v1beta1_machine_openshift_io.spec.providerSpec.value"
)

// providerKinds is the kind a providerSpec has on each platform. A
// providerSpec whose kind is set to something else is refused.
var providerKinds = map[configv1.PlatformType]string{
	configv1.AWSPlatformType:       "AWSMachineProviderConfig",
	configv1.AzurePlatformType:     "AzureMachineProviderSpec",
	configv1.GCPPlatformType:       "GCPMachineProviderSpec",
	configv1.OpenStackPlatformType: "OpenstackProviderSpec",
	configv1.VSpherePlatformType:   "VSphereMachineProviderSpec",
	configv1.NutanixPlatformType:   "NutanixMachineProviderConfig",
}

// MachineDomain reports which of domains the Machine's providerSpec places it
// in. A providerSpec that matches none of them gives matched == false and no
// error: the Machine sits outside every listed domain. A domain matches when
// every field it sets equals the providerSpec's; fields it leaves empty (an
// AWS domain without a subnet, say) are not compared. When several match, the
// one that sets the most fields wins, then the first by Key.
//
// Errors, which name the Machine and the field, are for a providerSpec that
// is not JSON or has the wrong shape or kind, an unsupported platform, a
// domain for another platform, and vSphere domains without a topology.
func MachineDomain(platform configv1.PlatformType, machine *machinev1beta1.Machine, domains []Domain) (Domain, bool, error) {
	if machine == nil {
		return Domain{}, false, fieldErr("", "", ErrInvalid, "no Machine")
	}
	object := describe("Machine", machine.Namespace, machine.Name)
	spec, err := decodeProviderSpec(object, machineProviderSpecPath, platform, machine.Spec.ProviderSpec.Value)
	if err != nil {
		return Domain{}, false, err
	}
	for _, d := range domains {
		if err := checkDomain(object, machineProviderSpecPath, platform, d); err != nil {
			return Domain{}, false, err
		}
	}
	r := reader{obj: object, base: machineProviderSpecPath}
	match := r.matcher(platform, spec)
	if r.err != nil {
		return Domain{}, false, r.err
	}

	best, found := Domain{}, false
	for _, d := range sortedDomains(domains) {
		if match(d) && (!found || d.specificity() > best.specificity()) {
			best, found = d, true
		}
	}
	return best, found, nil
}

// WithDomain returns a copy of the ControlPlaneMachineSet template's
// providerSpec with d written into it, for a new Machine. The template is
// handled as generic JSON, so every field this package does not know is kept
// as it was; only the fields below change. Fields d leaves empty keep the
// template's value.
//
//	AWS        placement.availabilityZone; subnet (id, arn or filters,
//	           replacing whichever the template had)
//	Azure      zone; subnet
//	GCP        zone
//	OpenStack  availabilityZone; rootVolume.availabilityZone and
//	           rootVolume.volumeType (the template must have a rootVolume)
//	VSphere    workspace.server, datacenter, datastore, resourcePool, folder
//	           from d.VSphereTopology, which must be set
//	Nutanix    failureDomain.name
func WithDomain(cpms *machinev1.ControlPlaneMachineSet, d Domain) (*runtime.RawExtension, error) {
	if cpms == nil {
		return nil, fieldErr("", "", ErrInvalid, "no ControlPlaneMachineSet")
	}
	object := describe("ControlPlaneMachineSet", cpms.Namespace, cpms.Name)
	tmpl := cpms.Spec.Template.OpenShiftMachineV1Beta1Machine
	if tmpl == nil {
		return nil, fieldErr(object, "spec.template.machines_v1beta1_machine_openshift_io", ErrInvalid, "the machine template is not set")
	}
	base := templateProviderSpecPath
	spec, err := decodeProviderSpec(object, base, d.Platform, tmpl.Spec.ProviderSpec.Value)
	if err != nil {
		return nil, err
	}
	if err := checkDomain(object, base, d.Platform, d); err != nil {
		return nil, err
	}
	w := reader{obj: object, base: base}

	switch d.Platform {
	case configv1.AWSPlatformType:
		placement := w.objectOrNew(spec, "placement")
		if zone := d.AWS.Placement.AvailabilityZone; zone != "" {
			placement["availabilityZone"] = zone
		} else if w.str(placement, "placement", "availabilityZone") == "" && w.err == nil {
			return nil, fieldErr(object, base+".placement.availabilityZone", ErrInvalid,
				"failure domain %s gives only a subnet, so the template must give the zone, and it gives none", d.Key())
		}
		if s := d.AWS.Subnet; s != nil {
			subnet := w.objectOrNew(spec, "subnet")
			delete(subnet, "id")
			delete(subnet, "arn")
			delete(subnet, "filters")
			switch s.Type {
			case machinev1.AWSIDReferenceType:
				subnet["id"] = deref(s.ID)
			case machinev1.AWSARNReferenceType:
				subnet["arn"] = deref(s.ARN)
			case machinev1.AWSFiltersReferenceType:
				var fs []any
				if s.Filters != nil {
					for _, f := range *s.Filters {
						m := map[string]any{"name": f.Name}
						if len(f.Values) > 0 {
							vs := make([]any, len(f.Values))
							for i, v := range f.Values {
								vs[i] = v
							}
							m["values"] = vs
						}
						fs = append(fs, m)
					}
				}
				subnet["filters"] = fs
			}
		}
	case configv1.AzurePlatformType:
		spec["zone"] = d.Azure.Zone
		if d.Azure.Subnet != "" {
			spec["subnet"] = d.Azure.Subnet
		}
	case configv1.GCPPlatformType:
		spec["zone"] = d.GCP.Zone
	case configv1.OpenStackPlatformType:
		fd := d.OpenStack
		if fd.AvailabilityZone != "" {
			spec["availabilityZone"] = fd.AvailabilityZone
		}
		if rv := fd.RootVolume; rv != nil && (rv.AvailabilityZone != "" || rv.VolumeType != "") {
			root := w.object(spec, "rootVolume")
			if root == nil && w.err == nil {
				return nil, fieldErr(object, base+".rootVolume", ErrInvalid,
					"failure domain %s sets a root volume but the template has none to put it in", d.Key())
			}
			if root != nil {
				if rv.AvailabilityZone != "" {
					root["availabilityZone"] = rv.AvailabilityZone
				}
				if rv.VolumeType != "" {
					root["volumeType"] = rv.VolumeType
				}
			}
		}
	case configv1.VSpherePlatformType:
		ws := w.objectOrNew(spec, "workspace")
		t := d.VSphereTopology
		for _, kv := range [][2]string{
			{"server", t.Server}, {"datacenter", t.Datacenter}, {"datastore", t.Datastore},
			{"resourcePool", t.ResourcePool}, {"folder", t.Folder},
		} {
			if kv[1] != "" {
				ws[kv[0]] = kv[1]
			}
		}
	case configv1.NutanixPlatformType:
		fd := w.objectOrNew(spec, "failureDomain")
		fd["name"] = d.Nutanix.Name
	}
	if w.err != nil {
		return nil, w.err
	}
	// What is written must read back as d, or the Machine would look
	// misplaced as soon as it exists.
	readsBack := w.matcher(d.Platform, spec)(d)
	if w.err != nil {
		return nil, w.err
	}
	if !readsBack {
		return nil, fieldErr(object, base, ErrInvalid, "the template with failure domain %s written into it does not read back as that domain", d.Key())
	}

	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(spec); err != nil {
		return nil, fieldErr(object, base, ErrMalformed, "encoding: %v", err)
	}
	return &runtime.RawExtension{Raw: bytes.TrimSuffix(buf.Bytes(), []byte("\n"))}, nil
}

// matcher reads the failure-domain fields of a providerSpec and returns
// whether a domain matches them. Read errors are left in r.err.
func (r *reader) matcher(platform configv1.PlatformType, spec map[string]any) func(Domain) bool {
	var match func(Domain) bool
	switch platform {
	case configv1.AWSPlatformType:
		placement := r.object(spec, "placement")
		zone := r.str(placement, "placement", "availabilityZone")
		subnet := r.object(spec, "subnet")
		var id, arn, filters string
		hasID, hasARN, hasFilters := false, false, false
		if subnet != nil {
			_, hasID = subnet["id"]
			_, hasARN = subnet["arn"]
			_, hasFilters = subnet["filters"]
			id = r.str(subnet, "subnet", "id")
			arn = r.str(subnet, "subnet", "arn")
			filters = canonicalFilters(r.filters(subnet, "subnet.filters"))
		}
		match = func(d Domain) bool {
			if dz := d.AWS.Placement.AvailabilityZone; dz != "" && dz != zone {
				return false
			}
			s := d.AWS.Subnet
			switch {
			case s == nil:
				return true
			case s.Type == machinev1.AWSIDReferenceType:
				return hasID && id == deref(s.ID)
			case s.Type == machinev1.AWSARNReferenceType:
				return hasARN && arn == deref(s.ARN)
			case s.Type == machinev1.AWSFiltersReferenceType:
				return hasFilters && "filters="+filters == awsReferenceString(s)
			}
			return false
		}
	case configv1.AzurePlatformType:
		zone := r.str(spec, "", "zone")
		subnet := r.str(spec, "", "subnet")
		match = func(d Domain) bool {
			return d.Azure.Zone == zone && (d.Azure.Subnet == "" || d.Azure.Subnet == subnet)
		}
	case configv1.GCPPlatformType:
		zone := r.str(spec, "", "zone")
		match = func(d Domain) bool { return d.GCP.Zone == zone }
	case configv1.OpenStackPlatformType:
		zone := r.str(spec, "", "availabilityZone")
		rv := r.object(spec, "rootVolume")
		rvZone := r.str(rv, "rootVolume", "availabilityZone")
		rvType := r.str(rv, "rootVolume", "volumeType")
		match = func(d Domain) bool {
			fd := d.OpenStack
			if fd.AvailabilityZone != "" && fd.AvailabilityZone != zone {
				return false
			}
			if fd.RootVolume == nil {
				return true
			}
			return (fd.RootVolume.AvailabilityZone == "" || fd.RootVolume.AvailabilityZone == rvZone) &&
				(fd.RootVolume.VolumeType == "" || fd.RootVolume.VolumeType == rvType)
		}
	case configv1.VSpherePlatformType:
		ws := r.object(spec, "workspace")
		got := VSphereTopology{
			Server:       r.str(ws, "workspace", "server"),
			Datacenter:   r.str(ws, "workspace", "datacenter"),
			Datastore:    r.str(ws, "workspace", "datastore"),
			ResourcePool: r.str(ws, "workspace", "resourcePool"),
		}
		match = func(d Domain) bool {
			t := d.VSphereTopology
			return (t.Server == "" || t.Server == got.Server) &&
				(t.Datacenter == "" || t.Datacenter == got.Datacenter) &&
				(t.Datastore == "" || t.Datastore == got.Datastore) &&
				(t.ResourcePool == "" || t.ResourcePool == got.ResourcePool)
		}
	case configv1.NutanixPlatformType:
		fd := r.object(spec, "failureDomain")
		name := r.str(fd, "failureDomain", "name")
		match = func(d Domain) bool { return d.Nutanix.Name == name }
	}
	if match == nil {
		return func(Domain) bool { return false }
	}
	return match
}

// decodeProviderSpec parses raw as a JSON object, numbers kept as written,
// and checks its kind against the platform.
func decodeProviderSpec(object, base string, platform configv1.PlatformType, raw *runtime.RawExtension) (map[string]any, error) {
	kind, ok := providerKinds[platform]
	if !ok {
		return nil, fieldErr(object, base, ErrUnknownPlatform,
			"%q; supported are AWS, Azure, GCP, OpenStack, VSphere and Nutanix", platform)
	}
	var data []byte
	switch {
	case raw == nil:
	case len(raw.Raw) > 0:
		data = raw.Raw
	case raw.Object != nil:
		b, err := json.Marshal(raw.Object)
		if err != nil {
			return nil, fieldErr(object, base, ErrMalformed, "encoding the object: %v", err)
		}
		data = b
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fieldErr(object, base, ErrMalformed, "the providerSpec is empty")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fieldErr(object, base, ErrMalformed, "not valid JSON: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fieldErr(object, base, ErrMalformed, "not valid JSON: data after the top-level value")
	}
	spec, isObject := v.(map[string]any)
	if !isObject {
		return nil, fieldErr(object, base, ErrMalformed, "want a JSON object, got %s", jsonType(v))
	}
	r := reader{obj: object, base: base}
	if got := r.str(spec, "", "kind"); r.err != nil {
		return nil, r.err
	} else if got != "" && got != kind {
		return nil, fieldErr(object, base+".kind", ErrMalformed, "%q is not a %s providerSpec (want kind %s)", got, platform, kind)
	}
	return spec, nil
}

// checkDomain refuses a domain that is not a complete domain of platform.
func checkDomain(object, base string, platform configv1.PlatformType, d Domain) error {
	ok := d.Platform == platform
	if ok {
		switch platform {
		case configv1.AWSPlatformType:
			ok = d.AWS != nil
		case configv1.AzurePlatformType:
			ok = d.Azure != nil
		case configv1.GCPPlatformType:
			ok = d.GCP != nil
		case configv1.OpenStackPlatformType:
			ok = d.OpenStack != nil
		case configv1.VSpherePlatformType:
			ok = d.VSphere != nil
		case configv1.NutanixPlatformType:
			ok = d.Nutanix != nil
		}
	}
	if !ok {
		return fieldErr(object, base, ErrInvalid, "failure domain %q is not a complete %s failure domain", d.Key(), platform)
	}
	if platform == configv1.VSpherePlatformType {
		t := d.VSphereTopology
		if t == nil || (t.Server == "" && t.Datacenter == "" && t.Datastore == "" && t.ResourcePool == "") {
			return fieldErr(object, base+".workspace", ErrUnresolved,
				"vSphere failure domain %q has no topology; set Domain.VSphereTopology from the Infrastructure object's definition", d.Name)
		}
	}
	return nil
}

func sortedDomains(ds []Domain) []Domain {
	out := slices.Clone(ds)
	slices.SortStableFunc(out, func(a, b Domain) int { return strings.Compare(a.Key(), b.Key()) })
	return out
}

// reader reads typed values out of generic JSON and keeps the first error,
// so that a sequence of reads can be checked once at the end.
type reader struct {
	obj  string
	base string
	err  error
}

func (r *reader) path(parent, key string) string {
	p := r.base
	if parent != "" {
		p += "." + parent
	}
	return p + "." + key
}

func (r *reader) fail(parent, key, format string, args ...any) {
	if r.err == nil {
		r.err = fieldErr(r.obj, r.path(parent, key), ErrMalformed, format, args...)
	}
}

// object returns m[key] as an object, or nil when it is absent or null.
func (r *reader) object(m map[string]any, key string) map[string]any {
	if m == nil {
		return nil
	}
	switch v := m[key].(type) {
	case nil:
		return nil
	case map[string]any:
		return v
	default:
		r.fail("", key, "want an object, got %s", jsonValue(v))
		return nil
	}
}

// objectOrNew is object, creating an empty object in m when there is none.
func (r *reader) objectOrNew(m map[string]any, key string) map[string]any {
	o := r.object(m, key)
	if o == nil {
		o = map[string]any{}
		if r.err == nil {
			m[key] = o
		}
	}
	return o
}

// str returns m[key] as a string, or "" when it is absent or null.
func (r *reader) str(m map[string]any, parent, key string) string {
	if m == nil {
		return ""
	}
	switch v := m[key].(type) {
	case nil:
		return ""
	case string:
		return v
	default:
		r.fail(parent, key, "want a string, got %s", jsonValue(v))
		return ""
	}
}

// filters reads an AWS filter list: [{name, values: [...]}].
func (r *reader) filters(subnet map[string]any, parent string) []filter {
	raw, ok := subnet["filters"]
	if !ok || raw == nil {
		return nil
	}
	list, ok := raw.([]any)
	if !ok {
		r.fail("subnet", "filters", "want a list, got %s", jsonValue(raw))
		return nil
	}
	out := make([]filter, 0, len(list))
	for i, item := range list {
		at := fmt.Sprintf("%s[%d]", parent, i)
		m, ok := item.(map[string]any)
		if !ok {
			r.fail("", at, "want an object, got %s", jsonValue(item))
			return nil
		}
		f := filter{name: r.str(m, at, "name")}
		switch vs := m["values"].(type) {
		case nil:
		case []any:
			for j, v := range vs {
				s, ok := v.(string)
				if !ok {
					r.fail(at, fmt.Sprintf("values[%d]", j), "want a string, got %s", jsonValue(v))
					return nil
				}
				f.values = append(f.values, s)
			}
		default:
			r.fail(at, "values", "want a list, got %s", jsonValue(vs))
			return nil
		}
		out = append(out, f)
	}
	return out
}

// jsonValue is jsonType followed by the value itself, cut short, for a
// scalar, so that a message names what was found: a string "subnet-0abc".
func jsonValue(v any) string {
	switch x := v.(type) {
	case string:
		return fmt.Sprintf("a string %q", shortText(x))
	case json.Number, float64, bool:
		return fmt.Sprintf("%s %v", jsonType(v), x)
	}
	return jsonType(v)
}

func shortText(s string) string {
	const limit = 64
	if len(s) <= limit {
		return s
	}
	return strings.ToValidUTF8(s[:limit], "") + "..."
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number, float64:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// domainFields are the providerSpec fields a failure domain sets, per platform, as path
// segments. vSphere has none: its workspace also holds what is not the domain's.
var domainFields = map[configv1.PlatformType][][]string{
	configv1.AWSPlatformType:       {{"placement", "availabilityZone"}, {"subnet"}},
	configv1.AzurePlatformType:     {{"zone"}, {"subnet"}},
	configv1.GCPPlatformType:       {{"zone"}},
	configv1.OpenStackPlatformType: {{"availabilityZone"}, {"rootVolume", "availabilityZone"}, {"rootVolume", "volumeType"}},
	configv1.NutanixPlatformType:   {{"failureDomain"}},
}

// DomainFields returns the providerSpec fields that a failure domain of the platform sets,
// each as path segments, such as ["placement", "availabilityZone"]. With no domains listed
// these are where a Machine's zone shows, and what a comparison with the template leaves
// out. None for vSphere and unknown platforms.
func DomainFields(platform configv1.PlatformType) [][]string {
	return domainFields[platform]
}

// PlatformOfKind returns the platform whose providerSpecs have the kind, such as AWS for
// AWSMachineProviderConfig.
func PlatformOfKind(kind string) (configv1.PlatformType, bool) {
	for p, k := range providerKinds {
		if k == kind {
			return p, true
		}
	}
	return "", false
}
