package vision

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"path/filepath"
	"testing"
)

func TestDecodeFormats(t *testing.T) {
	// Grayscale PNG: one channel, value/255.
	m, err := Decode("g.png", grayPNG(t, 2, 1, 51), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if m.C != 1 || m.H != 1 || m.W != 2 || m.Label != -1 {
		t.Fatalf("gray: %s label %d", m.Shape(), m.Label)
	}
	wantPix(t, m, []float32{0.2, 0.2})

	// RGBA with alpha: three channels, composited onto black.
	m, err = Decode("a.png", rgbPNG(t, 1, 1, color.NRGBA{255, 102, 0, 255}), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	wantPix(t, m, []float32{1, 0.4, 0})
	m, err = Decode("a.png", rgbPNG(t, 1, 1, color.NRGBA{255, 0, 0, 51}), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	wantPix(t, m, []float32{0.2, 0, 0})

	// 16-bit gray and colour keep their precision.
	g16 := image.NewGray16(image.Rect(0, 0, 1, 1))
	g16.SetGray16(0, 0, color.Gray16{Y: 1})
	m, err = Decode("g16.png", encPNG(t, g16), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if m.C != 1 || m.Pix[0] != float32(1)/65535 {
		t.Fatalf("gray16: %s %v", m.Shape(), m.Pix)
	}
	c16 := image.NewRGBA64(image.Rect(0, 0, 1, 1))
	c16.SetRGBA64(0, 0, color.RGBA64{R: 65535, G: 257, B: 3, A: 65535})
	m, err = Decode("c16.png", encPNG(t, c16), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if m.C != 3 || m.Pix[0] != 1 || m.Pix[1] != float32(257)/65535 || m.Pix[2] != float32(3)/65535 {
		t.Fatalf("rgba64: %s %v", m.Shape(), m.Pix)
	}

	// CMYK converts to RGB: C=0 M=255 Y=255 K=0 is red.
	cm := image.NewCMYK(image.Rect(0, 0, 1, 1))
	cm.SetCMYK(0, 0, color.CMYK{0, 255, 255, 0})
	wantPix(t, FromImage(cm), []float32{1, 0, 0})
	// A CMYK JPEG file (Pillow's, Adobe APP14, inverted ink as Photoshop
	// writes it), 16x8: left half C=0 M=255 Y=255 K=0 (red), right half
	// C=255 M=0 Y=0 K=64 (cyan at 191/255).
	cmykJPEG, _ := base64.StdEncoding.DecodeString("/9j/7gAOQWRvYmUAZAAAAAAA/9sAQwACAQEBAQECAQEBAgICAgIEAwICAgIFBAQDBAYFBgYGBQYGBgcJCAYHCQcGBggLCAkKCgoKCgYICwwLCgwJCgoK/8AAFAgACAAQBEMRAE0RAFkRAEsRAP/EAB8AAAEFAQEBAQEBAAAAAAAAAAABAgMEBQYHCAkKC//EALUQAAIBAwMCBAMFBQQEAAABfQECAwAEEQUSITFBBhNRYQcicRQygZGhCCNCscEVUtHwJDNicoIJChYXGBkaJSYnKCkqNDU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVmZ2hpanN0dXZ3eHl6g4SFhoeIiYqSk5SVlpeYmZqio6Slpqeoqaqys7S1tre4ubrCw8TFxsfIycrS09TV1tfY2drh4uPk5ebn6Onq8fLz9PX29/j5+v/aAA4EQwBNAFkASwAAPwD9/K/n/r+f+v38r+AOv7/K/v8AK/P+v//Z")
	m, err = Decode("cmyk.jpg", cmykJPEG, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if m.C != 3 || m.H != 8 || m.W != 16 {
		t.Fatalf("cmyk jpeg: %s", m.Shape())
	}
	for _, c := range []struct {
		x    int
		want [3]float32
	}{{2, [3]float32{1, 0, 0}}, {13, [3]float32{0, 191.0 / 255, 191.0 / 255}}} {
		for ch, v := range c.want {
			if got := m.At(ch, 4, c.x); abs(got-v) > 0.05 {
				t.Fatalf("cmyk jpeg: pixel (%d, 4) channel %d = %v, want %v", c.x, ch, got, v)
			}
		}
	}

	// GIF with a colour palette.
	p := image.NewPaletted(image.Rect(0, 0, 2, 1), color.Palette{color.RGBA{0, 0, 255, 255}, color.RGBA{255, 255, 255, 255}})
	p.SetColorIndex(1, 0, 1)
	var gb bytes.Buffer
	if err := gif.Encode(&gb, p, nil); err != nil {
		t.Fatal(err)
	}
	m, err = Decode("p.gif", gb.Bytes(), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	wantPix(t, m, []float32{0, 1, 0, 1, 1, 1})

	// JPEG (lossy: a flat colour comes back within a few levels).
	var jb bytes.Buffer
	rgb := image.NewRGBA(image.Rect(0, 0, 8, 8))
	for i := 0; i < len(rgb.Pix); i += 4 {
		copy(rgb.Pix[i:], []byte{200, 100, 50, 255})
	}
	jpeg.Encode(&jb, rgb, &jpeg.Options{Quality: 95})
	m, err = Decode("x.jpg", jb.Bytes(), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if m.C != 3 || m.H != 8 || abs(m.At(0, 3, 3)-200.0/255) > 0.03 || abs(m.At(2, 3, 3)-50.0/255) > 0.03 {
		t.Fatalf("jpeg: %s %v %v", m.Shape(), m.At(0, 3, 3), m.At(2, 3, 3))
	}

	// WebP (a 1x1 lossless, transparent pixel).
	wb, _ := base64.StdEncoding.DecodeString("UklGRhoAAABXRUJQVlA4TA0AAAAvAAAAEAcQERGIiP4HAA==")
	m, err = Decode("x.webp", wb, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if m.C != 3 || m.H != 1 || m.W != 1 {
		t.Fatalf("webp: %s", m.Shape())
	}
}

func abs(x float32) float32 {
	if x < 0 {
		return -x
	}
	return x
}

// hugePNG is a valid PNG header (signature, IHDR, IEND) declaring w×h pixels
// and carrying no pixel data.
func hugePNG(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		binary.Write(&b, binary.BigEndian, uint32(len(data)))
		td := append([]byte(typ), data...)
		b.Write(td)
		binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(td))
	}
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr, w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 2 // 8-bit RGB
	chunk("IHDR", ihdr)
	chunk("IEND", nil)
	return b.Bytes()
}

func TestDecodeBadInput(t *testing.T) {
	dir := t.TempDir()
	// 100,000 x 100,000 pixels: refused from the header, before decoding.
	p := writeFile(t, filepath.Join(dir, "huge.png"), hugePNG(100000, 100000))
	_, err := ReadFile(p, Limits{})
	wantErr(t, err, p, "100000x100000", "refused before decoding")
	// A configurable limit.
	_, err = Decode("small.png", grayPNG(t, 10, 10, 0), Limits{MaxPixels: 99})
	wantErr(t, err, "small.png", "10x10", "limit of 99")

	// Truncated PNG and JPEG, and garbage.
	full := rgbPNG(t, 16, 16, color.NRGBA{1, 2, 3, 255})
	p = writeFile(t, filepath.Join(dir, "cut.png"), full[:len(full)/2])
	_, err = ReadFile(p, Limits{})
	wantErr(t, err, p, "corrupt or truncated png")
	var jb bytes.Buffer
	noise := image.NewGray(image.Rect(0, 0, 64, 64))
	for i := range noise.Pix {
		noise.Pix[i] = uint8(i * 7919 % 251)
	}
	jpeg.Encode(&jb, noise, nil)
	p = writeFile(t, filepath.Join(dir, "cut.jpg"), jb.Bytes()[:jb.Len()/2])
	_, err = ReadFile(p, Limits{})
	wantErr(t, err, p, "corrupt or truncated jpeg")
	p = writeFile(t, filepath.Join(dir, "junk.png"), []byte("not an image at all"))
	_, err = ReadFile(p, Limits{})
	wantErr(t, err, p, "not a readable image")
	// A file above the byte limit is not read whole.
	_, err = ReadFile(p, Limits{MaxFileBytes: 5})
	wantErr(t, err, p, "limit of 5 bytes")
}

// withOrientation inserts an APP1 Exif segment carrying orientation o right
// after the JPEG's SOI marker, in the given byte order.
func withOrientation(j []byte, o uint16, bigEndian bool) []byte {
	var bo binary.ByteOrder = binary.LittleEndian
	tiff := []byte("II*\x00\x08\x00\x00\x00")
	if bigEndian {
		bo = binary.BigEndian
		tiff = []byte("MM\x00*\x00\x00\x00\x08")
	}
	ifd := make([]byte, 2+2*12+4)
	bo.PutUint16(ifd, 2)
	// an unrelated tag first (ImageWidth, LONG), then Orientation (SHORT).
	bo.PutUint16(ifd[2:], 0x0100)
	bo.PutUint16(ifd[4:], 4)
	bo.PutUint32(ifd[6:], 1)
	bo.PutUint32(ifd[10:], 99)
	bo.PutUint16(ifd[14:], 0x0112)
	bo.PutUint16(ifd[16:], 3)
	bo.PutUint32(ifd[18:], 1)
	bo.PutUint16(ifd[22:], o)
	seg := append([]byte("Exif\x00\x00"), append(tiff, ifd...)...)
	out := []byte{0xFF, 0xD8, 0xFF, 0xE1, byte((len(seg) + 2) >> 8), byte(len(seg) + 2)}
	out = append(out, seg...)
	return append(out, j[2:]...)
}

// TestEXIFOrientation stores, for each orientation, the displayed image
// (16 wide, 8 high: red top-left quadrant, green top-right, blue bottom-left,
// white bottom-right) transformed the way a camera would store it, and checks
// that decoding gives back the displayed image.
func TestEXIFOrientation(t *testing.T) {
	const W, H = 16, 8
	quad := func(x, y, w, h int) color.RGBA {
		switch {
		case x < w/2 && y < h/2:
			return color.RGBA{255, 0, 0, 255}
		case y < h/2:
			return color.RGBA{0, 255, 0, 255}
		case x < w/2:
			return color.RGBA{0, 0, 255, 255}
		}
		return color.RGBA{255, 255, 255, 255}
	}
	// stored(o) gives, for a stored pixel (sx, sy), the displayed pixel it
	// shows, written from the EXIF definitions of where row 0 and column 0
	// of the stored image go.
	stored := map[int]func(sx, sy int) (int, int){
		1: func(sx, sy int) (int, int) { return sx, sy },
		2: func(sx, sy int) (int, int) { return W - 1 - sx, sy },         // mirrored
		3: func(sx, sy int) (int, int) { return W - 1 - sx, H - 1 - sy }, // upside down
		4: func(sx, sy int) (int, int) { return sx, H - 1 - sy },         // mirrored vertically
		5: func(sx, sy int) (int, int) { return sy, sx },                 // transposed
		6: func(sx, sy int) (int, int) { return W - 1 - sy, sx },         // stored rotated 90° CCW
		7: func(sx, sy int) (int, int) { return W - 1 - sy, H - 1 - sx }, // transverse
		8: func(sx, sy int) (int, int) { return sy, H - 1 - sx },         // stored rotated 90° CW
	}
	for o := 1; o <= 8; o++ {
		sw, sh := W, H
		if o >= 5 {
			sw, sh = H, W
		}
		img := image.NewRGBA(image.Rect(0, 0, sw, sh))
		for sy := 0; sy < sh; sy++ {
			for sx := 0; sx < sw; sx++ {
				dx, dy := stored[o](sx, sy)
				img.SetRGBA(sx, sy, quad(dx, dy, W, H))
			}
		}
		var jb bytes.Buffer
		jpeg.Encode(&jb, img, &jpeg.Options{Quality: 100})
		for _, be := range []bool{false, true} {
			m, err := Decode("o.jpg", withOrientation(jb.Bytes(), uint16(o), be), Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if m.W != W || m.H != H {
				t.Fatalf("orientation %d: decoded %dx%d, want %dx%d", o, m.W, m.H, W, H)
			}
			for _, pt := range [][2]int{{1, 1}, {W - 2, 1}, {1, H - 2}, {W - 2, H - 2}} {
				want := quad(pt[0], pt[1], W, H)
				for c, v := range []uint8{want.R, want.G, want.B} {
					if got := m.At(c, pt[1], pt[0]); abs(got-float32(v)/255) > 0.1 {
						t.Fatalf("orientation %d (big-endian %v): pixel %v channel %d = %v, want %v", o, be, pt, c, got, float32(v)/255)
					}
				}
			}
		}
	}
	// A JPEG without Exif, and a malformed Exif segment, decode as stored.
	if jpegOrientation([]byte{0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x08, 'E', 'x', 'i', 'f', 0, 0}) != 0 {
		t.Fatal("a truncated Exif segment gave an orientation")
	}
}

// EncodePNG then Decode gives the pixels back to 8-bit rounding.
func TestEncodePNGRoundTrip(t *testing.T) {
	for _, c := range []int{1, 3} {
		m := NewImage(c, 3, 5)
		for i := range m.Pix {
			m.Pix[i] = float32(i%7) / 6
		}
		b, err := EncodePNG(m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Decode("x.png", b, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if got.C != c || got.H != 3 || got.W != 5 {
			t.Fatalf("decoded %s, want %dx3x5", got.Shape(), c)
		}
		for i := range m.Pix {
			if d := got.Pix[i] - m.Pix[i]; d > 1.0/255 || d < -1.0/255 {
				t.Fatalf("%d channels: pixel %d is %v, want %v", c, i, got.Pix[i], m.Pix[i])
			}
		}
	}
	if _, err := EncodePNG(NewImage(2, 1, 1)); err == nil {
		t.Fatal("a 2-channel image encoded")
	}
}

// Check reads the format and size and refuses what Decode refuses, without
// converting pixels.
func TestCheck(t *testing.T) {
	info, err := Check("a.png", rgbPNG(t, 3, 2, color.NRGBA{1, 2, 3, 255}), Limits{})
	if err != nil || info != (Info{"png", 3, 2}) {
		t.Fatalf("Check(png) = %+v, %v", info, err)
	}
	var jb bytes.Buffer
	jpeg.Encode(&jb, image.NewGray(image.Rect(0, 0, 5, 4)), nil)
	if info, err := Check("a.jpg", jb.Bytes(), Limits{}); err != nil || info != (Info{"jpeg", 5, 4}) {
		t.Fatalf("Check(jpeg) = %+v, %v", info, err)
	}
	_, err = Check("huge.png", hugePNG(100000, 100000), Limits{})
	wantErr(t, err, "huge.png", "100000x100000", "refused before decoding")
	full := rgbPNG(t, 16, 16, color.NRGBA{1, 2, 3, 255})
	_, err = Check("cut.png", full[:len(full)/2], Limits{})
	wantErr(t, err, "cut.png", "corrupt or truncated png")
	_, err = Check("junk.png", []byte("<svg/>"), Limits{})
	wantErr(t, err, "junk.png", "not a readable image")
}
