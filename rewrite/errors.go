package rewrite

import "errors"

var (
	// ErrNotText is returned by Compile for a body that is not in an
	// ASCII-compatible encoding: it starts with a UTF-16 byte-order mark.
	// Such a body is served unchanged.
	ErrNotText = errors.New("page is not text")

	// ErrTooLarge is returned by Compile for a page of 2 GiB or more.
	ErrTooLarge = errors.New("page too large")

	// ErrUnparsable is returned by Compile when the HTML parser gives up on
	// a page, which golang.org/x/net/html does when elements nest more than
	// 512 deep.
	ErrUnparsable = errors.New("page cannot be parsed")

	// ErrNilSelector is returned by Compile when a selector is nil.
	ErrNilSelector = errors.New("nil selector")

	// ErrTooComplex is returned by Compile when matching the selectors on
	// the page takes more work than a page is allowed (see matchBudget):
	// a huge page with selectors of many mixed steps. Such a page is
	// served unchanged.
	ErrTooComplex = errors.New("selectors too complex for page")
)
