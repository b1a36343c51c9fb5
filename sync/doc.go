// Package sync keeps the edge's profile cache in step with the central
// customer store over NATS: it starts an embedded server or connects to
// one, reads profiles from the JetStream KV bucket on a cache miss, applies
// the bucket's updates to cached profiles as they happen (resuming after an
// outage without losing any), and bulk-loads profiles into the bucket. A
// document in the bucket that is not a valid profile never replaces a
// cached one: the watch keeps the last good profile, logs the update and
// counts it (WatchStats.Rejected). It
// also publishes the edge's events to a JetStream stream (Store.Events),
// through a bounded queue that never makes a request wait for NATS.
//
// It carries the rule files too (rules.go): "tailor rules push" publishes
// them as one immutable, numbered RuleVersion to a KV bucket of their
// own, and every edge follows that bucket (Store.FollowRules), keeping the
// version it serves on disk (SaveRuleVersion) to start with while NATS is
// down, with the identity of the bucket it came from, so that a bucket
// created again is followed from its own first version. Beside each
// version, a meta key holds its metadata alone, for the history.
//
// Readouts (readout.go): one Folder at a time, across every edge and the
// CLI, holds a lease (a KV key with a per-key TTL, renewed by revision)
// and folds the events stream, through a durable consumer, into a Fold it
// snapshots to the object store before acknowledging the consumer
// (AckAll); it publishes the Fold's readout to a KV key after each step,
// which readers get in constant time (ReadReadout). Events are folded
// once: by sequence after a snapshot, by id for late copies.
//
// It shares its name with the standard library's package: import it as
// natsync where both are needed.
package sync
