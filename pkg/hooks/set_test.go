package hooks_test

import (
	"fmt"
	"slices"
	"testing"

	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/quorumguard/quorumguard/pkg/hooks"
)

var both = hooks.Set{PreDrain: hooks.Default, PreTerminate: hooks.DefaultPreTerminate}

func withHooks(deleting bool, pre, term []machinev1beta1.LifecycleHook) *machinev1beta1.Machine {
	m := &machinev1beta1.Machine{}
	m.Spec.LifecycleHooks = machinev1beta1.LifecycleHooks{PreDrain: pre, PreTerminate: term}
	if deleting {
		m.DeletionTimestamp = &metav1.Time{}
	}
	return m
}

func list(hs ...machinev1beta1.LifecycleHook) []machinev1beta1.LifecycleHook { return hs }

// TestDesiredSet: both hooks are added to a live Machine, repaired on any, never added back
// to a deleting one, and every other hook is kept in its place.
func TestDesiredSet(t *testing.T) {
	wrongOwner := hooks.DefaultPreTerminate
	wrongOwner.Owner = "somebody/else"
	cases := []struct {
		name      string
		m         *machinev1beta1.Machine
		set       hooks.Set
		want      hooks.Outcomes
		pre, term []machinev1beta1.LifecycleHook
		writes    bool
	}{
		{"a live Machine gets both, other hooks kept", withHooks(false, list(other), list(other)), both,
			hooks.Outcomes{PreDrain: hooks.Added, PreTerminate: hooks.Added}, list(other, hooks.Default), list(other, hooks.DefaultPreTerminate), true},
		{"an upgraded Machine with the preDrain hook gets the preTerminate one", withHooks(false, list(hooks.Default), nil), both,
			hooks.Outcomes{PreDrain: hooks.Unchanged, PreTerminate: hooks.Added}, list(hooks.Default), list(hooks.DefaultPreTerminate), true},
		{"a preTerminate hook with the wrong owner is repaired", withHooks(false, list(hooks.Default), list(wrongOwner, other)), both,
			hooks.Outcomes{PreDrain: hooks.Unchanged, PreTerminate: hooks.Repaired}, list(hooks.Default), list(hooks.DefaultPreTerminate, other), true},
		{"a deleting Machine never gets the preTerminate hook back", withHooks(true, list(hooks.Default), list(other)), both,
			hooks.Outcomes{PreDrain: hooks.Unchanged, PreTerminate: hooks.Missing}, list(hooks.Default), list(other), false},
		{"a deleting Machine never gets the preDrain hook back", withHooks(true, nil, list(hooks.DefaultPreTerminate)), both,
			hooks.Outcomes{PreDrain: hooks.Missing, PreTerminate: hooks.Unchanged}, nil, list(hooks.DefaultPreTerminate), false},
		{"with no preTerminate hook kept, the list is left alone", withHooks(false, nil, list(other)), hooks.Only(hooks.Default),
			hooks.Outcomes{PreDrain: hooks.Added, PreTerminate: hooks.Unchanged}, list(hooks.Default), list(other), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.m.DeepCopy()
			got, out := hooks.DesiredSet(tc.m, tc.set)
			if out != tc.want || out.Writes() != tc.writes {
				t.Fatalf("outcomes %+v (writes %v); want %+v (writes %v)", out, out.Writes(), tc.want, tc.writes)
			}
			if fmt.Sprint(got.PreDrain) != fmt.Sprint(tc.pre) || fmt.Sprint(got.PreTerminate) != fmt.Sprint(tc.term) {
				t.Fatalf("hooks %v / %v; want %v / %v", got.PreDrain, got.PreTerminate, tc.pre, tc.term)
			}
			if fmt.Sprint(tc.m.Spec.LifecycleHooks) != fmt.Sprint(before.Spec.LifecycleHooks) {
				t.Fatal("DesiredSet changed the Machine it was given")
			}
		})
	}
}

// TestReleased: both hooks go in the one change, other hooks stay, and a Set without a
// preTerminate hook never touches that list.
func TestReleased(t *testing.T) {
	m := withHooks(true, list(other, hooks.Default), list(hooks.DefaultPreTerminate, other))
	got, changed := hooks.Released(m, both)
	if !changed || !slices.Equal(got.PreDrain, list(other)) || !slices.Equal(got.PreTerminate, list(other)) {
		t.Fatalf("Released = %v / %v, %v; want only %v left in each", got.PreDrain, got.PreTerminate, changed, other)
	}
	if !hooks.Has(m, hooks.Default) || !hooks.HasPreTerminate(m, hooks.DefaultPreTerminate) {
		t.Fatal("Released changed the Machine it was given")
	}
	got, changed = hooks.Released(m, hooks.Only(hooks.Default))
	if !changed || !slices.Equal(got.PreTerminate, m.Spec.LifecycleHooks.PreTerminate) {
		t.Fatalf("a Set with no preTerminate hook changed the preTerminate list: %v", got.PreTerminate)
	}
	// Only the preTerminate hook left (the preDrain one removed by hand): it goes.
	got, changed = hooks.Released(withHooks(true, nil, list(hooks.DefaultPreTerminate)), both)
	if !changed || len(got.PreTerminate) != 0 {
		t.Fatalf("Released = %v, %v; want the preTerminate hook gone", got.PreTerminate, changed)
	}
	if _, changed := hooks.Released(withHooks(true, list(other), list(other)), both); changed {
		t.Fatal("Released changed a Machine without either hook")
	}
}

// TestDrainSkipped: the Machine controller skips the drain, and every preDrain hook, of a
// Machine with no Node or with the exclude annotation.
func TestDrainSkipped(t *testing.T) {
	m := withHooks(false, nil, nil)
	if hooks.DrainSkipped(m) == "" {
		t.Fatal("a Machine with no nodeRef: want its drain skipped")
	}
	m.Status.NodeRef = &corev1.ObjectReference{Kind: "Node", Name: "n"}
	if why := hooks.DrainSkipped(m); why != "" {
		t.Fatalf("a Machine with a Node: drain skipped (%s); want it drained", why)
	}
	m.Annotations = map[string]string{hooks.ExcludeDrainAnnotation: ""}
	if hooks.DrainSkipped(m) == "" {
		t.Fatal("a Machine with the exclude annotation: want its drain skipped")
	}
}

// TestReleaseSetOneWrite: the Writer releases both hooks in one PATCH.
func TestReleaseSetOneWrite(t *testing.T) {
	m := create(t, "hooks-both", []machinev1beta1.LifecycleHook{other, hooks.Default}, false)
	w, rt := countingWriter(t)
	if _, err := w.EnsureSet(t.Context(), m, both); err != nil {
		t.Fatal(err)
	}
	if sent := rt.take(); !slices.Equal(sent, []string{"PATCH"}) {
		t.Fatalf("EnsureSet sent %v; want one PATCH", sent)
	}
	if !hooks.HasPreTerminate(m, hooks.DefaultPreTerminate) || !hooks.Has(m, hooks.Default) {
		t.Fatalf("after EnsureSet: %+v; want both hooks", m.Spec.LifecycleHooks)
	}
	if err := w.ReleaseSet(t.Context(), m, both, nil); err != nil {
		t.Fatal(err)
	}
	if sent := rt.take(); !slices.Equal(sent, []string{"PATCH"}) {
		t.Fatalf("ReleaseSet sent %v; want one PATCH", sent)
	}
	if hooks.Has(m, hooks.Default) || hooks.HasPreTerminate(m, hooks.DefaultPreTerminate) || !slices.Equal(m.Spec.LifecycleHooks.PreDrain, list(other)) {
		t.Fatalf("after ReleaseSet: %+v; want only %v", m.Spec.LifecycleHooks, other)
	}
}
