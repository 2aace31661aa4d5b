package engine

import "github.com/warden-gateway/warden/internal/config"

// DefaultMaxBodyBytes bounds a request body when limits.max_body_bytes is
// not set; a negative max_body_bytes means no limit.
const DefaultMaxBodyBytes = 16 << 20

// MaxBodyBytes is the body limit in force: 0 means none.
func MaxBodyBytes(l *config.Limits) int64 {
	switch {
	case l == nil || l.MaxBodyBytes == 0:
		return DefaultMaxBodyBytes
	case l.MaxBodyBytes < 0:
		return 0
	}
	return l.MaxBodyBytes
}
