// Package ecs holds the domain types of the service (servers, volumes,
// images, key pairs, jobs, flavors, credentials) and its error kinds.
//
// It promises: no I/O, no dependencies beyond the standard library, and one
// vocabulary shared by the store, the service, the compute drivers and the
// HTTP edge. Error kinds are Huawei error codes; only internal/api maps them
// to HTTP statuses.
package ecs
