// Package ecs holds the domain types of the service (servers, volumes,
// images, key pairs, jobs, flavors, credentials) and its error kinds.
//
// It promises: no I/O, no dependencies beyond the standard library, and one
// vocabulary shared by the store, the service, the compute drivers and the
// HTTP edge. Errors carry a Kind (not found, conflict, ...; the kinds are
// the sentinel errors too) and, when meant for a client, a Code pairing the
// kind with the Huawei error code sent; only internal/api maps them to HTTP
// statuses. ValidID is the one rule for resource ids.
package ecs
