package constrain

// The matcher reads a value byte by byte. Its state is a set of threads
// (anyOf, enums and optional properties make it nondeterministic), each a
// stack of frames, the innermost last. All threads of a state live in one
// arena; stepping a state writes the next one into another arena, so the
// token trie's walk allocates nothing once its buffers have grown.

// frame is one schema node being matched, and where in it.
type frame struct {
	n       *node
	ph      uint8 // phase: what the node expects next
	a, b, x int32 // counters (see step)
}

type span struct{ off, n int32 }

// state is a set of threads: frames in fr, each thread a span of it.
type state struct {
	fr []frame
	th []span
	// work bounds the pushes of one step: a schema of anyOfs within
	// anyOfs (or a $ref cycle through anyOf) would fork without end.
	work int
}

// stepWork is the pushes one step may make.
const stepWork = 512

func (s *state) reset() {
	s.fr, s.th, s.work = s.fr[:0], s.th[:0], stepWork
}

func (s *state) thread(i int) []frame {
	t := s.th[i]
	return s.fr[t.off : t.off+t.n]
}

// maxFrames bounds a thread's stack: MaxDepth containers, each with a
// value being read, and the root's frames.
const maxFrames = 2*MaxDepth + 4

// maxThreads bounds the alternatives followed at once; beyond it the
// later ones are dropped (what is written still matches).
const maxThreads = 32

// start returns the state before the first byte.
func (s *Schema) start() *state {
	return &state{fr: []frame{{n: s.root}}, th: []span{{0, 1}}}
}

// step feeds c to every thread of src and writes the threads that accept
// it into dst (reset first).
func step(dst, src *state, c byte) {
	dst.reset()
	for i := range src.th {
		off := len(dst.fr)
		dst.fr = append(dst.fr, src.thread(i)...)
		feed(dst, off, c)
	}
	if len(dst.th) > 1 {
		dedupe(dst)
	}
}

// dedupe removes repeated threads.
func dedupe(s *state) {
	out := s.th[:0]
next:
	for i := range s.th {
		t := s.thread(i)
		for _, o := range out {
			if equalFrames(t, s.fr[o.off:o.off+o.n]) {
				continue next
			}
		}
		out = append(out, s.th[i])
	}
	s.th = out
}

func equalFrames(a, b []frame) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// commit keeps the thread dst.fr[off:] (unless maxThreads are kept
// already: then it is dropped, and what is written still matches); drop
// discards it.
func commit(dst *state, off int) {
	if len(dst.th) >= maxThreads {
		drop(dst, off)
		return
	}
	dst.th = append(dst.th, span{int32(off), int32(len(dst.fr) - off)})
}

func drop(dst *state, off int) { dst.fr = dst.fr[:off] }

// fork copies the thread dst.fr[off:end] to the end of the arena and
// returns the copy's offset.
func fork(dst *state, off, end int) int {
	o := len(dst.fr)
	dst.fr = append(dst.fr, dst.fr[off:end]...)
	return o
}

// push starts node n on the thread dst.fr[off:] (the last in the arena)
// and feeds it c. An anyOf, an enum or a value of any type may fork the
// thread: then each copy goes on, and the original is left behind unused.
func push(dst *state, off int, n *node, c byte) {
	if dst.work--; dst.work < 0 || len(dst.fr)-off >= maxFrames {
		drop(dst, off)
		return
	}
	switch n.kind {
	case kRef:
		push(dst, off, n.target, c)
	case kAnyOf:
		end := len(dst.fr)
		for _, alt := range n.alts {
			push(dst, fork(dst, off, end), alt, c)
		}
	case kLiteral:
		end := len(dst.fr)
		for i, lit := range n.lits {
			if lit[0] != c {
				continue
			}
			o := fork(dst, off, end)
			if len(lit) > 1 {
				dst.fr = append(dst.fr, frame{n: n, ph: 1, a: int32(i), b: 1})
			}
			commit(dst, o)
		}
	case kAny:
		var v *node
		switch {
		case c == '{':
			v = anyObject
		case c == '[':
			v = anyArray
		case c == '"':
			v = anyString
		case c == '-' || c >= '0' && c <= '9':
			v = anyNumber
		case c == 't':
			v = litTrue
		case c == 'f':
			v = litFalse
		case c == 'n':
			v = litNull
		default:
			drop(dst, off)
			return
		}
		push(dst, off, v, c)
	default:
		if n.kind == kObject || n.kind == kArray {
			depth := 0
			for _, f := range dst.fr[off:] {
				if f.n.kind == kObject || f.n.kind == kArray {
					depth++
				}
			}
			if depth >= MaxDepth {
				drop(dst, off)
				return
			}
		}
		dst.fr = append(dst.fr, frame{n: n})
		feed(dst, off, c)
	}
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isHex(c byte) bool {
	return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// feed gives c to the innermost frame of the thread dst.fr[off:] (the
// last in the arena), popping frames that are complete and do not take
// it; the thread is then committed or dropped.
func feed(dst *state, off int, c byte) {
	for {
		if len(dst.fr) == off { // the value is complete: nothing may follow
			drop(dst, off)
			return
		}
		f := &dst.fr[len(dst.fr)-1]
		n := f.n
		pop := func() { dst.fr = dst.fr[:len(dst.fr)-1] }
		switch n.kind {
		case kSeq:
			if int(f.a) == len(n.alts) {
				pop()
				continue
			}
			f.a++
			push(dst, off, n.alts[f.a-1], c)
			return

		case kLiteral:
			lit := n.lits[f.a]
			if lit[f.b] != c {
				drop(dst, off)
				return
			}
			f.b++
			if int(f.b) == len(lit) {
				pop()
			}
			commit(dst, off)
			return

		case kObject:
			if n.open {
				switch {
				case f.ph == 0 && c == '{':
					f.ph = 1
				case (f.ph == 1 || f.ph == 4) && c == '}':
					pop()
				case (f.ph == 1 || f.ph == 5) && c == '"':
					f.ph = 2
					if len(dst.fr)-off >= maxFrames {
						drop(dst, off)
						return
					}
					dst.fr = append(dst.fr, frame{n: anyString, ph: 1})
				case f.ph == 2 && c == ':':
					f.ph = 3
				case f.ph == 3:
					f.ph = 4
					push(dst, off, anyNode, c)
					return
				case f.ph == 4 && c == ',':
					f.ph = 5
				default:
					drop(dst, off)
					return
				}
				commit(dst, off)
				return
			}
			switch f.ph {
			case 0:
				if c != '{' {
					drop(dst, off)
					return
				}
				f.ph = 1
				commit(dst, off)
			case 1, 5: // a key (from property a on) or, at 1, the end
				if f.ph == 1 && c == '}' && !n.reqAfter[f.a] {
					pop()
					commit(dst, off)
					return
				}
				end := len(dst.fr)
				from := f.a
				for k := from; int(k) < len(n.props); k++ {
					if n.props[k].key[0] == c {
						o := fork(dst, off, end)
						t := &dst.fr[len(dst.fr)-1]
						t.ph, t.a, t.b = 2, k, 1
						commit(dst, o)
					}
					if n.props[k].required {
						break
					}
				}
			case 2: // in property a's key, at byte b
				key := n.props[f.a].key
				if key[f.b] != c {
					drop(dst, off)
					return
				}
				f.b++
				if int(f.b) == len(key) {
					f.ph, f.b = 3, 0
				}
				commit(dst, off)
			case 3: // the value
				f.ph = 4
				push(dst, off, n.props[f.a].val, c)
			case 4: // after a value
				switch {
				case c == ',' && int(f.a)+1 < len(n.props):
					f.ph, f.a = 5, f.a+1
					commit(dst, off)
				case c == '}' && !n.reqAfter[f.a+1]:
					pop()
					commit(dst, off)
				default:
					drop(dst, off)
				}
			}
			return

		case kArray:
			switch {
			case f.ph == 0 && c == '[':
				f.ph = 1
			case (f.ph == 1 || f.ph == 2) && c == ']':
				if f.a < n.minItems {
					drop(dst, off)
					return
				}
				pop()
			case f.ph == 1 || f.ph == 3:
				if n.maxItems >= 0 && f.a >= n.maxItems {
					drop(dst, off)
					return
				}
				f.a++
				f.ph = 2
				push(dst, off, n.items, c)
				return
			case f.ph == 2 && c == ',' && (n.maxItems < 0 || f.a < n.maxItems):
				f.ph = 3
			default:
				drop(dst, off)
				return
			}
			commit(dst, off)
			return

		case kString:
			if !stepString(f, c) {
				drop(dst, off)
				return
			}
			if f.ph == 9 {
				pop()
			}
			commit(dst, off)
			return

		case kNumber, kInteger:
			switch stepNumber(f, c, n.kind == kInteger) {
			case 1:
				commit(dst, off)
			case 0:
				pop() // complete: the byte is the parent's
				continue
			default:
				drop(dst, off)
			}
			return
		}
		drop(dst, off)
		return
	}
}

// stepString advances a string frame; phase 9 means the closing quote
// was read. Phases: 0 before the opening quote, 1 in the text, 2 after a
// backslash, 3 in a UTF-8 character (b continuation bytes left, x the
// range of the next one), 4 in \uXXXX (b hex digits left). a counts the
// characters.
func stepString(f *frame, c byte) bool {
	n := f.n
	switch f.ph {
	case 0:
		if c != '"' {
			return false
		}
		f.ph = 1
		return true
	case 1:
		if c == '"' {
			if f.a < n.minLen {
				return false
			}
			f.ph = 9
			return true
		}
		if n.maxLen >= 0 && f.a >= n.maxLen {
			return false
		}
		switch {
		case c < 0x20:
			return false
		case c == '\\':
			f.ph = 2
		case c < 0x80:
		case c >= 0xC2 && c <= 0xDF:
			f.ph, f.b, f.x = 3, 1, 0
		case c >= 0xE0 && c <= 0xEF:
			f.ph, f.b, f.x = 3, 2, 0
			if c == 0xE0 {
				f.x = 1 // A0..BF: no overlong form
			} else if c == 0xED {
				f.x = 2 // 80..9F: no surrogate
			}
		case c >= 0xF0 && c <= 0xF4:
			f.ph, f.b, f.x = 3, 3, 0
			if c == 0xF0 {
				f.x = 3 // 90..BF
			} else if c == 0xF4 {
				f.x = 4 // 80..8F: not above U+10FFFF
			}
		default:
			return false
		}
		f.a++
		return true
	case 2:
		switch c {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			f.ph = 1
		case 'u':
			f.ph, f.b = 4, 4
		default:
			return false
		}
		return true
	case 3:
		lo, hi := byte(0x80), byte(0xBF)
		switch f.x {
		case 1:
			lo = 0xA0
		case 2:
			hi = 0x9F
		case 3:
			lo = 0x90
		case 4:
			hi = 0x8F
		}
		if c < lo || c > hi {
			return false
		}
		f.x = 0
		if f.b--; f.b == 0 {
			f.ph = 1
		}
		return true
	case 4:
		if !isHex(c) {
			return false
		}
		if f.b--; f.b == 0 {
			f.ph = 1
		}
		return true
	}
	return false
}

// stepNumber advances a number frame: 1 if it takes c, 0 if the number is
// complete and c is not part of it, -1 if c is wrong. Phases: 0 start,
// 1 after '-', 2 after a leading 0, 3 in the integer digits (a of them),
// 4 after '.', 5 in the fraction (b digits), 6 after 'e', 7 after the
// exponent's sign, 8 in the exponent (x digits).
func stepNumber(f *frame, c byte, integer bool) int {
	switch f.ph {
	case 0, 1:
		switch {
		case c == '-' && f.ph == 0:
			f.ph = 1
		case c == '0':
			f.ph = 2
		case c >= '1' && c <= '9':
			f.ph, f.a = 3, 1
		default:
			return -1
		}
		return 1
	case 2, 3, 5:
		switch {
		case f.ph == 3 && isDigit(c):
			if f.a >= maxIntDigits {
				return -1
			}
			f.a++
			return 1
		case f.ph == 5 && isDigit(c):
			if f.b >= maxFracDigits {
				return -1
			}
			f.b++
			return 1
		case c == '.' && f.ph != 5 && !integer:
			f.ph = 4
			return 1
		case (c == 'e' || c == 'E') && !integer:
			f.ph = 6
			return 1
		}
		return 0
	case 4:
		if !isDigit(c) {
			return -1
		}
		f.ph, f.b = 5, 1
		return 1
	case 6, 7:
		switch {
		case (c == '+' || c == '-') && f.ph == 6:
			f.ph = 7
		case isDigit(c):
			f.ph, f.x = 8, 1
		default:
			return -1
		}
		return 1
	case 8:
		if isDigit(c) {
			if f.x >= maxExpDigits {
				return -1
			}
			f.x++
			return 1
		}
		return 0
	}
	return -1
}

// canEnd reports whether some thread of s holds a whole value: nothing
// left but frames that are complete (a number that may end, a finished
// sequence).
func canEnd(s *state) bool {
	for i := range s.th {
		if threadDone(s.thread(i)) {
			return true
		}
	}
	return false
}

func threadDone(t []frame) bool {
	for i := len(t) - 1; i >= 0; i-- {
		f := t[i]
		switch {
		case f.n.kind == kSeq && int(f.a) == len(f.n.alts):
		case (f.n.kind == kNumber || f.n.kind == kInteger) && (f.ph == 2 || f.ph == 3 || f.ph == 5 || f.ph == 8):
		default:
			return false
		}
	}
	return true
}

// Match reports whether text is a whole value of the schema as the
// matcher writes it (compact JSON, properties in order).
func (s *Schema) Match(text []byte) bool {
	cur, next := s.start(), &state{}
	for _, c := range text {
		step(next, cur, c)
		if len(next.th) == 0 {
			return false
		}
		cur, next = next, cur
	}
	return canEnd(cur)
}
