package fnvmix

import (
	"hash/fnv"
	"testing"
)

// String is FNV-1a as the standard library computes it, also when it
// continues a hash.
func TestStringIsFNV1a(t *testing.T) {
	for _, s := range []string{"", "a", "hero-copy-test", "Qk3x\x00Z", "ünïcode"} {
		h := fnv.New64a()
		h.Write([]byte(s + s))
		if got, want := String(String(Offset, s), s), h.Sum64(); got != want {
			t.Errorf("String(String(Offset, %q), %q) = %#x, want FNV-1a's %#x", s, s, got, want)
		}
	}
}

// The values visitors hold depend on these: they must never change.
func TestValuesArePinned(t *testing.T) {
	if got := Mix(String(Offset, "hero-copy-test")); got != 0x3cb7e27abe1f73ee {
		t.Errorf("Mix(String(Offset, %q)) = %#x, want 0x3cb7e27abe1f73ee", "hero-copy-test", got)
	}
}
