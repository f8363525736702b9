// Package topo builds, for enforcer tests, two network namespaces joined by
// a veth pair: a client (198.51.100.1, 2001:db8::1) and a server that
// answers TCP and UDP on 198.51.100.2, 198.51.100.3, 2001:db8::2 and
// 2001:db8::3. Tests block addresses in the client namespace and check
// which requests still get through.
package topo
