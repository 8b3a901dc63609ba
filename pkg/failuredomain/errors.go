package failuredomain

import (
	"errors"
	"fmt"
	"strings"
)

// Kinds of error, matched with errors.Is. Every error this package returns
// for bad input wraps one of them.
var (
	// ErrUnknownPlatform: the platform is not one this package places Machines on.
	ErrUnknownPlatform = errors.New("unsupported platform")
	// ErrMissingList: the platform is set but its list of failure domains is absent.
	ErrMissingList = errors.New("no failure domain list for the platform")
	// ErrOtherPlatformList: a list is present for a platform other than the one set.
	ErrOtherPlatformList = errors.New("failure domain list for another platform")
	// ErrEmptyName: a failure domain has no name (zone or name field is empty).
	ErrEmptyName = errors.New("failure domain has an empty name")
	// ErrInvalid: a value is present but unusable.
	ErrInvalid = errors.New("invalid value")
	// ErrMalformed: a providerSpec is not a JSON object of the expected shape.
	ErrMalformed = errors.New("malformed providerSpec")
	// ErrUnresolved: a vSphere failure domain has no topology, so it cannot
	// be read from or written to a providerSpec. See VSphereTopology.
	ErrUnresolved = errors.New("failure domain topology not resolved")
	// ErrInvalidInput: the input to Place is inconsistent.
	ErrInvalidInput = errors.New("invalid placement input")
)

// FieldError names the object and the field path a problem was found at.
type FieldError struct {
	// Object is the kind and name of the object, such as
	// "ControlPlaneMachineSet openshift-machine-api/cluster" or
	// "Machine openshift-machine-api/master-0". Empty when not known.
	Object string
	// Field is the path from the object's root, such as
	// "spec.template.machines_v1beta1_machine_openshift_io.failureDomains.aws[1]".
	Field string
	// Err is one of the Err* kinds above.
	Err error
	// Detail says what exactly is wrong.
	Detail string
}

func (e *FieldError) Error() string {
	var b strings.Builder
	if e.Object != "" {
		b.WriteString(e.Object)
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	}
	if e.Detail != "" {
		if e.Err != nil {
			b.WriteString(": ")
		}
		b.WriteString(e.Detail)
	}
	return b.String()
}

func (e *FieldError) Unwrap() error { return e.Err }

// TooManyIndexesError is returned by Place when the Machines use more
// distinct indexes than there are replicas. Deciding which index to give up
// is not a placement question, so the caller reports it.
type TooManyIndexesError struct {
	Replicas int
	// Indexes are the distinct indexes in use, ascending.
	Indexes []int
}

func (e *TooManyIndexesError) Error() string {
	return fmt.Sprintf("control-plane Machines use %d indexes %v but replicas is %d", len(e.Indexes), e.Indexes, e.Replicas)
}

func fieldErr(object, field string, kind error, format string, args ...any) *FieldError {
	return &FieldError{Object: object, Field: field, Err: kind, Detail: fmt.Sprintf(format, args...)}
}

// describe returns "Kind namespace/name" for use as FieldError.Object.
func describe(kind, namespace, name string) string {
	switch {
	case namespace != "" && name != "":
		return kind + " " + namespace + "/" + name
	case name != "":
		return kind + " " + name
	default:
		return kind
	}
}
