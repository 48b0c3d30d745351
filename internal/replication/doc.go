// Package replication is Harbor's replication: registry endpoints
// (/registries: other registries lading talks to, with their credentials
// sealed by package secrets) and replication policies
// (/replication/policies) that copy artifacts between lading and one of
// them, push-based (lading is the source) or pull-based (lading is the
// destination).
//
// A policy names its repositories and artifacts with filters (repository
// name and tag as doublestar patterns, labels, resource type image or
// artifact), maps them to destination repositories (dest_namespace, with
// Harbor's dest_namespace_replace_count flattening), may override what
// the destination has under the same tag, limits each task's bandwidth
// (speed, KB/s), and runs when triggered: by hand (POST
// /replication/executions), on a cron schedule, or on events (a push or a
// deletion in lading, push-based policies only).
//
// # Runs as jobs
//
// A run is a task.Manager execution (vendor type REPLICATION, the
// policy's id). Starting one records the execution and queues a
// REPLICATION_PLAN job; the plan lists the source, applies the filters
// and adds one REPLICATION job per source repository (Harbor's tasks,
// with their operation, resource type, source and destination) in one
// transaction. An event-based run knows its resource and adds its task at
// once. A task copies, for each of its artifacts:
//
//   - the manifest by digest from the source, verified against that
//     digest, never converted: digests are the same end to end;
//   - an index's child manifests first, then the blobs the destination
//     lacks: a HEAD first, a cross-repository mount when another
//     destination repository of the same policy should have the blob,
//     else an upload, read at the policy's speed;
//   - the manifest last, by digest and under each tag (a tag that points
//     elsewhere at the destination is replaced only with override), so a
//     destination never holds a manifest whose content is missing;
//   - then the artifacts that refer to it (the referrers API or its
//     fallback tag; cosign's sha256-HEX.sig/.att/.sbom tags): signatures,
//     SBOMs and attestations follow their subject whatever the filters
//     say.
//
// A task runs at least once (package jobs): a lading killed mid-copy
// loses its lease and the task runs again, finding what the first attempt
// sent (HEAD) and sending only the rest, so nothing is sent twice that
// arrived and nothing is half written.
//
// A deletion task deletes by digest, or by tag for a tag deleted in
// lading; a destination that refuses to delete tags (Distribution 2.x)
// loses, as with Harbor, the manifest the tag names, but only while that
// tag still names the artifact deleted in lading. Stop ends an execution's pending
// and running tasks. When a task ends, a REPLICATION webhook event is
// raised in the project it concerns.
//
// # Tables (owner "replication")
//
//	registries            id, name (unique), description, type, url,
//	                      credential_type, access_key, access_secret
//	                      (sealed), insecure, ca_certificate, status,
//	                      created, updated
//	replication_policies  id, name (unique), description, creator,
//	                      src_registry_id, dest_registry_id (0: lading
//	                      itself), dest_namespace,
//	                      dest_namespace_replace_count, filters (JSON),
//	                      trigger (JSON), replicate_deletion, override,
//	                      enabled, speed, copy_by_chunk,
//	                      single_active, created, updated
package replication
