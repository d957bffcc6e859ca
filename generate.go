package steward

//go:generate mockgen -destination=mocks/identity.go -package=mocks -typed github.com/stewardlabs/steward IdentityProvider
