package provenance

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// NodeType is the type of a node of the simplified graph.
type NodeType uint8

// Node types. Resources (every type but process) are merged by type and
// name: one node per file, URL, domain and address.
const (
	TypeProcess NodeType = iota // a process (or identical sibling processes merged)
	TypeFile                    // a file path (or a bare file name when no directory was known)
	TypeURL                     // a URL named on a command line
	TypeDomain                  // a host name
	TypeAddress                 // an IP address (ports are on the edges)
	numTypes
)

var typeNames = [numTypes]string{"process", "file", "url", "domain", "address"}

// String returns the type's name as used in JSON.
func (t NodeType) String() string {
	if t < numTypes {
		return typeNames[t]
	}
	return "type(" + strconv.Itoa(int(t)) + ")"
}

// ParseNodeType returns the node type named s.
func ParseNodeType(s string) (NodeType, error) {
	for i, n := range typeNames {
		if n == s {
			return NodeType(i), nil
		}
	}
	return 0, fmt.Errorf("unknown node type %q (want process, file, url, domain or address)", s)
}

// MarshalText implements encoding.TextMarshaler.
func (t NodeType) MarshalText() ([]byte, error) {
	if t >= numTypes {
		return nil, fmt.Errorf("invalid node type %d", t)
	}
	return []byte(t.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (t *NodeType) UnmarshalText(b []byte) error {
	v, err := ParseNodeType(string(b))
	if err != nil {
		return err
	}
	*t = v
	return nil
}

// EdgeKind says what an edge of the graph records.
type EdgeKind uint8

// Edge kinds. From is a process unless noted.
const (
	EdgeSpawned    EdgeKind = iota // process → child process
	EdgeExecuted                   // → file run as a program or script; → URL whose content was piped into a shell
	EdgeDownloaded                 // → file a download was saved to
	EdgeFetched                    // → URL requested (wget, curl, ...)
	EdgeWrote                      // → file written or created (redirection, cp/mv target, file event)
	EdgeRead                       // → file read (input redirection, cp/mv source)
	EdgeDeleted                    // → file deleted
	EdgeAccessed                   // → resource named on the command line with no known role
	EdgeConnected                  // → address or domain connected to (connect/send events, nc, ssh, /dev/tcp, ...)
	EdgeAccepted                   // → address a connection was accepted from
	EdgeResolved                   // → domain looked up (DNS event, dig, nslookup, host)
	EdgeResolvesTo                 // domain → address (DNS answer)
	EdgeHost                       // URL → its host (domain or address)
	numEdgeKinds
)

var edgeNames = [numEdgeKinds]string{
	"spawned", "executed", "downloaded", "fetched", "wrote", "read", "deleted",
	"accessed", "connected", "accepted", "resolved", "resolves_to", "host",
}

// String returns the kind's name as used in JSON.
func (k EdgeKind) String() string {
	if k < numEdgeKinds {
		return edgeNames[k]
	}
	return "edge(" + strconv.Itoa(int(k)) + ")"
}

// ParseEdgeKind returns the edge kind named s.
func ParseEdgeKind(s string) (EdgeKind, error) {
	for i, n := range edgeNames {
		if n == s {
			return EdgeKind(i), nil
		}
	}
	return 0, fmt.Errorf("unknown edge kind %q", s)
}

// MarshalText implements encoding.TextMarshaler.
func (k EdgeKind) MarshalText() ([]byte, error) {
	if k >= numEdgeKinds {
		return nil, fmt.Errorf("invalid edge kind %d", k)
	}
	return []byte(k.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (k *EdgeKind) UnmarshalText(b []byte) error {
	v, err := ParseEdgeKind(string(b))
	if err != nil {
		return err
	}
	*k = v
	return nil
}

// Role places a process node relative to the alert.
type Role string

// Roles of process nodes.
const (
	RoleAncestor   Role = "ancestor"
	RoleAlert      Role = "alert"
	RoleDescendant Role = "descendant"
)

// ProcessInfo describes one process of the tree.
type ProcessInfo struct {
	PID         int       `json:"pid"`
	Start       uint64    `json:"start,omitempty"`
	GUID        string    `json:"guid,omitempty"`
	Exe         string    `json:"exe,omitempty"`
	Argv        []string  `json:"argv,omitempty"`
	Cwd         string    `json:"cwd,omitempty"`
	Time        time.Time `json:"time,omitzero"`   // first seen (fork or first exec)
	Exited      time.Time `json:"exited,omitzero"` // exit time, if seen
	PPID        int       `json:"ppid,omitempty"`
	Placeholder bool      `json:"placeholder,omitempty"` // known only as a parent or by activity, never seen starting
}

// ID returns the process's identity as an alert ID accepted by
// [Tree.Resolve]: its GUID when it has one, else "pid@start", else "pid".
func (p ProcessInfo) ID() string {
	if p.GUID != "" {
		return p.GUID
	}
	if p.Start != 0 {
		return strconv.Itoa(p.PID) + "@" + strconv.FormatUint(p.Start, 10)
	}
	return strconv.Itoa(p.PID)
}

// Name returns the base name of the process's image (or of argv[0]), or
// "pid N" when neither is known.
func (p ProcessInfo) Name() string {
	if p.Exe != "" {
		return baseName(p.Exe)
	}
	if len(p.Argv) > 0 && p.Argv[0] != "" {
		return baseName(p.Argv[0])
	}
	return "pid " + strconv.Itoa(p.PID)
}

// Node is a node of the simplified graph.
type Node struct {
	ID   string   `json:"id"` // "n0", "n1", ... in a deterministic order
	Type NodeType `json:"type"`
	// Name: for a process the image base name, for a file its path, for
	// a URL the URL, for a domain the lower-case host name, for an
	// address the IP.
	Name string `json:"name"`
	// Process nodes only.
	Role      Role          `json:"role,omitempty"`
	Depth     int           `json:"depth,omitempty"` // generations below the alert in the full tree (negative: ancestors)
	Count     int           `json:"count,omitempty"` // processes merged into this node (identical siblings)
	Processes []ProcessInfo `json:"processes,omitempty"`
}

// MaxProcessesPerNode bounds Node.Processes; Count keeps the true number.
const MaxProcessesPerNode = 8

// Edge is a directed edge of the graph.
type Edge struct {
	From  string   `json:"from"`
	To    string   `json:"to"`
	Kind  EdgeKind `json:"kind"`
	Count int      `json:"count"`           // observations merged into this edge
	Ports []int    `json:"ports,omitempty"` // remote ports, for connected/accepted edges and URLs
}

// Stats sums up a simplification.
type Stats struct {
	TreeProcesses   int `json:"tree_processes"`   // processes in the full tree
	Ancestors       int `json:"ancestors"`        // step 1: ancestors of the alert
	Descendants     int `json:"descendants"`      // step 1: descendants of the alert
	Dropped         int `json:"dropped"`          // step 2: processes dropped by rules
	Merged          int `json:"merged"`           // step 4: processes merged into an identical sibling
	ProcessNodes    int `json:"process_nodes"`    // graph nodes of type process
	ResourceNodes   int `json:"resource_nodes"`   // graph nodes of the other types
	ResourceFinds   int `json:"resource_finds"`   // step 3: resources found before merging
	Edges           int `json:"edges"`            // graph edges
	UnparsedCommand int `json:"unparsed_command"` // command lines with a syntax error (parsed as far as possible)
}

// Graph is the simplified provenance graph around one alert. It is a
// plain value: safe to read from several goroutines, not to modify.
type Graph struct {
	Version int         `json:"version"` // 1
	Alert   string      `json:"alert"`   // ID of the alert's node
	AlertID string      `json:"alert_id"`
	Nodes   []Node      `json:"nodes"`
	Edges   []Edge      `json:"edges"`
	Stats   Stats       `json:"stats"`
	Rules   []Rule      `json:"rules,omitempty"` // the drop rules applied
	Process ProcessInfo `json:"alert_process"`

	procNode map[int32]int32 // tree process -> node index, for tests
}

// Node returns the node with the given ID.
func (g *Graph) Node(id string) (*Node, bool) {
	for i := range g.Nodes {
		if g.Nodes[i].ID == id {
			return &g.Nodes[i], true
		}
	}
	return nil, false
}

// Find returns the first node of the type and name.
func (g *Graph) Find(t NodeType, name string) (*Node, bool) {
	for i := range g.Nodes {
		if g.Nodes[i].Type == t && g.Nodes[i].Name == name {
			return &g.Nodes[i], true
		}
	}
	return nil, false
}

// Validate reports the first edge naming a missing node, a duplicate node
// ID or a missing alert node.
func (g *Graph) Validate() error {
	ids := make(map[string]bool, len(g.Nodes))
	for _, n := range g.Nodes {
		if ids[n.ID] {
			return &OpError{Op: "graph", Err: fmt.Errorf("%w: duplicate node id %q", ErrBadGraph, n.ID)}
		}
		ids[n.ID] = true
	}
	if !ids[g.Alert] {
		return &OpError{Op: "graph", Err: fmt.Errorf("%w: alert node %q missing", ErrBadGraph, g.Alert)}
	}
	for i, e := range g.Edges {
		if !ids[e.From] || !ids[e.To] {
			return &OpError{Op: "graph", Err: fmt.Errorf("%w: edge %d (%s→%s) names a missing node", ErrBadGraph, i, e.From, e.To)}
		}
	}
	return nil
}

// JSON returns the graph as one JSON object, the graph schema of the
// package documentation.
func (g *Graph) JSON() ([]byte, error) { return json.Marshal(g) }
