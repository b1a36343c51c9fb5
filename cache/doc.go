// Package cache holds tailor's bounded in-memory stores. It knows nothing
// of transports: the proxy fills the page cache, and the sync package will
// feed the profile store.
//
// ParseProfile is the one reader of profile documents (the KV watch and
// lookups, tailor import, the admin API): it refuses any number JSON does
// not have or float64 cannot hold (NaN, Inf, 1e999), wherever it is in the
// document. ProfilesBytes says what a profile store of a given size takes
// when full, for tailor check to compare with the machine's memory.
package cache
