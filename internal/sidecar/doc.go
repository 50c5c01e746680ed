// Package sidecar is the lab's service-mesh sidecar: a TCP proxy (and a
// UDP relay on the same port) listening on loopback in a client's
// namespace and forwarding to the real server, as Envoy or linkerd-proxy
// do for a pod (client → proxy on loopback → server).
//
// The proxy moves bytes with plain read(2)/write(2) on each connection,
// never splice(2) (io.Copy between two *net.TCPConn splices): data that an
// sk_msg program redirects into a socket's receive queue (the lab's
// sidecar-sockmap mode) is only seen by a reader of that socket, not by
// splice from its TCP queue.
//
// It imports only netns; experiment starts one per mode that has a
// sidecar, next to the mode's server.
package sidecar
