package eval

import (
	"errors"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"strconv"
)

// palette colours the series of a plot, in order.
var palette = []color.RGBA{
	{31, 119, 180, 255}, {255, 127, 14, 255}, {44, 160, 44, 255}, {214, 39, 40, 255},
	{148, 103, 189, 255}, {140, 86, 75, 255}, {227, 119, 194, 255}, {127, 127, 127, 255},
}

var colorNames = []string{"blue", "orange", "green", "red", "purple", "brown", "pink", "grey"}

// glyphs is a 3x5 pixel font for the tick labels: each glyph is five rows
// of three bits, the high bit on the left.
var glyphs = map[byte][5]uint8{
	'0': {7, 5, 5, 5, 7}, '1': {2, 6, 2, 2, 7}, '2': {7, 1, 7, 4, 7}, '3': {7, 1, 7, 1, 7},
	'4': {5, 5, 7, 1, 1}, '5': {7, 4, 7, 1, 7}, '6': {7, 4, 7, 5, 7}, '7': {7, 1, 2, 2, 2},
	'8': {7, 5, 7, 5, 7}, '9': {7, 5, 7, 1, 7}, '.': {0, 0, 0, 0, 2}, '-': {0, 0, 7, 0, 0},
	'e': {0, 7, 7, 4, 7}, '+': {0, 2, 7, 2, 0},
}

// PNG draws the plot as a w x h PNG: a frame, grid lines at round values
// with their labels, and one line per series.
func (p *Plot) PNG(w io.Writer, width, height int) error {
	if width < 100 || height < 80 {
		return errors.New("eval: plot too small")
	}
	img := image.NewRGBA(image.Rect(0, 0, width, height))
	fill(img, img.Bounds(), color.RGBA{255, 255, 255, 255})
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
	left, right, top, bottom := 56, width-16, 12, height-28
	px := func(x float64) int { return left + int(math.Round((x-x0)/(x1-x0)*float64(right-left))) }
	py := func(y float64) int { return bottom - int(math.Round((y-y0)/(y1-y0)*float64(bottom-top))) }
	grid := color.RGBA{225, 225, 225, 255}
	ink := color.RGBA{60, 60, 60, 255}
	for _, v := range ticks(y0, y1, 5) {
		y := py(v)
		hline(img, left, right, y, grid)
		label(img, fmtTick(v), left-4, y-2, true, ink)
	}
	for _, v := range ticks(x0, x1, 6) {
		x := px(v)
		vline(img, x, top, bottom, grid)
		label(img, fmtTick(v), x-len(fmtTick(v))*4, bottom+10, false, ink)
	}
	hline(img, left, right, bottom, ink)
	vline(img, left, top, bottom, ink)
	for i, s := range p.Series {
		c := palette[i%len(palette)]
		prev := false
		var lx, ly int
		for j := range s.X {
			if j >= len(s.Y) || !finite(s.X[j]) || !finite(s.Y[j]) {
				prev = false
				continue
			}
			x, y := px(s.X[j]), py(s.Y[j])
			if prev {
				line(img, lx, ly, x, y, c)
			} else {
				fill(img, image.Rect(x-1, y-1, x+2, y+2), c)
			}
			lx, ly, prev = x, y, true
		}
	}
	return png.Encode(w, img)
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

// label draws s in the 3x5 font scaled by 2, right-aligned at x when
// right is set, else starting at x.
func label(img *image.RGBA, s string, x, y int, right bool, c color.RGBA) {
	const scale, adv = 2, 8
	if right {
		x -= len(s) * adv
	}
	for i := 0; i < len(s); i++ {
		g, ok := glyphs[s[i]]
		if !ok {
			continue
		}
		for row := 0; row < 5; row++ {
			for col := 0; col < 3; col++ {
				if g[row]&(4>>col) != 0 {
					fill(img, image.Rect(x+i*adv+col*scale, y+row*scale-4, x+i*adv+col*scale+scale, y+row*scale-4+scale), c)
				}
			}
		}
	}
}

func fill(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	r = r.Intersect(img.Bounds())
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			img.SetRGBA(x, y, c)
		}
	}
}

func hline(img *image.RGBA, x0, x1, y int, c color.RGBA) {
	fill(img, image.Rect(x0, y, x1+1, y+1), c)
}

func vline(img *image.RGBA, x, y0, y1 int, c color.RGBA) {
	fill(img, image.Rect(x, y0, x+1, y1+1), c)
}

// line draws a 2-pixel line (Bresenham).
func line(img *image.RGBA, x0, y0, x1, y1 int, c color.RGBA) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := 1, 1
	if x0 > x1 {
		sx = -1
	}
	if y0 > y1 {
		sy = -1
	}
	e := dx + dy
	for {
		fill(img, image.Rect(x0, y0, x0+2, y0+2), c)
		if x0 == x1 && y0 == y1 {
			return
		}
		if e2 := 2 * e; e2 >= dy {
			e += dy
			x0 += sx
		} else {
			e += dx
			y0 += sy
		}
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
