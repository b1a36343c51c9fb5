package sync

import "errors"

// ErrUnavailable is returned when the central store cannot be reached
// right now: the caller serves what it has and does not wait.
var ErrUnavailable = errors.New("central store unavailable")
