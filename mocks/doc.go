// Package mocks holds gomock mocks of the root package's ports, generated
// by mockgen from the //go:generate line in the steward package (run
// `go generate github.com/stewardlabs/steward`). Never edit the generated
// files by hand.
//
// Use MockIdentityProvider to test code that depends on
// steward.IdentityProvider when a real provider, or MemoryIdentity, is not
// what the test is about: for example to make a call fail, or to assert
// that a call is never made.
//
//	ctrl := gomock.NewController(t)
//	idp := mocks.NewMockIdentityProvider(ctrl)
//	idp.EXPECT().GetUser(gomock.Any(), "user_1").Return(steward.User{}, steward.ErrUserNotFound)
//
// # Errors
//
// A mock returns exactly the errors the test tells it to; an unexpected
// or missing call fails the test through the gomock.Controller.
package mocks
