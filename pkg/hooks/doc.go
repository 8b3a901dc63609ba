// Package hooks keeps quorumguard's lifecycle hooks on control-plane Machines: a preDrain
// hook, and a preTerminate hook that holds a Machine whose drain OpenShift's Machine
// controller skips (no Node, or the exclude-node-draining annotation), since a skipped drain
// skips every preDrain hook with it. It adds the hooks to every Machine that is not being
// deleted, repairs a hook that has the right name and the wrong owner, and releases both
// together, in one write, when told to. It never adds a hook back to a deleting Machine
// (removing it by hand is the escape hatch), never touches any other hook, and writes only
// with a resourceVersion precondition so a stale cache can never overwrite a newer change.
// Writer tries a refused write again, with backoff, on the Machine read afresh, and a release
// only while that copy still allows it. The decisions (DesiredSet, Released) are pure.
package hooks
