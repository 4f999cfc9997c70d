package main

import (
	"fmt"
	"hash/fnv"
	"html"
	"sort"
	"strings"
)

// A flame graph of folded stacks: one rectangle per frame of each distinct
// call path, as wide as the samples that went through it, callers below
// their callees, siblings in name order. Frames narrower than a pixel are
// left out, which keeps the file small.

type flameNode struct {
	name     string
	samples  int
	children map[string]*flameNode
}

func (n *flameNode) child(name string) *flameNode {
	if n.children == nil {
		n.children = map[string]*flameNode{}
	}
	c := n.children[name]
	if c == nil {
		c = &flameNode{name: name}
		n.children[name] = c
	}
	return c
}

// flameTree merges folded stacks into a tree whose root is "all".
func flameTree(folded []stackCount) *flameNode {
	root := &flameNode{name: "all"}
	for _, s := range folded {
		root.samples += s.count
		n := root
		for _, f := range strings.Split(s.stack, ";") {
			n = n.child(f)
			n.samples += s.count
		}
	}
	return root
}

func (n *flameNode) depth() int {
	d := 0
	for _, c := range n.children {
		d = max(d, c.depth())
	}
	return d + 1
}

func (n *flameNode) sorted() []*flameNode {
	cs := make([]*flameNode, 0, len(n.children))
	for _, c := range n.children {
		cs = append(cs, c)
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].name < cs[j].name })
	return cs
}

// flameColor is a warm colour that depends only on the frame's name, so
// that a function has the same colour in every graph.
func flameColor(name string) string {
	h := fnv.New32a()
	h.Write([]byte(name))
	v := h.Sum32()
	return fmt.Sprintf("rgb(%d,%d,%d)", 205+v%50, 80+(v>>8)%130, 30+(v>>16)%50)
}

const (
	flameWidth = 1200.0
	flameRow   = 16.0
	flameTop   = 44.0
	flamePad   = 10.0
	flameChar  = 6.6 // average width of a character at font-size 11
)

func flameSVG(title string, folded []stackCount) string {
	root := flameTree(folded)
	depth := root.depth()
	height := flameTop + float64(depth)*flameRow + flamePad
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="monospace" font-size="11">`+"\n", flameWidth, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="#fdfdf5"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%.0f" y="18" font-size="14" font-family="sans-serif">%s</text>`+"\n", flamePad, html.EscapeString(title))
	fmt.Fprintf(&b, `<text x="%.0f" y="34" font-family="sans-serif" fill="#555">%d samples; width is the share of samples, callers below callees; hover a frame for its count</text>`+"\n", flamePad, root.samples)
	if root.samples > 0 {
		scale := (flameWidth - 2*flamePad) / float64(root.samples)
		var draw func(n *flameNode, x float64, level int)
		draw = func(n *flameNode, x float64, level int) {
			w := float64(n.samples) * scale
			if w < 1 {
				return
			}
			y := height - flamePad - float64(level+1)*flameRow
			pct := 100 * float64(n.samples) / float64(root.samples)
			name := html.EscapeString(n.name)
			fmt.Fprintf(&b, `<g><title>%s: %d samples (%.2f %%)</title><rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s" rx="1"/>`,
				name, n.samples, pct, x, y, w-0.5, flameRow-1, flameColor(n.name))
			if fit := int((w - 4) / flameChar); fit >= 3 {
				label := n.name
				if len(label) > fit {
					label = label[:fit-2] + ".."
				}
				fmt.Fprintf(&b, `<text x="%.1f" y="%.1f">%s</text>`, x+2, y+flameRow-4, html.EscapeString(label))
			}
			b.WriteString("</g>\n")
			cx := x
			for _, c := range n.sorted() {
				draw(c, cx, level+1)
				cx += float64(c.samples) * scale
			}
		}
		draw(root, flamePad, 0)
	}
	b.WriteString("</svg>\n")
	return b.String()
}
