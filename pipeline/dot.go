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
		label := es.el.Name() + "\\n" + strings.TrimPrefix(fmt.Sprintf("%T", es.el), "*")
		if es.auto {
			label += "\\n(converter)"
			b.WriteString("    style=dashed; color=blue;\n")
		}
		fmt.Fprintf(&b, "    label=%s;\n", quote(label))
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
			fmt.Fprintf(&b, "    %s [label=%s, shape=%s];\n", id, quote(pad.Name()+"\\n"+caps), shape)
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

// quote makes s a DOT string; \n sequences already in s stay line breaks.
func quote(s string) string {
	s = strings.ReplaceAll(s, `"`, `\"`)
	return `"` + s + `"`
}
