package eval

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html"
	"os"
	"path/filepath"
	"strings"

	"github.com/golem-ml/golem/internal/plot"
)

// Report is a report card: a summary table, sections of text and tables,
// line plots, and the data behind them. Write renders it as report.md,
// report.html (one page, its plots inline SVG) and report.json, with the
// plots as SVG files in plots/ for the Markdown.
type Report struct {
	Title    string
	Intro    string // a paragraph
	Summary  Table  // the table printed last on the terminal
	Sections []Section
	Plots    []Plot
	Data     any // written as report.json
}

// Table is a table of text cells.
type Table struct {
	Header []string
	Rows   [][]string
}

// Section is a titled part of the report.
type Section struct {
	Title string
	Text  string // paragraphs separated by blank lines
	Table *Table
	Code  string // preformatted text
	// Figures are images with text beside them (a scene and what models
	// said of it), or drawn figures (a confusion matrix).
	Figures []Figure
}

// Figure is an image with its caption: Src a file relative to the report's
// folder, or SVG a drawing that Write saves as plots/Name.svg (inline in
// the HTML).
type Figure struct {
	Name    string
	Src     string
	SVG     string
	Caption string // lines of text shown beside the image
}

// src is where the figure's image is, relative to the report's folder.
func (f Figure) src() string {
	if f.SVG != "" {
		return "plots/" + f.Name + ".svg"
	}
	return f.Src
}

// Plot is a line plot of one or more series.
type Plot = plot.Plot

// Series is one line of a plot.
type Series = plot.Series

// Write writes report.md, report.html, report.json and plots/*.svg into
// dir.
func (r *Report) Write(dir string) error {
	if err := os.MkdirAll(filepath.Join(dir, "plots"), 0o755); err != nil {
		return err
	}
	for _, s := range r.Sections {
		for _, f := range s.Figures {
			if f.SVG == "" {
				continue
			}
			if err := os.WriteFile(filepath.Join(dir, f.src()), []byte(f.SVG), 0o644); err != nil {
				return err
			}
		}
	}
	for _, p := range r.Plots {
		var b bytes.Buffer
		if err := p.SVG(&b, plotWidth, plotHeight); err != nil {
			return fmt.Errorf("eval: plot %s: %w", p.Name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, "plots", p.Name+".svg"), b.Bytes(), 0o644); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "report.md"), []byte(r.Markdown()), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "report.html"), []byte(r.HTML()), 0o644); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r.Data, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "report.json"), append(b, '\n'), 0o644)
}

// Text renders a table with aligned columns for a terminal.
func (t Table) Text() string {
	w := make([]int, len(t.Header))
	for i, h := range t.Header {
		w[i] = len([]rune(h))
	}
	for _, r := range t.Rows {
		for i, c := range r {
			if i < len(w) {
				w[i] = max(w[i], len([]rune(c)))
			}
		}
	}
	var b strings.Builder
	line := func(cells []string) {
		for i, c := range cells {
			if i >= len(w) {
				break
			}
			if i > 0 {
				b.WriteString("  ")
			}
			pad := w[i] - len([]rune(c))
			if i == 0 {
				b.WriteString(c + strings.Repeat(" ", pad))
			} else {
				b.WriteString(strings.Repeat(" ", pad) + c)
			}
		}
		b.WriteString("\n")
	}
	line(t.Header)
	sep := make([]string, len(w))
	for i := range w {
		sep[i] = strings.Repeat("-", w[i])
	}
	line(sep)
	for _, r := range t.Rows {
		line(r)
	}
	return b.String()
}

func (t Table) markdown() string {
	if len(t.Header) == 0 {
		return ""
	}
	esc := func(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, "|", `\|`), "\n", " ") }
	var b strings.Builder
	row := func(cells []string) {
		b.WriteString("|")
		for _, c := range cells {
			b.WriteString(" " + esc(c) + " |")
		}
		b.WriteString("\n")
	}
	row(t.Header)
	b.WriteString("|" + strings.Repeat(" --- |", len(t.Header)) + "\n")
	for _, r := range t.Rows {
		row(r)
	}
	return b.String()
}

func (t Table) html() string {
	if len(t.Header) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("<table>\n<tr>")
	for _, h := range t.Header {
		b.WriteString("<th>" + html.EscapeString(h) + "</th>")
	}
	b.WriteString("</tr>\n")
	for _, r := range t.Rows {
		b.WriteString("<tr>")
		for _, c := range r {
			b.WriteString("<td>" + html.EscapeString(c) + "</td>")
		}
		b.WriteString("</tr>\n")
	}
	b.WriteString("</table>\n")
	return b.String()
}

// Markdown renders the report as Markdown.
func (r *Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\n", r.Title)
	if r.Intro != "" {
		b.WriteString(r.Intro + "\n\n")
	}
	b.WriteString(r.Summary.markdown() + "\n")
	for _, s := range r.Sections {
		fmt.Fprintf(&b, "## %s\n\n", s.Title)
		if s.Text != "" {
			b.WriteString(s.Text + "\n\n")
		}
		if s.Table != nil {
			b.WriteString(s.Table.markdown() + "\n")
		}
		if s.Code != "" {
			b.WriteString("```\n" + s.Code + "\n```\n\n")
		}
		for _, f := range s.Figures {
			fmt.Fprintf(&b, "![%s](%s)\n\n", f.Name, f.src())
			if f.Caption != "" {
				b.WriteString("```\n" + f.Caption + "\n```\n\n")
			}
		}
	}
	if len(r.Plots) > 0 {
		b.WriteString("## Training curves\n\n")
		for _, p := range r.Plots {
			fmt.Fprintf(&b, "![%s](plots/%s.svg)\n\n%s\n\n", p.Title, p.Name, p.Legend())
		}
	}
	return b.String()
}

// HTML renders the report as one HTML page.
func (r *Report) HTML() string {
	var b strings.Builder
	e := html.EscapeString
	fmt.Fprintf(&b, "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>%s</title>\n<style>body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:right}td:first-child,th:first-child{text-align:left}pre{background:#f6f6f6;padding:1em;white-space:pre-wrap;overflow-wrap:anywhere}figure{margin:1.5em 0}svg{max-width:100%%;height:auto}</style></head><body>\n", e(r.Title))
	fmt.Fprintf(&b, "<h1>%s</h1>\n", e(r.Title))
	if r.Intro != "" {
		fmt.Fprintf(&b, "<p>%s</p>\n", e(r.Intro))
	}
	b.WriteString(r.Summary.html())
	for _, s := range r.Sections {
		fmt.Fprintf(&b, "<h2>%s</h2>\n", e(s.Title))
		for _, para := range strings.Split(s.Text, "\n\n") {
			if strings.TrimSpace(para) != "" {
				fmt.Fprintf(&b, "<p>%s</p>\n", e(para))
			}
		}
		if s.Table != nil {
			b.WriteString(s.Table.html())
		}
		if s.Code != "" {
			fmt.Fprintf(&b, "<pre>%s</pre>\n", e(s.Code))
		}
		for _, f := range s.Figures {
			img := f.SVG
			if img == "" {
				img = fmt.Sprintf("<img src=\"%s\" alt=\"%s\" width=\"128\" style=\"image-rendering:pixelated\">", e(f.Src), e(f.Name))
			}
			fmt.Fprintf(&b, "<figure style=\"display:flex;gap:1em;align-items:flex-start\"><div>%s</div><figcaption><pre>%s</pre></figcaption></figure>\n", img, e(f.Caption))
		}
	}
	if len(r.Plots) > 0 {
		b.WriteString("<h2>Training curves</h2>\n")
		for _, p := range r.Plots {
			var svg strings.Builder
			if err := p.SVG(&svg, plotWidth, plotHeight); err != nil {
				fmt.Fprintf(&b, "<p>plot %s: %s</p>\n", e(p.Name), e(err.Error()))
				continue
			}
			fmt.Fprintf(&b, "<figure id=\"%s\">\n%s</figure>\n", e(p.Name), svg.String())
		}
	}
	b.WriteString("</body></html>\n")
	return b.String()
}

// The size the report draws its plots at.
const plotWidth, plotHeight = 760, 380
