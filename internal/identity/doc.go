// Package identity is the identity store: the entities that stand for the
// workloads and people behind tokens, and the aliases that tie each entity
// to the principal an auth method proved (a service account's uid on a
// kubernetes mount, a CI job's subject on a jwt mount, a role id on an
// approle mount). It serves the identity/ mount's read endpoints (entities
// and aliases by id and name, lookups) through the backend [NewBackend]
// returns, and resolves the identity templates of ACL policies
// ([Entity.Template]).
//
// An entity appears at the first login of a principal: [Store.ForLogin]
// finds the alias of (mount accessor, alias name) or creates it with a new
// entity, one entity per auth mount and principal, and keeps the alias's
// metadata what the latest login proved, so that a policy templated on
// {{identity.entity.aliases.<accessor>.metadata.service_account_namespace}}
// follows the workload.
//
// Like the token store it knows nothing of HTTP, mounts or the barrier: it
// is handed a [logical.Storage] view (the identity/ mount's, behind the
// barrier) and keeps every entity in memory, loaded once by [Store.Load]
// at unseal. Entities are never changed in place: a change stores a new
// copy and swaps it in, so a reader may keep the *Entity it got without a
// lock. Every stored entity gets a new [Entity.Revision], which is what an
// ACL compiled for it is cached under.
package identity
