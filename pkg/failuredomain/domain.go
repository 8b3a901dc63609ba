package failuredomain

import (
	"fmt"
	"slices"
	"strings"

	configv1 "github.com/openshift/api/config/v1"
	machinev1 "github.com/openshift/api/machine/v1"
)

// failureDomainsPath is where a ControlPlaneMachineSet lists its failure domains.
const failureDomainsPath = "spec.template.machines_v1beta1_machine_openshift_io.failureDomains"

// Domain is one failure domain of a ControlPlaneMachineSet.
type Domain struct {
	Platform configv1.PlatformType
	// Name is what domains are ordered by and what people see: the
	// availability zone on AWS, Azure and GCP, the name on vSphere and
	// Nutanix. An AWS domain that gives only a subnet (the template then
	// gives the zone) is named by it, as in "subnet.id=subnet-0abc". On OpenStack it is the availability zone, or when that is
	// unset the root volume's availability zone, or else its volume type.
	Name string

	// Exactly one of these is set, the one for Platform. They are deep
	// copies of the ControlPlaneMachineSet's entries.
	AWS       *machinev1.AWSFailureDomain
	Azure     *machinev1.AzureFailureDomain
	GCP       *machinev1.GCPFailureDomain
	OpenStack *machinev1.OpenStackFailureDomain
	VSphere   *machinev1.VSphereFailureDomain
	Nutanix   *machinev1.NutanixFailureDomainReference

	// VSphereTopology is where a vSphere domain puts a Machine. The domain
	// name refers to a definition in the Infrastructure object, which this
	// package does not read: Parse leaves it nil and the caller fills it in
	// before reading or writing vSphere providerSpecs.
	VSphereTopology *VSphereTopology
}

// VSphereTopology is the part of a vSphere failure domain, as defined in the
// Infrastructure object, that shows in a providerSpec's workspace. Server,
// Datacenter, Datastore and ResourcePool identify the domain when reading
// (only the non-empty ones are compared); all non-empty fields, Folder
// included, are written.
type VSphereTopology struct {
	Server       string
	Datacenter   string
	Datastore    string
	ResourcePool string
	Folder       string
}

// Key identifies the domain uniquely within its list and is the string Place
// works with. It is the Name, followed, when the domain has more identity
// than its name, by that identity in parentheses, for example
// "us-east-1a (subnet.id=subnet-0abc)". Domains are ordered by Key, so by
// Name first.
func (d Domain) Key() string {
	parts := d.identity()
	if len(parts) == 0 {
		return d.Name
	}
	return d.Name + " (" + strings.Join(parts, ", ") + ")"
}

func (d Domain) String() string { return d.Key() }

// identity lists, as field=value, what tells the domain apart besides its name.
func (d Domain) identity() []string {
	var parts []string
	switch {
	case d.AWS != nil:
		if s := d.AWS.Subnet; s != nil && d.AWS.Placement.AvailabilityZone != "" {
			parts = append(parts, "subnet."+awsReferenceString(s))
		}
	case d.Azure != nil:
		if d.Azure.Subnet != "" {
			parts = append(parts, "subnet="+d.Azure.Subnet)
		}
	case d.OpenStack != nil:
		if d.OpenStack.AvailabilityZone == "" {
			parts = append(parts, "availabilityZone=")
		}
		if rv := d.OpenStack.RootVolume; rv != nil {
			if rv.AvailabilityZone != "" {
				parts = append(parts, "rootVolume.availabilityZone="+rv.AvailabilityZone)
			}
			if rv.VolumeType != "" {
				parts = append(parts, "rootVolume.volumeType="+rv.VolumeType)
			}
		}
	}
	return parts
}

// awsReferenceString renders a subnet reference as id=..., arn=... or
// filters=name=v1,v2;name=v3 with filters and values sorted, so that two
// references to the same thing render the same.
func awsReferenceString(r *machinev1.AWSResourceReference) string {
	switch r.Type {
	case machinev1.AWSIDReferenceType:
		return "id=" + deref(r.ID)
	case machinev1.AWSARNReferenceType:
		return "arn=" + deref(r.ARN)
	case machinev1.AWSFiltersReferenceType:
		var fs []filter
		if r.Filters != nil {
			for _, f := range *r.Filters {
				fs = append(fs, filter{name: f.Name, values: f.Values})
			}
		}
		return "filters=" + canonicalFilters(fs)
	default:
		return "type=" + string(r.Type)
	}
}

type filter struct {
	name   string
	values []string
}

func canonicalFilters(fs []filter) string {
	out := make([]string, 0, len(fs))
	for _, f := range fs {
		vs := slices.Clone(f.values)
		slices.Sort(vs)
		out = append(out, f.name+"="+strings.Join(vs, ","))
	}
	slices.Sort(out)
	return strings.Join(out, ";")
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// specificity is how many fields of a providerSpec the domain pins down.
// When several domains match a providerSpec the most specific one wins.
func (d Domain) specificity() int {
	n := 0
	switch {
	case d.AWS != nil:
		if d.AWS.Placement.AvailabilityZone != "" {
			n = 1
		}
		if d.AWS.Subnet != nil {
			n++
		}
	case d.Azure != nil:
		n = 1
		if d.Azure.Subnet != "" {
			n++
		}
	case d.OpenStack != nil:
		if d.OpenStack.AvailabilityZone != "" {
			n++
		}
		if rv := d.OpenStack.RootVolume; rv != nil {
			if rv.AvailabilityZone != "" {
				n++
			}
			if rv.VolumeType != "" {
				n++
			}
		}
	case d.VSphereTopology != nil:
		t := d.VSphereTopology
		for _, v := range []string{t.Server, t.Datacenter, t.Datastore, t.ResourcePool} {
			if v != "" {
				n++
			}
		}
	default:
		n = 1
	}
	return n
}

// platformLists names the list field of each supported platform, in the
// order errors about them are reported.
var platformLists = []struct {
	platform configv1.PlatformType
	field    string
}{
	{configv1.AWSPlatformType, "aws"},
	{configv1.AzurePlatformType, "azure"},
	{configv1.GCPPlatformType, "gcp"},
	{configv1.OpenStackPlatformType, "openstack"},
	{configv1.VSpherePlatformType, "vsphere"},
	{configv1.NutanixPlatformType, "nutanix"},
}

// listPresent reports whether the list for platform is present; an explicit
// empty list is present.
func listPresent(fds *machinev1.FailureDomains, p configv1.PlatformType) bool {
	switch p {
	case configv1.AWSPlatformType:
		return fds.AWS != nil
	case configv1.AzurePlatformType:
		return fds.Azure != nil
	case configv1.GCPPlatformType:
		return fds.GCP != nil
	case configv1.OpenStackPlatformType:
		return fds.OpenStack != nil
	case configv1.VSpherePlatformType:
		return fds.VSphere != nil
	case configv1.NutanixPlatformType:
		return fds.Nutanix != nil
	}
	return false
}

// FromControlPlaneMachineSet returns the failure domains of the
// ControlPlaneMachineSet, sorted by Key. No failureDomains, or one with an
// empty platform and no lists, gives no domains and no error. Errors name the
// object and the field.
func FromControlPlaneMachineSet(cpms *machinev1.ControlPlaneMachineSet) ([]Domain, error) {
	if cpms == nil {
		return nil, fieldErr("", "", ErrInvalid, "no ControlPlaneMachineSet")
	}
	object := describe("ControlPlaneMachineSet", cpms.Namespace, cpms.Name)
	tmpl := cpms.Spec.Template.OpenShiftMachineV1Beta1Machine
	if tmpl == nil {
		return nil, fieldErr(object, "spec.template.machines_v1beta1_machine_openshift_io", ErrInvalid, "the machine template is not set")
	}
	return parse(object, tmpl.FailureDomains)
}

// Parse returns the failure domains in fds, sorted by Key. It is
// FromControlPlaneMachineSet without the object: errors carry the field path
// but no object name. A nil fds gives no domains.
func Parse(fds *machinev1.FailureDomains) ([]Domain, error) {
	return parse("", fds)
}

func parse(object string, fds *machinev1.FailureDomains) ([]Domain, error) {
	if fds == nil {
		return nil, nil
	}
	platform := fds.Platform
	known := platform == ""
	for _, pl := range platformLists {
		if pl.platform == platform {
			known = true
		}
	}
	if !known {
		return nil, fieldErr(object, failureDomainsPath+".platform", ErrUnknownPlatform,
			"%q; supported are AWS, Azure, GCP, OpenStack, VSphere and Nutanix", platform)
	}

	var errs []error
	for _, pl := range platformLists {
		if pl.platform != platform && listPresent(fds, pl.platform) {
			errs = append(errs, fieldErr(object, failureDomainsPath+"."+pl.field, ErrOtherPlatformList,
				"a %s list is set but platform is %q", pl.platform, platform))
		}
	}
	if platform == "" {
		return nil, join(errs)
	}
	if !listPresent(fds, platform) {
		errs = append(errs, fieldErr(object, failureDomainsPath+"."+fieldOf(platform), ErrMissingList,
			"platform is %s but there is no %s list", platform, fieldOf(platform)))
		return nil, join(errs)
	}

	type entry struct {
		d    Domain
		path string
		ref  string
	}
	var entries []entry
	add := func(i int, d Domain, nameField string) {
		ref := fmt.Sprintf("%s[%d]", fieldOf(platform), i)
		path := failureDomainsPath + "." + ref
		d.Platform = platform
		if d.Name == "" {
			errs = append(errs, fieldErr(object, path+nameField, ErrEmptyName, "%s has no name", ref))
			return
		}
		entries = append(entries, entry{d: d, path: path, ref: ref})
	}

	switch platform {
	case configv1.AWSPlatformType:
		for i, fd := range *fds.AWS {
			fd := *fd.DeepCopy()
			ref := fmt.Sprintf("%s.aws[%d]", failureDomainsPath, i)
			if err := validateAWSSubnet(object, ref+".subnet", fd.Subnet); err != nil {
				errs = append(errs, err)
				continue
			}
			name := fd.Placement.AvailabilityZone
			if name == "" && fd.Subnet != nil {
				// A subnet alone is a domain: the zone is the template's.
				name = "subnet." + awsReferenceString(fd.Subnet)
			}
			add(i, Domain{Name: name, AWS: &fd}, ".placement.availabilityZone")
		}
	case configv1.AzurePlatformType:
		for i, fd := range *fds.Azure {
			add(i, Domain{Name: fd.Zone, Azure: &fd}, ".zone")
		}
	case configv1.GCPPlatformType:
		for i, fd := range *fds.GCP {
			add(i, Domain{Name: fd.Zone, GCP: &fd}, ".zone")
		}
	case configv1.OpenStackPlatformType:
		for i, fd := range fds.OpenStack {
			fd := *fd.DeepCopy()
			name := fd.AvailabilityZone
			if name == "" && fd.RootVolume != nil {
				name = fd.RootVolume.AvailabilityZone
				if name == "" {
					name = fd.RootVolume.VolumeType
				}
			}
			add(i, Domain{Name: name, OpenStack: &fd}, ".availabilityZone")
		}
	case configv1.VSpherePlatformType:
		for i, fd := range fds.VSphere {
			add(i, Domain{Name: fd.Name, VSphere: &fd}, ".name")
		}
	case configv1.NutanixPlatformType:
		for i, fd := range fds.Nutanix {
			add(i, Domain{Name: fd.Name, Nutanix: &fd}, ".name")
		}
	}

	// A domain listed twice is one domain, as the ControlPlaneMachineSet
	// operator reads the list: refusing it would leave a set that operator
	// runs Degraded here.
	seen := map[string]bool{}
	domains := make([]Domain, 0, len(entries))
	for _, e := range entries {
		k := e.d.Key()
		if seen[k] {
			continue
		}
		seen[k] = true
		domains = append(domains, e.d)
	}
	if len(errs) > 0 {
		return nil, join(errs)
	}
	slices.SortFunc(domains, func(a, b Domain) int { return strings.Compare(a.Key(), b.Key()) })
	return domains, nil
}

func validateAWSSubnet(object, path string, s *machinev1.AWSResourceReference) error {
	if s == nil {
		return nil
	}
	switch s.Type {
	case machinev1.AWSIDReferenceType:
		if deref(s.ID) == "" {
			return fieldErr(object, path+".id", ErrInvalid, "subnet type is ID but id is empty")
		}
	case machinev1.AWSARNReferenceType:
		if deref(s.ARN) == "" {
			return fieldErr(object, path+".arn", ErrInvalid, "subnet type is ARN but arn is empty")
		}
	case machinev1.AWSFiltersReferenceType:
		if s.Filters == nil || len(*s.Filters) == 0 {
			return fieldErr(object, path+".filters", ErrInvalid, "subnet type is Filters but there are no filters")
		}
		for i, f := range *s.Filters {
			if f.Name == "" {
				return fieldErr(object, fmt.Sprintf("%s.filters[%d].name", path, i), ErrInvalid, "filter has no name")
			}
		}
	default:
		return fieldErr(object, path+".type", ErrInvalid, "%q; must be ID, ARN or Filters", s.Type)
	}
	return nil
}

func fieldOf(p configv1.PlatformType) string {
	for _, pl := range platformLists {
		if pl.platform == p {
			return pl.field
		}
	}
	return strings.ToLower(string(p))
}

// join returns nil, the only error, or all of them joined.
func join(errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	return joined(errs)
}

type joined []error

func (j joined) Error() string {
	msgs := make([]string, len(j))
	for i, e := range j {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "; ")
}

func (j joined) Unwrap() []error { return j }
