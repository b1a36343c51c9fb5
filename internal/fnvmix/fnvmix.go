// Package fnvmix is the stable 64-bit string hash that experiments are
// bucketed by (rules) and that the visitor's state keeps their variants
// by (identity): FNV-1a over the bytes, then the murmur3 finalizer,
// whose avalanche makes up for FNV's weak mixing of the last bytes. Its
// values are part of what visitors hold (their variant, their cookie):
// they must never change.
package fnvmix

// Offset is FNV-1a's 64-bit offset basis, the hash of nothing; Prime its
// prime.
const (
	Offset = 14695981039346656037
	Prime  = 1099511628211
)

// String continues the FNV-1a hash h over the bytes of s.
func String(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= Prime
	}
	return h
}

// Mix is the murmur3 finalizer: every output bit depends on every input
// bit.
func Mix(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}
