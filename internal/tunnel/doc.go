// Package tunnel takes a visitor's request to switch protocols (RFC 9110
// section 7.8; RFC 6455 section 4 for WebSocket) to the origin on a
// connection of its own, and on the origin's 101 splices the two
// connections (internal/splice), bytes copied both ways as they come,
// until either side closes or the pair has been idle for the idle
// timeout.
//
// An upgraded connection is not HTTP any more: no identity, no rules, no
// events. tailor never looks inside the tunnel. The proxy decides which
// requests come here (header.UpgradeProtocols), builds the headers the
// origin sees as for any request, relays an answer that is not a switch
// as any response, and answers 502 or 504 when there is none: Open
// returns those to it.
package tunnel
