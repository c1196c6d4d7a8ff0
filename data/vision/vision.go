// Package vision reads images for training: decoding, sources, augmentation
// and a parallel loader. It sits in the data layer and imports nothing above
// it.
//
// # Layout
//
// An Image holds float32 pixels in CHW order: Pix[c*H*W + y*W + x], values in
// [0,1] before Normalize (which may move them outside). Grayscale files give
// C=1; every other file gives C=3 (RGB). Alpha is dropped after compositing
// onto black (the premultiplied colour). 16-bit files keep their precision
// (value/65535); CMYK and YCbCr are converted to RGB. Label is the class id,
// or -1 when the source has none; Caption is the text, or "".
//
// # Sources
//
// Open takes a spec string and picks the reader:
//
//   - an MNIST-style idx images file (a name with "idx3-ubyte", optionally
//     .gz); the labels are read from the file beside it named with "labels"
//     for "images" and "idx1" for "idx3" (train-labels-idx1-ubyte.gz,
//     train-labels.idx1-ubyte; either compression); without one, labels
//     are -1;
//   - a folder of class subfolders: classes sorted by name become label ids
//     0,1,…; images are .png, .jpg, .jpeg, .gif, .webp;
//   - a .jsonl file of {"image": path, "label": int} or
//     {"image": path, "caption": text}; paths here and in the .json
//     sources are relative to the file;
//   - a COCO captions .json (captions_val2017.json: "images" with "id" and
//     "file_name", "annotations" with "image_id" and "caption"): one sample
//     per image with captions, Captions all of them, Caption the first;
//   - LLaVA's conversation .json ([{"id", "image", "conversations"}]): one
//     sample per record, Conversation its turns (human first, human and
//     gpt in turn, "<image>" once in the first);
//   - a .tar webdataset shard: entries grouped by key (the path up to the
//     first dot of the base name); each key has one image (.png, .jpg,
//     .jpeg, .webp, .gif) and optionally .cls (an integer label), .txt (a
//     caption) or .json ({"label": int, "caption": text}); several shards
//     in webdataset's brace notation, shards-{000000..000009}.tar (one
//     range, at most MaxShards shards, read in order as one dataset).
//
// # Bad input
//
// Every error names the file (and line, entry or index where there is one).
// Untrusted sizes are bounded before allocating: an image's width and height
// are read from its header (image.DecodeConfig) and refused above
// Limits.MaxPixels before decoding; idx dimensions are checked against the
// data actually present; file and tar entry sizes are capped. Truncated or
// corrupt images, a wrong idx magic, mismatched label counts and empty
// folders are errors, never panics. Open reads; it writes nothing. Close a
// Dataset when done (a tar shard stays open between loads).
//
// docs/vision.md ("Images in") lists the sources and these guarantees.
//
// # Augmentation and loading
//
// Transforms (Resize, CenterCrop, RandomResizedCrop, HFlip, ColorJitter,
// RandomGrayscale, GaussianBlur, Solarize, Normalize) take an explicit
// *rand.Rand. The Loader decodes and augments on worker goroutines into a
// bounded queue of batches delivered in index order; every sample draws from
// its own generator seeded by (seed, epoch, index), so a seed gives the same
// batches for any number of workers.
package vision

import (
	"fmt"
	"strings"
)

// Image is one decoded image: float32 CHW pixels, a label and a caption.
type Image struct {
	C, H, W int
	Pix     []float32 // len C*H*W, Pix[c*H*W+y*W+x]
	Label   int       // class id, -1 if none
	Caption string
	// Captions are all of the image's captions where a source has several
	// (COCO); Caption is the first.
	Captions []string
	// Conversation is a LLaVA record's turns, the first holding "<image>".
	Conversation []Turn
}

// NewImage returns a zeroed c×h×w image with label -1.
func NewImage(c, h, w int) *Image {
	return &Image{C: c, H: h, W: w, Pix: make([]float32, c*h*w), Label: -1}
}

// At returns channel c at (x, y).
func (m *Image) At(c, y, x int) float32 { return m.Pix[c*m.H*m.W+y*m.W+x] }

// Set sets channel c at (x, y).
func (m *Image) Set(c, y, x int, v float32) { m.Pix[c*m.H*m.W+y*m.W+x] = v }

// Shape returns "CxHxW".
func (m *Image) Shape() string { return fmt.Sprintf("%dx%dx%d", m.C, m.H, m.W) }

// clone returns a copy with the same label and caption and new pixels.
func (m *Image) like(c, h, w int) *Image {
	o := NewImage(c, h, w)
	o.Label, o.Caption, o.Captions, o.Conversation = m.Label, m.Caption, m.Captions, m.Conversation
	return o
}

// DefaultMaxPixels is the largest image (width*height) decoded when
// Limits.MaxPixels is zero: 64 megapixels.
const DefaultMaxPixels = 64 << 20

// DefaultMaxFileBytes caps one image file or tar entry when
// Limits.MaxFileBytes is zero.
const DefaultMaxFileBytes = 256 << 20

// Limits bound what untrusted input may make the reader allocate.
type Limits struct {
	MaxPixels    int   // width*height per image; 0 means DefaultMaxPixels
	MaxFileBytes int64 // bytes per image file or tar entry; 0 means DefaultMaxFileBytes
}

func (l Limits) maxPixels() int {
	if l.MaxPixels > 0 {
		return l.MaxPixels
	}
	return DefaultMaxPixels
}

func (l Limits) maxFileBytes() int64 {
	if l.MaxFileBytes > 0 {
		return l.MaxFileBytes
	}
	return DefaultMaxFileBytes
}

var imageExts = map[string]bool{".png": true, ".jpg": true, ".jpeg": true, ".gif": true, ".webp": true}

func isImageName(name string) bool {
	i := strings.LastIndexByte(name, '.')
	return i >= 0 && imageExts[strings.ToLower(name[i:])]
}
