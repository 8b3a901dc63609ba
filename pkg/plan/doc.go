// Package plan plays a control-plane replacement forward without touching the cluster: from
// the planner's input as one pass of the controller reads it (controlplane.DryRun), it asks
// the quorum planner (quorum.Decide) for its step, applies that step to the snapshot the way
// the world answers it, lets the other parties act (the ControlPlaneMachineSet's Machine
// planner, machines.Plan, creating and deleting Machines; the node's join step starting a
// learner's etcd; the machine-api draining and deleting a released Machine; the clock running
// past etcd's health window), and asks again, until nothing more happens.
//
// It decides nothing itself: every step of the controller is quorum.Decide's, every Machine
// created or deleted is machines.Plan's, and every fault tolerance is the planner's
// (Decision.FaultTolerance). What it adds is only the world's answer to each step, in the
// order the real parties answer. Run is pure: no client, no clock, no goroutine; FromPass
// turns a dry pass's reading into Run's input and reads nothing either.
//
// What it never knows: how long a step takes (only the health window's wait is timed), a
// member that fails on the way, a providerSpec that differs from the template (Machines are
// taken to match it), or an address a Machine has not reported yet: an existing Machine
// without an InternalIP is taken to keep none, so a plan that needs one stalls.
package plan
