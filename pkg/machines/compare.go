package machines

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"reflect"
	"slices"
	"strings"

	configv1 "github.com/openshift/api/config/v1"
	machinev1 "github.com/openshift/api/machine/v1"
	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/quorumguard/quorumguard/pkg/failuredomain"
)

const (
	templateProviderSpec = "spec.template.machines_v1beta1_machine_openshift_io.spec.providerSpec.value"
	machineProviderSpec  = "spec.providerSpec.value"
	// maxDiffs bounds the field paths a difference lists.
	maxDiffs = 4
)

// providerSpecDiff compares a Machine's providerSpec with the template's. With a domain, the
// domain is first written into both, so the failure-domain fields never differ; without one
// (no failure domains listed, or an empty list) the failure-domain fields of the template's
// platform (failuredomain.DomainFields) are left out of both, so a Machine is never replaced
// only to move it into the template's zone. It returns the
// paths that differ, "" when none. A template that cannot be read is an error about the
// ControlPlaneMachineSet; a Machine whose providerSpec cannot be read, an error naming it.
func providerSpecDiff(cpms *machinev1.ControlPlaneMachineSet, m *machinev1beta1.Machine, d *failuredomain.Domain) (string, error) {
	tmpl := cpms.Spec.Template.OpenShiftMachineV1Beta1Machine
	if tmpl == nil {
		return "", fmt.Errorf("%s: the machine template is not set", templateProviderSpec)
	}
	want, got := tmpl.Spec.ProviderSpec.Value, m.Spec.ProviderSpec.Value
	if d != nil {
		var err error
		if want, err = failuredomain.WithDomain(cpms, *d); err != nil {
			return "", err
		}
		// The Machine's providerSpec, put where WithDomain reads a template, gets the same
		// domain written into it.
		as := cpms.DeepCopy()
		as.Spec.Template.OpenShiftMachineV1Beta1Machine.Spec.ProviderSpec.Value = m.Spec.ProviderSpec.Value
		if got, err = failuredomain.WithDomain(as, *d); err != nil {
			return "", asMachineError(err, m)
		}
	}
	w, err := decodeJSON(want)
	if err != nil {
		return "", fmt.Errorf("the template of ControlPlaneMachineSet %s/%s: %s: %w", cpms.Namespace, cpms.Name, templateProviderSpec, err)
	}
	g, err := decodeJSON(got)
	if err != nil {
		return "", fmt.Errorf("the providerSpec of Machine %s/%s: %s: %w", m.Namespace, m.Name, machineProviderSpec, err)
	}
	if d == nil {
		if platform, ok := platformOf(w); ok {
			dropDomainFields(platform, w)
			dropDomainFields(platform, g)
		}
	}
	var paths []string
	diff("", prune(w), prune(g), &paths)
	if len(paths) > maxDiffs {
		paths = append(paths[:maxDiffs], fmt.Sprintf("and %d more", len(paths)-maxDiffs))
	}
	return strings.Join(paths, ", "), nil
}

// asMachineError rewrites a failuredomain error about the template into one about the
// Machine whose providerSpec was read in its place.
func asMachineError(err error, m *machinev1beta1.Machine) error {
	var fe *failuredomain.FieldError
	if errors.As(err, &fe) {
		c := *fe
		c.Object = fmt.Sprintf("Machine %s/%s", m.Namespace, m.Name)
		c.Field = strings.Replace(c.Field, templateProviderSpec, machineProviderSpec, 1)
		return &c
	}
	return fmt.Errorf("the providerSpec of Machine %s/%s: %w", m.Namespace, m.Name, err)
}

// platformOf is the platform of a decoded providerSpec, by its kind.
func platformOf(spec any) (configv1.PlatformType, bool) {
	m, _ := spec.(map[string]any)
	kind, _ := m["kind"].(string)
	return failuredomain.PlatformOfKind(kind)
}

// dropDomainFields deletes the platform's failure-domain fields from a decoded providerSpec.
func dropDomainFields(platform configv1.PlatformType, spec any) {
	for _, path := range failuredomain.DomainFields(platform) {
		m, _ := spec.(map[string]any)
		for _, k := range path[:len(path)-1] {
			m, _ = m[k].(map[string]any)
		}
		if m != nil {
			delete(m, path[len(path)-1])
		}
	}
}

// copyDomainFields sets the platform's failure-domain fields of the decoded providerSpec
// to to those of from (deleting those from does not have).
func copyDomainFields(platform configv1.PlatformType, from, to map[string]any) {
	for _, path := range failuredomain.DomainFields(platform) {
		src, dst := from, to
		for _, k := range path[:len(path)-1] {
			src, _ = src[k].(map[string]any)
			next, ok := dst[k].(map[string]any)
			if !ok {
				next = map[string]any{}
				dst[k] = next
			}
			dst = next
		}
		last := path[len(path)-1]
		if v, ok := src[last]; ok {
			dst[last] = v
		} else {
			delete(dst, last)
		}
	}
}

func decodeJSON(raw *runtime.RawExtension) (any, error) {
	var data []byte
	switch {
	case raw == nil:
	case len(raw.Raw) > 0:
		data = raw.Raw
	case raw.Object != nil:
		b, err := json.Marshal(raw.Object)
		if err != nil {
			return nil, err
		}
		data = b
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("the providerSpec is empty")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("not valid JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("not valid JSON: data after the top-level value")
	}
	if _, ok := v.(map[string]any); !ok {
		return nil, errors.New("not a JSON object")
	}
	return v, nil
}

// prune drops zero values (null, "", false, 0, and objects and lists that are empty once
// pruned) from objects, so that a field set to its zero value equals an absent one. List
// elements are pruned but kept, since their positions matter.
func prune(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			if p := prune(x); !zero(p) {
				out[k] = p
			}
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = prune(x)
		}
		return out
	case json.Number:
		// 1, 1.0 and 1e0 are one number; big.Rat keeps large integers exact.
		if r, ok := new(big.Rat).SetString(t.String()); ok {
			return number(r.RatString())
		}
	}
	return v
}

// number is a JSON number in canonical form.
type number string

func zero(v any) bool {
	switch t := v.(type) {
	case nil:
		return true
	case string:
		return t == ""
	case bool:
		return !t
	case number:
		return t == "0"
	case map[string]any:
		return len(t) == 0
	case []any:
		return len(t) == 0
	}
	return false
}

// diff appends the paths where a and b differ, descending into objects.
func diff(path string, a, b any, out *[]string) {
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if !aok || !bok {
		if !reflect.DeepEqual(a, b) {
			*out = append(*out, cmp.Or(path, "the root"))
		}
		return
	}
	keys := make([]string, 0, len(am)+len(bm))
	for k := range am {
		keys = append(keys, k)
	}
	for k := range bm {
		if _, ok := am[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		p := k
		if path != "" {
			p = path + "." + k
		}
		diff(p, am[k], bm[k], out)
	}
}
