package pipeline

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/medley-go/medley/element"
)

// DOT renders the live graph in Graphviz's language: one box per element
// (converters inserted by negotiation dashed and blue), its pads with their
// caps, and an edge per link labelled with the negotiated caps. Render it
// with `dot -Tsvg`.
func (p *Pipeline) DOT() string {
	p.mu.Lock()
	els := append([]*elemState(nil), p.elements...)
	p.mu.Unlock()

	var b strings.Builder
	fmt.Fprintf(&b, "digraph %s {\n", quote(p.cfg.name))
	b.WriteString("  rankdir=LR;\n  compound=true;\n  node [shape=box, fontsize=10, fontname=\"Helvetica\"];\n  edge [fontsize=9, fontname=\"Helvetica\"];\n")
	ids := make(map[*element.Pad]string)
	for i, es := range els {
		fmt.Fprintf(&b, "  subgraph %s {\n", quote("cluster_"+strconv.Itoa(i)))
		lines := []string{es.el.Name(), strings.TrimPrefix(fmt.Sprintf("%T", es.el), "*")}
		if es.auto {
			lines = append(lines, "(converter)")
			b.WriteString("    style=dashed; color=blue;\n")
		}
		fmt.Fprintf(&b, "    label=%s;\n", quote(lines...))
		for j, pad := range es.el.Pads() {
			id := "p" + strconv.Itoa(i) + "_" + strconv.Itoa(j)
			ids[pad] = id
			caps := pad.Templates().String()
			if c, ok := pad.Caps(); ok {
				caps = c.String()
			}
			shape := "box"
			if pad.Direction() == element.Sink {
				shape = "ellipse"
			}
			fmt.Fprintf(&b, "    %s [label=%s, shape=%s];\n", id, quote(pad.Name(), caps), shape)
		}
		b.WriteString("  }\n")
	}
	for _, es := range els {
		for _, pad := range es.el.Pads() {
			if pad.Direction() != element.Src {
				continue
			}
			for _, sink := range pad.Sinks() {
				to, ok := ids[sink]
				if !ok {
					continue
				}
				label := pad.Kind().String()
				if c, ok := pad.Caps(); ok {
					label = c.String()
				}
				fmt.Fprintf(&b, "  %s -> %s [label=%s];\n", ids[pad], to, quote(label))
			}
		}
	}
	b.WriteString("}\n")
	return b.String()
}

// quote makes a DOT string of lines, one under the other.
func quote(lines ...string) string {
	for i, l := range lines {
		lines[i] = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(l)
	}
	return `"` + strings.Join(lines, `\n`) + `"`
}
