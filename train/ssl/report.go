package ssl

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"html"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"

	"github.com/golem-ml/golem/data/vision"
	"github.com/golem-ml/golem/internal/atomicfile"
	"github.com/golem-ml/golem/internal/plot"
)

// reportPictures is the number of images each picture grid shows.
const reportPictures = 8

// writeReport writes report.html into the run's folder: the settings, the
// method's pictures (augmentation samples, or originals, inputs and
// reconstructions) as a PNG grid beside it, and the learning curve (from
// metrics.jsonl) as an SVG.
func writeReport(o Options, t *task, tk any, res Result) error {
	dir := o.Loop.Out
	var b strings.Builder
	esc := html.EscapeString
	fmt.Fprintf(&b, "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>golem vision pretrain: %s</title>\n", esc(o.Method))
	b.WriteString("<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}td,th{padding:2px 8px;text-align:left}img{image-rendering:pixelated}</style></head><body>\n")
	fmt.Fprintf(&b, "<h1>%s on %s</h1>\n<table>\n", esc(o.Method), esc(o.Spec))
	row := func(k, v string) { fmt.Fprintf(&b, "<tr><th>%s</th><td>%s</td></tr>\n", esc(k), esc(v)) }
	row("images", fmt.Sprintf("%d of %dx%dx%d", o.Data.Len(), t.C, t.H, t.W))
	row("encoder", fmt.Sprintf("%s, %d trained parameters", describe(o.Encoder), res.Params))
	row("steps", fmt.Sprintf("%d of %d, %d images a step", res.Step, o.Loop.Steps, t.o.Batch*max(o.Loop.Accum, 1)))
	if res.Step > 0 {
		row("learning rate", fmt.Sprintf("%g peak, %d warmup, cosine to %g", o.Loop.LR, o.Loop.Warmup, o.Loop.MinLR))
		row("last loss", fmt.Sprintf("%.4f", res.Loss))
		row("time", fmt.Sprintf("%.0f s", res.Seconds))
	}
	b.WriteString("</table>\n")
	if p, ok := tk.(pictured); ok {
		pics, err := p.pictures(reportPictures)
		if err != nil {
			return err
		}
		name := strings.ToLower(pics.Title) + ".png"
		if err := writeGrid(filepath.Join(dir, name), pics); err != nil {
			return err
		}
		fmt.Fprintf(&b, "<h2>%s</h2>\n<p>Rows: %s.</p>\n<img src=\"%s\" alt=\"%s\">\n", esc(pics.Title), esc(strings.Join(pics.Names, ", ")), esc(name), esc(pics.Title))
	}
	b.WriteString("<h2>Learning curve</h2>\n")
	var curve *plot.Series
	var err error
	if res.Step > 0 {
		curve, err = lossCurve(filepath.Join(dir, "metrics.jsonl"))
	}
	switch {
	case err != nil:
		return err
	case curve == nil:
		b.WriteString("<p>No training steps (the initialised encoder).</p>\n")
	default:
		p := plot.Plot{Title: o.Method + " training loss", XLabel: "step", YLabel: "loss", Series: []plot.Series{*curve}}
		var svg bytes.Buffer
		if err := p.SVG(&svg, 720, 360); err != nil {
			return err
		}
		b.Write(svg.Bytes())
	}
	b.WriteString("\n<p>Linear-probe and k-NN accuracy: <code>golem vision probe --model " + esc(dir) + " --train SPEC --test SPEC</code>.</p>\n</body></html>\n")
	return atomicfile.WriteFile(filepath.Join(dir, "report.html"), []byte(b.String()))
}

// lossCurve reads the loss of every step from metrics.jsonl (nil if the
// file is absent or empty).
func lossCurve(path string) (*plot.Series, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	defer f.Close()
	s := &plot.Series{Name: "loss"}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for line := 1; sc.Scan(); line++ {
		var rec struct{ Step, Loss float64 }
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		s.X, s.Y = append(s.X, rec.Step), append(s.Y, rec.Loss)
	}
	if len(s.X) == 0 {
		return nil, sc.Err()
	}
	return s, sc.Err()
}

// writeGrid writes the pictures' rows as one PNG: each image scaled up to
// at least 64 pixels a side (nearest neighbour), 2-pixel gaps.
func writeGrid(path string, p Pictures) error {
	if len(p.Rows) == 0 || len(p.Rows[0]) == 0 {
		return nil
	}
	m0 := p.Rows[0][0]
	s := max(1, (64+m0.H-1)/m0.H)
	const gap = 2
	cw, ch := m0.W*s+gap, m0.H*s+gap
	img := image.NewRGBA(image.Rect(0, 0, len(p.Rows[0])*cw+gap, len(p.Rows)*ch+gap))
	for i := range img.Pix {
		img.Pix[i] = 255
	}
	for r, ims := range p.Rows {
		for c, m := range ims {
			drawScaled(img, m, gap+c*cw, gap+r*ch, s)
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, b.Bytes())
}

func drawScaled(dst *image.RGBA, m *vision.Image, x0, y0, s int) {
	n := m.H * m.W
	at := func(c, i int) uint8 {
		if m.C == 1 {
			c = 0
		}
		v := min(max(m.Pix[c*n+i], 0), 1)
		return uint8(v*255 + 0.5)
	}
	for y := 0; y < m.H*s; y++ {
		for x := 0; x < m.W*s; x++ {
			i := (y/s)*m.W + x/s
			dst.SetRGBA(x0+x, y0+y, color.RGBA{at(0, i), at(1, i), at(2, i), 255})
		}
	}
}
