// Package cache holds tailor's bounded in-memory stores. It knows nothing
// of transports: the proxy fills the page cache, and the sync package will
// feed the profile store.
package cache
