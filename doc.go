// Package steward holds the ports and types shared by the whole library:
// the IdentityProvider port, User, UserQuery, MetadataPatch and the
// sentinel errors.
package steward
