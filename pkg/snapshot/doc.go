// Package snapshot takes the etcd snapshot that quorumguard writes before it removes a voting
// member: it streams the database from one healthy voting member (another than the one to be
// removed whenever there is one), checks the sha256 digest etcd appends to the stream, writes
// the file atomically into a directory, and keeps that directory within its retention (the
// newest N files, and a size budget).
//
// It decides nothing about membership: the controller asks it for a snapshot, and holds the
// removal when it fails. It opens its own short-lived client to the one member it streams
// from (etcd's snapshot is a point-in-time copy of one member's database, so it is asked of
// one member, never of a load-balanced set).
package snapshot
