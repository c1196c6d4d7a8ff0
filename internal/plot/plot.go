// Package plot draws line plots as SVG (learning curves in reports):
// titles, axis labels, legends, and a smoothed line over noisy series.
package plot

import (
	"errors"
	"fmt"
	"html"
	"io"
	"math"
	"strconv"
	"strings"
)

// Plot is a line plot.
type Plot struct {
	Name   string // file name without extension
	Title  string
	XLabel string
	YLabel string
	Series []Series
}

// Series is one line of a plot.
type Series struct {
	Name string
	X, Y []float64
}

// palette colours the series of a plot, in order.
var palette = []string{"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"}

// smoothMin is the number of points from which a series is drawn twice:
// its raw points, faint, and a smoothed line over them.
const smoothMin = 12

// SVG draws the plot as a width x height SVG image: its title, a legend,
// a frame with grid lines at round values and their labels, the axis
// labels, and for each series its raw points and (with smoothMin points or
// more) a smoothed line (see [Smooth]). The text is real text, so it stays
// sharp and searchable.
func (p *Plot) SVG(w io.Writer, width, height int) error {
	if width < 200 || height < 150 {
		return errors.New("eval: plot too small")
	}
	x0, x1, y0, y1 := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, s := range p.Series {
		for i := range s.X {
			if i >= len(s.Y) || !finite(s.X[i]) || !finite(s.Y[i]) {
				continue
			}
			x0, x1 = math.Min(x0, s.X[i]), math.Max(x1, s.X[i])
			y0, y1 = math.Min(y0, s.Y[i]), math.Max(y1, s.Y[i])
		}
	}
	if x0 > x1 { // no data
		x0, x1, y0, y1 = 0, 1, 0, 1
	}
	if x1 == x0 {
		x1 = x0 + 1
	}
	if y1 == y0 {
		y0, y1 = y0-1, y1+1
	}
	pad := (y1 - y0) * 0.05
	y0, y1 = y0-pad, y1+pad

	e := html.EscapeString
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12" role="img" aria-label="%s">`+"\n",
		width, height, width, height, e(p.Title))
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#fff"/>`+"\n", width, height)
	fmt.Fprintf(&b, `<text x="%d" y="20" text-anchor="middle" font-size="15" font-weight="bold">%s</text>`+"\n", width/2, e(p.Title))

	// The legend: one entry per series, wrapped into rows.
	smoothed := false
	for _, s := range p.Series {
		smoothed = smoothed || len(s.X) >= smoothMin
	}
	type entry struct {
		text, colour string
	}
	var entries []entry
	for i, s := range p.Series {
		entries = append(entries, entry{s.Name, palette[i%len(palette)]})
	}
	if smoothed {
		entries = append(entries, entry{"(dots: raw values; line: moving average)", ""})
	}
	lx, ly := 64, 40
	for _, en := range entries {
		wd := 7*len(en.text) + 34
		if lx+wd > width-8 && lx > 64 {
			lx, ly = 64, ly+18
		}
		if en.colour != "" {
			fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="3"/>`, lx, ly-4, lx+20, ly-4, en.colour)
			fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", lx+26, ly, e(en.text))
		} else {
			fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#666">%s</text>`+"\n", lx, ly, e(en.text))
		}
		lx += wd
	}

	left, right, top, bottom := 64, width-16, ly+14, height-48
	px := func(x float64) float64 { return float64(left) + (x-x0)/(x1-x0)*float64(right-left) }
	py := func(y float64) float64 { return float64(bottom) - (y-y0)/(y1-y0)*float64(bottom-top) }
	for _, v := range ticks(y0, y1, 5) {
		y := py(v)
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#e4e4e4"/>`, left, y, right, y)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", left-6, y+4, fmtTick(v))
	}
	for _, v := range ticks(x0, x1, 6) {
		x := px(v)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#e4e4e4"/>`, x, top, x, bottom)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x, bottom+16, fmtTick(v))
	}
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#444"/>`+"\n", left, top, right-left, bottom-top)
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">%s</text>`+"\n", (left+right)/2, bottom+36, e(p.XLabel))
	fmt.Fprintf(&b, `<text transform="translate(16 %d) rotate(-90)" text-anchor="middle">%s</text>`+"\n", (top+bottom)/2, e(p.YLabel))

	path := func(xs, ys []float64) string {
		var d strings.Builder
		pen := false
		for j := range xs {
			if j >= len(ys) || !finite(xs[j]) || !finite(ys[j]) {
				pen = false
				continue
			}
			c := 'L'
			if !pen {
				c = 'M'
			}
			fmt.Fprintf(&d, "%c%.1f %.1f", c, px(xs[j]), py(ys[j]))
			pen = true
		}
		return d.String()
	}
	for i, s := range p.Series {
		c := palette[i%len(palette)]
		n := min(len(s.X), len(s.Y))
		if n < smoothMin {
			fmt.Fprintf(&b, `<path d="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", path(s.X, s.Y), c)
		}
		b.WriteString(`<g fill="` + c + `"`)
		if n >= smoothMin {
			b.WriteString(` fill-opacity="0.3"`)
		}
		b.WriteString(">")
		for j := 0; j < n; j++ {
			if finite(s.X[j]) && finite(s.Y[j]) {
				fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="2"/>`, px(s.X[j]), py(s.Y[j]))
			}
		}
		b.WriteString("</g>\n")
		if n >= smoothMin {
			fmt.Fprintf(&b, `<path class="smoothed" d="%s" fill="none" stroke="%s" stroke-width="2.5"/>`+"\n", path(s.X, Smooth(s.Y[:n], smoothWindow(n))), c)
		}
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// smoothWindow is the moving average's width for n points: about a
// twentieth of them, at least 5, odd.
func smoothWindow(n int) int {
	return max(5, n/20) | 1
}

// Smooth returns the centred moving average of ys over k points (fewer at
// the ends), skipping values that are not finite, which stay as they are.
func Smooth(ys []float64, k int) []float64 {
	out := make([]float64, len(ys))
	h := k / 2
	for i := range ys {
		if !finite(ys[i]) {
			out[i] = ys[i]
			continue
		}
		sum, n := 0.0, 0
		for j := max(0, i-h); j <= min(len(ys)-1, i+h); j++ {
			if finite(ys[j]) {
				sum += ys[j]
				n++
			}
		}
		out[i] = sum / float64(n)
	}
	return out
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// ticks returns round values between lo and hi, about n of them.
func ticks(lo, hi float64, n int) []float64 {
	step := math.Pow(10, math.Floor(math.Log10((hi-lo)/float64(n))))
	for _, m := range []float64{1, 2, 5, 10} {
		if (hi-lo)/(step*m) <= float64(n) {
			step *= m
			break
		}
	}
	var out []float64
	for v := math.Ceil(lo/step) * step; v <= hi+step*1e-9; v += step {
		if math.Abs(v) < step*1e-9 {
			v = 0
		}
		out = append(out, v)
	}
	return out
}

func fmtTick(v float64) string {
	if v != 0 && (math.Abs(v) >= 1e5 || math.Abs(v) < 1e-3) {
		return strconv.FormatFloat(v, 'e', 0, 64)
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

// Legend describes a plot in words (its series and their colours), for
// Markdown.
func (p *Plot) Legend() string {
	var parts []string
	for i, s := range p.Series {
		parts = append(parts, fmt.Sprintf("%s (%s)", s.Name, colorNames[i%len(colorNames)]))
	}
	return "**" + p.Title + "** (x: " + p.XLabel + ", y: " + p.YLabel + "): " + strings.Join(parts, ", ")
}

var colorNames = []string{"blue", "orange", "green", "red", "purple", "brown", "pink", "grey"}

// Matrix is a heat map of counts: a confusion matrix, rows the true
// classes, columns the predicted, each cell shaded by its share of its
// row.
type Matrix struct {
	Title  string
	Labels []string
	Counts [][]int // [true][predicted]
}

// SVG draws the matrix with its labels, each cell's count written in it
// when it is not zero.
func (m *Matrix) SVG(w io.Writer) error {
	n := len(m.Labels)
	if n == 0 || len(m.Counts) != n {
		return errors.New("plot: a matrix needs as many rows as labels")
	}
	const cell, left, top = 16, 110, 120
	width, height := left+n*cell+10, top+n*cell+10
	e := html.EscapeString
	var b strings.Builder
	fmt.Fprintf(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"9\">\n", width, height, width, height)
	fmt.Fprintf(&b, "<text x=\"%d\" y=\"14\" font-size=\"12\">%s</text>\n", left, e(m.Title))
	fmt.Fprintf(&b, "<text x=\"%d\" y=\"30\" font-size=\"10\">predicted</text><text x=\"4\" y=\"%d\" font-size=\"10\">true</text>\n", left, top-4)
	for i, l := range m.Labels {
		fmt.Fprintf(&b, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s</text>\n", left-3, top+i*cell+cell*3/4, e(l))
		fmt.Fprintf(&b, "<text transform=\"translate(%d,%d) rotate(-60)\">%s</text>\n", left+i*cell+cell*3/4, top-3, e(l))
	}
	for i, row := range m.Counts {
		if len(row) != n {
			return fmt.Errorf("plot: matrix row %d has %d cells, want %d", i, len(row), n)
		}
		total := 0
		for _, c := range row {
			total += c
		}
		for j, c := range row {
			shade := 0.0
			if total > 0 {
				shade = float64(c) / float64(total)
			}
			fmt.Fprintf(&b, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#1f77b4\" fill-opacity=\"%.3f\" stroke=\"#ddd\"/>\n", left+j*cell, top+i*cell, cell, cell, shade)
			if c > 0 {
				fmt.Fprintf(&b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%d</text>\n", left+j*cell+cell/2, top+i*cell+cell*3/4, c)
			}
		}
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}
