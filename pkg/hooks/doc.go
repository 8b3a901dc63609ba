// Package hooks keeps quorumguard's preDrain lifecycle hook on control-plane Machines. It adds
// the hook to every Machine that is not being deleted, repairs a hook that has the right name
// and the wrong owner, and releases it when told to. It never adds the hook back to a deleting
// Machine (removing it by hand is the escape hatch), never touches any other hook, and writes
// only with a resourceVersion precondition so a stale cache can never overwrite a newer change.
// Writer tries a refused write again, with backoff, on the Machine read afresh, and a release
// only while that copy still allows it.
package hooks
