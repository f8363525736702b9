package procwall

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
)

// WritePrometheus writes the metrics in the Prometheus text exposition
// format (version 0.0.4).
func (m Metrics) WritePrometheus(w io.Writer) error {
	bw := bufio.NewWriter(w)
	counterVec := func(name, help, label string, vals map[string]uint64) {
		fmt.Fprintf(bw, "# HELP %s %s\n# TYPE %s counter\n", name, help, name)
		keys := make([]string, 0, len(vals))
		for k := range vals {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			fmt.Fprintf(bw, "%s{%s=\"%s\"} %d\n", name, label, labelEscaper.Replace(k), vals[k])
		}
	}
	single := func(name, typ, help string, v uint64) {
		fmt.Fprintf(bw, "# HELP %s %s\n# TYPE %s %s\n%s %d\n", name, help, name, typ, name, v)
	}
	counterVec("procwall_events_total", "Events applied, per source.", "source", m.Events)
	counterVec("procwall_lost_total", "Reports of lost events (kernel buffer overflows), per source.", "source", m.Lost)
	counterVec("procwall_decisions_total", "Decision records, per action.", "action", m.Decisions)
	single("procwall_resyncs_total", "counter", "Process tree resynchronisations from /proc.", m.Resyncs)
	single("procwall_anomalies_total", "counter", "Events the process tree found inconsistent.", m.Anomalies)
	single("procwall_enforcer_errors_total", "counter", "Enforcer calls that failed.", m.EnforceErrs)
	single("procwall_active_blocks", "gauge", "Blocks currently held.", uint64(m.ActiveBlock))
	single("procwall_tree_live_processes", "gauge", "Live processes in the tree.", uint64(m.Tree.Live))
	single("procwall_tree_exited_processes", "gauge", "Exited processes retained in the tree.", uint64(m.Tree.Exited))
	single("procwall_tree_reaped_total", "counter", "Exited processes reaped after retention.", m.Tree.Reaped)
	single("procwall_tree_evicted_total", "counter", "Exited processes evicted early by the cap.", m.Tree.Evicted)
	single("procwall_assoc_processes", "gauge", "Processes in the association index.", uint64(m.Assoc.Processes))
	single("procwall_assoc_associations", "gauge", "Associations in the index.", uint64(m.Assoc.Associations))
	single("procwall_assoc_evictions_total", "counter", "Associations evicted by the bounds.", m.Assoc.Evictions)
	if m.RulesVersion != "" {
		fmt.Fprintf(bw, "# HELP procwall_rules_info Active rule bundle.\n# TYPE procwall_rules_info gauge\nprocwall_rules_info{version=\"%s\"} 1\n",
			labelEscaper.Replace(m.RulesVersion))
	}
	return bw.Flush()
}

// labelEscaper escapes a label value as the text format wants it: only
// backslash, double quote and newline; everything else (UTF-8 included)
// is written as it is.
var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

// MetricsHandler serves the Protector's metrics in the Prometheus text
// format.
func MetricsHandler(p *Protector) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		_ = p.Metrics().WritePrometheus(w)
	})
}
