package sync

import "errors"

// ErrUnavailable is returned when the central store cannot be reached
// right now: the caller serves what it has and does not wait.
var ErrUnavailable = errors.New("central store unavailable")

// ErrNoBucket: the rule bucket does not exist yet; "tailor rules push"
// creates it.
var ErrNoBucket = errors.New("no such rule bucket")

// ErrUnreadableVersion: a key of the rule bucket holds something that is
// not a rule version (not JSON, or a number other than its key's). It is
// skipped, never applied.
var ErrUnreadableVersion = errors.New("rule version is not readable")

// ErrArchiveTooLarge: a rule version's archive unpacks to more than the
// limits allow (MaxRuleVersionBytes, MaxRuleVersionFiles, or a rule
// file's own limit).
var ErrArchiveTooLarge = errors.New("rule archive too large")
