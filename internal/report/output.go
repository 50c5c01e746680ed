package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// SchemaVersion is the version of the envelope every latlab JSON document
// carries ("schema_version"): it changes when a stable field changes
// meaning or goes away, never when fields are added.
const SchemaVersion = 1

// Host is the machine a document was written on, the fingerprint the
// stored environments and watch's suspects use.
type Host struct {
	Kernel   string `json:"kernel"`
	CPUModel string `json:"cpu_model"`
	Cores    int    `json:"cores"`
}

// Meta is the "start" block of every JSON document, as iperf3 opens its
// output with one: which latlab wrote it, on what machine.
type Meta struct {
	Version string `json:"latlab_version"`
	Command string `json:"command,omitempty"`
	Host    Host   `json:"host"`
}

// Output says how to write a result: the format (table, json, csv; export
// also benchstat), the JSON envelope's Meta, and the latency percentiles
// tables and JSON print (nil: each writer's default set).
type Output struct {
	Format      string
	Meta        Meta
	Percentiles []float64
}

// WriteJSON writes v, which must encode as a JSON object, indented, with
// "schema_version" and "start" (m) as its first fields: the one envelope
// of latlab's JSON documents.
func WriteJSON(w io.Writer, m Meta, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode JSON: %w", err)
	}
	body = bytes.TrimSpace(body)
	if len(body) < 2 || body[0] != '{' {
		return fmt.Errorf("encode JSON: a document must be an object, got %.20s", body)
	}
	head, err := json.Marshal(struct {
		SchemaVersion int  `json:"schema_version"`
		Start         Meta `json:"start"`
	}{SchemaVersion, m})
	if err != nil {
		return fmt.Errorf("encode JSON: %w", err)
	}
	doc := head[:len(head)-1]
	if rest := bytes.TrimSpace(body[1:]); len(rest) > 1 {
		doc = append(append(doc, ','), rest...)
	} else {
		doc = append(doc, '}')
	}
	var out bytes.Buffer
	if err := json.Indent(&out, doc, "", "  "); err != nil {
		return fmt.Errorf("encode JSON: %w", err)
	}
	out.WriteByte('\n')
	_, err = w.Write(out.Bytes())
	return err
}

// ParsePercentiles parses a --percentiles list such as "50,90,99,99.9":
// each in (0, 100], no duplicates, kept in the given order.
func ParsePercentiles(list []string) ([]float64, error) {
	var out []float64
	for _, s := range list {
		s = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(s), "p"))
		if s == "" {
			continue
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || v <= 0 || v > 100 {
			return nil, fmt.Errorf("percentile %q: want a number in (0, 100], e.g. 50,90,99,99.9", s)
		}
		for _, o := range out {
			if o == v {
				return nil, fmt.Errorf("percentile %s given twice", s)
			}
		}
		out = append(out, v)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no percentiles given: want e.g. 50,90,99,99.9")
	}
	return out, nil
}

// PercentileName is how a percentile is labelled: p50, p99, p99.9.
func PercentileName(p float64) string { return "p" + PercentileKey(p) }

// PercentileKey is a percentile's key in JSON's "percentiles_ns": "50",
// "99.9".
func PercentileKey(p float64) string { return strconv.FormatFloat(p, 'f', -1, 64) }
