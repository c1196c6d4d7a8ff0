package vision

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	_ "image/gif"  // registers GIF
	_ "image/jpeg" // registers JPEG
	"image/png"
	"io"
	"os"

	_ "golang.org/x/image/webp" // registers WebP
)

// Decode decodes one encoded image (PNG, JPEG, GIF or WebP). name is used in
// errors. The size is read from the header first and refused above the
// pixel limit before any pixel is decoded; a JPEG's EXIF orientation is
// applied.
func Decode(name string, data []byte, lim Limits) (*Image, error) {
	img, format, err := decode(name, data, lim)
	if err != nil {
		return nil, err
	}
	m := FromImage(img)
	if format == "jpeg" {
		if o := jpegOrientation(data); o > 1 {
			m = orient(m, o)
		}
	}
	return m, nil
}

// Info is what Check reads of an encoded image.
type Info struct {
	Format        string // "png", "jpeg", "gif" or "webp"
	Width, Height int    // as stored (before a JPEG's EXIF orientation)
}

// Check validates one encoded image as Decode reads it (a supported
// format, the header's size within the pixel limit before any pixel is
// decoded, every pixel decodable) without converting its pixels, for
// callers that keep the encoded bytes: the annotation store's imports.
func Check(name string, data []byte, lim Limits) (Info, error) {
	img, format, err := decode(name, data, lim)
	if err != nil {
		return Info{}, err
	}
	b := img.Bounds()
	return Info{format, b.Dx(), b.Dy()}, nil
}

// decode is Decode up to the pixels' conversion.
func decode(name string, data []byte, lim Limits) (image.Image, string, error) {
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, "", fmt.Errorf("%s: not a readable image (PNG, JPEG, GIF or WebP): %v", name, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, "", fmt.Errorf("%s: %s header says %dx%d pixels", name, format, cfg.Width, cfg.Height)
	}
	if max := lim.maxPixels(); int64(cfg.Width)*int64(cfg.Height) > int64(max) {
		return nil, "", fmt.Errorf("%s: %s of %dx%d pixels exceeds the limit of %d pixels (Limits.MaxPixels); refused before decoding",
			name, format, cfg.Width, cfg.Height, max)
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, "", fmt.Errorf("%s: corrupt or truncated %s: %v", name, format, err)
	}
	return img, format, nil
}

// ReadFile reads and decodes an image file, refusing files above the byte
// limit.
func ReadFile(path string, lim Limits) (*Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	max := lim.maxFileBytes()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s: larger than the limit of %d bytes (Limits.MaxFileBytes)", path, max)
	}
	return Decode(path, data, lim)
}

// FromImage converts a decoded image to CHW float32 in [0,1]: one channel
// for grayscale, three (RGB) otherwise.
func FromImage(img image.Image) *Image {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	switch src := img.(type) {
	case *image.Gray:
		m := NewImage(1, h, w)
		for y := 0; y < h; y++ {
			row := src.Pix[y*src.Stride : y*src.Stride+w]
			for x, v := range row {
				m.Pix[y*w+x] = float32(v) / 255
			}
		}
		return m
	case *image.Gray16:
		m := NewImage(1, h, w)
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				m.Pix[y*w+x] = float32(src.Gray16At(b.Min.X+x, b.Min.Y+y).Y) / 65535
			}
		}
		return m
	case *image.YCbCr:
		m := NewImage(3, h, w)
		n := h * w
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				yi := src.YOffset(b.Min.X+x, b.Min.Y+y)
				ci := src.COffset(b.Min.X+x, b.Min.Y+y)
				r, g, bl := color.YCbCrToRGB(src.Y[yi], src.Cb[ci], src.Cr[ci])
				i := y*w + x
				m.Pix[i], m.Pix[n+i], m.Pix[2*n+i] = float32(r)/255, float32(g)/255, float32(bl)/255
			}
		}
		return m
	}
	if p, ok := img.(*image.Paletted); ok && isGrayPalette(p.Palette) {
		m := NewImage(1, h, w)
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				r, _, _, _ := p.At(b.Min.X+x, b.Min.Y+y).RGBA()
				m.Pix[y*w+x] = float32(r) / 65535
			}
		}
		return m
	}
	m := NewImage(3, h, w)
	n := h * w
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			r, g, bl, _ := img.At(b.Min.X+x, b.Min.Y+y).RGBA() // premultiplied: composited onto black
			i := y*w + x
			m.Pix[i], m.Pix[n+i], m.Pix[2*n+i] = float32(r)/65535, float32(g)/65535, float32(bl)/65535
		}
	}
	return m
}

func isGrayPalette(p color.Palette) bool {
	for _, c := range p {
		r, g, b, a := c.RGBA()
		if r != g || g != b || a != 0xffff {
			return false
		}
	}
	return true
}

// EncodePNG encodes an image (1 or 3 channels, values clamped to [0, 1])
// as an 8-bit gray or RGB PNG, the inverse of Decode up to rounding.
func EncodePNG(m *Image) ([]byte, error) {
	img, err := ToImage(m)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// ToImage converts an image (1 or 3 channels, values clamped to [0, 1])
// to an 8-bit *image.Gray or *image.NRGBA.
func ToImage(m *Image) (image.Image, error) {
	if m.C != 1 && m.C != 3 {
		return nil, fmt.Errorf("a %d-channel image has no PNG encoding here (want 1 or 3)", m.C)
	}
	n := m.H * m.W
	u8 := func(v float32) uint8 { return uint8(min(max(v, 0), 1)*255 + 0.5) }
	if m.C == 1 {
		g := image.NewGray(image.Rect(0, 0, m.W, m.H))
		for i := range n {
			g.Pix[i] = u8(m.Pix[i])
		}
		return g, nil
	}
	rgba := image.NewNRGBA(image.Rect(0, 0, m.W, m.H))
	for i := range n {
		rgba.Pix[4*i], rgba.Pix[4*i+1], rgba.Pix[4*i+2], rgba.Pix[4*i+3] = u8(m.Pix[i]), u8(m.Pix[n+i]), u8(m.Pix[2*n+i]), 255
	}
	return rgba, nil
}
