//go:build !linux

package main

// platformRoles are the helper roles that only work on Linux: none here.
var platformRoles = map[string]helperRole{}
