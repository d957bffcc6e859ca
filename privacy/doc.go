// Package privacy exports and erases a user's data across the identity
// provider and the application's DataStores.
package privacy
