// Package rbac provides roles, permissions, compiled policies and HTTP
// middleware for access checks.
package rbac
