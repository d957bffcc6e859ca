// Package clerkadapter connects Steward to Clerk through the official SDK
// (github.com/clerk/clerk-sdk-go/v2).
package clerkadapter
