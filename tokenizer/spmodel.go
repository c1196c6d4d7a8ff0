package tokenizer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"unicode/utf8"
)

// A SentencePiece .model file is a protobuf ModelProto (sentencepiece's
// sentencepiece_model.proto). golem reads the few fields it needs with the
// small reader below rather than google.golang.org/protobuf: without the
// generated code that module would read the file only through a
// hand-built descriptor, which is longer than the reader, and every field
// read here is a varint, a float or a length-delimited string.
//
//	ModelProto      pieces = 1 (repeated), trainer_spec = 2, normalizer_spec = 3
//	SentencePiece   piece = 1, score = 2 (float), type = 3
//	TrainerSpec     model_type = 3 (1 unigram, 2 bpe), treat_whitespace_as_suffix = 24,
//	                byte_fallback = 35
//	NormalizerSpec  name = 1, precompiled_charsmap = 2, add_dummy_prefix = 3,
//	                remove_extra_whitespaces = 4, escape_whitespaces = 5

// protoField is one field of a protobuf message.
type protoField struct {
	num  int
	wire int    // 0 varint, 1 fixed64, 2 bytes, 5 fixed32
	v    uint64 // varint and fixed values
	b    []byte // bytes
}

// protoFields splits a protobuf message into its fields.
func protoFields(msg []byte, f func(protoField) error) error {
	for len(msg) > 0 {
		tag, n := binary.Uvarint(msg)
		if n <= 0 {
			return errors.New("bad field tag")
		}
		msg = msg[n:]
		fd := protoField{num: int(tag >> 3), wire: int(tag & 7)}
		switch fd.wire {
		case 0:
			fd.v, n = binary.Uvarint(msg)
			if n <= 0 {
				return fmt.Errorf("field %d: bad varint", fd.num)
			}
			msg = msg[n:]
		case 1:
			if len(msg) < 8 {
				return fmt.Errorf("field %d: truncated", fd.num)
			}
			fd.v, msg = binary.LittleEndian.Uint64(msg), msg[8:]
		case 2:
			l, n := binary.Uvarint(msg)
			if n <= 0 || l > uint64(len(msg)-n) {
				return fmt.Errorf("field %d: bad length", fd.num)
			}
			fd.b, msg = msg[n:n+int(l)], msg[n+int(l):]
		case 5:
			if len(msg) < 4 {
				return fmt.Errorf("field %d: truncated", fd.num)
			}
			fd.v, msg = uint64(binary.LittleEndian.Uint32(msg)), msg[4:]
		default:
			return fmt.Errorf("field %d: wire type %d not supported", fd.num, fd.wire)
		}
		if err := f(fd); err != nil {
			return err
		}
	}
	return nil
}

// LoadSentencePiece builds a tokenizer from a SentencePiece .model file (a
// BPE or Unigram model, such as Llama 2's, Mistral's or Gemma's
// tokenizer.model). It encodes as spm_encode does: the same normalization
// (the model's precompiled character map, extra spaces, the dummy prefix),
// the same pieces, byte fallback. Control pieces (<s>, </s>) and <unk> are
// special tokens.
func LoadSentencePiece(data []byte) (*Tokenizer, error) {
	var pieces []spPiece
	sp := &spModel{}
	modelType := uint64(1) // unigram, the proto's default
	dummyPrefix, removeExtra, escape := true, true, true
	var charsmap []byte
	var suffix bool
	err := protoFields(data, func(f protoField) error {
		switch {
		case f.num == 1 && f.wire == 2:
			p := spPiece{kind: spNormal}
			err := protoFields(f.b, func(g protoField) error {
				switch {
				case g.num == 1 && g.wire == 2:
					p.text = string(g.b)
				case g.num == 2 && g.wire == 5:
					p.score = math.Float32frombits(uint32(g.v))
				case g.num == 3 && g.wire == 0:
					p.kind = spPieceKind(g.v)
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("piece %d: %w", len(pieces), err)
			}
			if !utf8.ValidString(p.text) {
				return fmt.Errorf("piece %d: not UTF-8", len(pieces))
			}
			pieces = append(pieces, p)
		case f.num == 2 && f.wire == 2:
			return protoFields(f.b, func(g protoField) error {
				switch {
				case g.num == 3 && g.wire == 0:
					modelType = g.v
				case g.num == 24 && g.wire == 0:
					suffix = g.v != 0
				case g.num == 35 && g.wire == 0:
					sp.byteFallback = g.v != 0
				}
				return nil
			})
		case f.num == 3 && f.wire == 2:
			return protoFields(f.b, func(g protoField) error {
				switch {
				case g.num == 2 && g.wire == 2:
					charsmap = g.b
				case g.num == 3 && g.wire == 0:
					dummyPrefix = g.v != 0
				case g.num == 4 && g.wire == 0:
					removeExtra = g.v != 0
				case g.num == 5 && g.wire == 0:
					escape = g.v != 0
				}
				return nil
			})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("SentencePiece model: %w", err)
	}
	if len(pieces) == 0 {
		return nil, errors.New("SentencePiece model: no pieces (not a .model file?)")
	}
	switch modelType {
	case 1:
		sp.unigram = true
	case 2:
	default:
		return nil, fmt.Errorf("SentencePiece model: model_type %d not supported (golem reads unigram (1) and bpe (2))", modelType)
	}
	if suffix {
		return nil, errors.New("SentencePiece model: treat_whitespace_as_suffix is not supported")
	}
	if !escape {
		return nil, errors.New("SentencePiece model: escape_whitespaces false is not supported")
	}
	if len(charsmap) > 0 {
		if sp.norm, err = parseCharsmap(charsmap); err != nil {
			return nil, fmt.Errorf("SentencePiece model: normalizer_spec.precompiled_charsmap: %w", err)
		}
	}
	// SentencePiece gives one <unk> for a run of unknown characters.
	sp.removeExtraSpaces, sp.stripDecode, sp.fuseUnk, sp.prefix = removeExtra, dummyPrefix, true, dummyPrefix
	t, err := newSentencePiece(pieces, sp, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("SentencePiece model: %w", err)
	}
	return t, nil
}

// charsmap is SentencePiece's precompiled normalizer: a double-array trie
// (darts-clone) from byte strings to offsets of their replacements.
type charsmap struct {
	raw        []byte // as in the file
	units      []uint32
	normalized []byte
}

func parseCharsmap(b []byte) (*charsmap, error) {
	if len(b) < 4 {
		return nil, errors.New("truncated")
	}
	n := binary.LittleEndian.Uint32(b)
	if n%4 != 0 || uint64(n) > uint64(len(b)-4) || n == 0 {
		return nil, fmt.Errorf("trie size %d does not fit in %d bytes", n, len(b))
	}
	c := &charsmap{raw: b, units: make([]uint32, n/4), normalized: b[4+n:]}
	for i := range c.units {
		c.units[i] = binary.LittleEndian.Uint32(b[4+4*i:])
	}
	return c, nil
}

// longest returns the length of the longest key s starts with and its
// replacement, or 0.
func (c *charsmap) longest(s string) (int, string) {
	u := c.units
	offset := func(x uint32) uint32 { return (x >> 10) << ((x & (1 << 9)) >> 6) }
	pos := offset(u[0])
	best, val := 0, uint32(0)
	for i := 0; i < len(s); i++ {
		pos ^= uint32(s[i])
		if int(pos) >= len(u) {
			break
		}
		x := u[pos]
		if x&(1<<31|0xff) != uint32(s[i]) { // the unit's label
			break
		}
		pos ^= offset(x)
		if int(pos) >= len(u) {
			break
		}
		if x>>8&1 != 0 { // has a leaf: the value is in the unit at pos
			best, val = i+1, u[pos]&(1<<31-1)
		}
	}
	if best == 0 || int(val) >= len(c.normalized) {
		return 0, ""
	}
	rep := c.normalized[val:]
	for i, ch := range rep {
		if ch == 0 {
			rep = rep[:i]
			break
		}
	}
	return best, string(rep)
}

// normalize maps s through the character map: at each position the longest
// key's replacement, else the character itself (U+FFFD for a byte that is
// not UTF-8), as SentencePiece's Normalizer.
func (c *charsmap) normalize(s string) string {
	var b []byte
	for i := 0; i < len(s); {
		if n, rep := c.longest(s[i:]); n > 0 {
			b = append(b, rep...)
			i += n
			continue
		}
		r, w := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && w == 1 {
			b = append(b, "\uFFFD"...)
		} else {
			b = append(b, s[i:i+w]...)
		}
		i += w
	}
	return string(b)
}
