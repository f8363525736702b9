package ftrace

import (
	"fmt"
	"strings"
)

// kprobeDef is one kprobe event the kprobe mode defines.
//
// Every fetch argument reads a socket address the kernel function was
// passed (struct sockaddr_in / sockaddr_in6, or msghdr.msg_name, the first
// member of struct msghdr, pointing at one). Those layouts are user ABI and
// do not change between kernel builds, unlike struct sock offsets, so the
// probes need neither BTF nor kernel headers. $argN needs
// CONFIG_HAVE_FUNCTION_ARG_ACCESS_API (x86-64, arm64, s390, powerpc, ...).
type kprobeDef struct {
	event  string // event name inside the group
	symbol string // kernel function
	role   role
	args   string // fetch arguments
}

// sockaddr_in: family@0 (u16, host order), port@2 (u16, network order),
// addr@4. sockaddr_in6: family@0, port@2, flowinfo@4, addr@8 (16 bytes).
const (
	fetchIn4     = "family=+0($arg2):u16 port=+2($arg2):u16 addr=+4($arg2):u32"
	fetchIn6     = "family=+0($arg2):u16 port=+2($arg2):u16 addr0=+8($arg2):u32 addr1=+12($arg2):u32 addr2=+16($arg2):u32 addr3=+20($arg2):u32"
	fetchMsgIn4  = "family=+0(+0($arg2)):u16 port=+2(+0($arg2)):u16 addr=+4(+0($arg2)):u32"
	fetchMsgIn6  = "family=+0(+0($arg2)):u16 port=+2(+0($arg2)):u16 addr0=+8(+0($arg2)):u32 addr1=+12(+0($arg2)):u32 addr2=+16(+0($arg2)):u32 addr3=+20(+0($arg2)):u32"
	kprobePrefix = "procwall_"
)

// kprobeDefs are the kprobe mode's probes: the connect path of TCP and
// UDP and the UDP send path (the part of sock_sendmsg, seed 000's hook,
// that carries a destination per datagram).
var kprobeDefs = []kprobeDef{
	{"tcp4_connect", "tcp_v4_connect", roleTCP4Connect, fetchIn4},
	{"tcp6_connect", "tcp_v6_connect", roleTCP6Connect, fetchIn6},
	{"udp4_connect", "ip4_datagram_connect", roleUDP4Connect, fetchIn4},
	{"udp6_connect", "ip6_datagram_connect", roleUDP6Connect, fetchIn6},
	{"udp4_send", "udp_sendmsg", roleUDP4Send, fetchMsgIn4},
	{"udp6_send", "udpv6_sendmsg", roleUDP6Send, fetchMsgIn6},
}

// kprobeLine is the line written to kprobe_events to define d in group.
func kprobeLine(group string, d kprobeDef) string {
	return fmt.Sprintf("p:%s/%s %s %s", group, d.event, d.symbol, d.args)
}

// kprobeRemoveLine is the line that removes event group/event.
func kprobeRemoveLine(group, event string) string {
	return "-:" + group + "/" + event
}

// parseKprobeEvents returns the (group, event) pairs of the probes listed
// in kprobe_events (or dynamic_events: lines "p:GROUP/EVENT SYMBOL ARGS",
// "r...:GROUP/EVENT ...") whose group starts with prefix.
func parseKprobeEvents(text, prefix string) [][2]string {
	var out [][2]string
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		head, _, _ := strings.Cut(line, " ")
		_, name, ok := strings.Cut(head, ":")
		if !ok || (head[0] != 'p' && head[0] != 'r') {
			continue
		}
		g, ev, ok := strings.Cut(name, "/")
		if !ok || !strings.HasPrefix(g, prefix) {
			continue
		}
		out = append(out, [2]string{g, ev})
	}
	return out
}
