// Package listen is the visitor listener's connection discipline, what a
// proxy left in front of a site needs to survive its clients:
//
//   - Listener rides out accept errors that pass (out of file descriptors,
//     a connection aborted before it was accepted) with net/http's back-off,
//     instead of ending Serve, and counts them.
//   - Conn bounds the silence between reads and between writes (an
//     inactivity timeout, as nginx's send_timeout), and a whole request
//     header (limits.header_timeout, against slowloris), from the accept or
//     a request's first byte to fasthttp's HeaderReceived hook
//     (BodyDeadline); not the keep-alive wait, not the body.
//   - Limits caps connections per client address (trusted proxies exempt,
//     IPv6 per /64) and in all; at the cap a newcomer takes the place of
//     the connection that has waited longest without a request under way.
//   - Certificate is what the TLS listener serves (listen_tls): the pair
//     re-read when its files change, the last good one kept when a new one
//     does not load.
//
// The proxy's origin client wraps its connections in Conn too, for the
// response timeout.
package listen
