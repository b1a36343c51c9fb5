package sync

import (
	"encoding/base64"
	"strings"
)

// b64Prefix marks a KV key that carries a base64url-encoded profile id,
// for ids that are not valid KV keys as they are.
const b64Prefix = "b64."

// maxPlainKey is the longest id used as a KV key as it is.
const maxPlainKey = 200

// Key returns the KV key of profile id: the id itself when it matches
// [A-Za-z0-9_-]{1,200}, else "b64." and the id in unpadded base64url.
func Key(id string) string {
	if plainKey(id) {
		return id
	}
	return b64Prefix + base64.RawURLEncoding.EncodeToString([]byte(id))
}

// ID returns the profile id a KV key stands for; ok is false for a key
// that no id maps to (Key never produces it).
func ID(key string) (id string, ok bool) {
	if rest, found := strings.CutPrefix(key, b64Prefix); found {
		b, err := base64.RawURLEncoding.DecodeString(rest)
		if err != nil || len(b) == 0 || plainKey(string(b)) {
			return "", false
		}
		return string(b), true
	}
	if !plainKey(key) {
		return "", false
	}
	return key, true
}

func plainKey(id string) bool {
	if len(id) == 0 || len(id) > maxPlainKey {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// subject returns the NATS subject a KV put of key is published on: the
// bucket's stream takes "$KV.<bucket>.<key>".
func subject(bucket, key string) string {
	return "$KV." + bucket + "." + key
}
