package tokenizer

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	peer "github.com/tiktoken-go/tokenizer"
)

// These tests check the cl100k and o200k scanners and tiktoken loading
// against github.com/tiktoken-go/tokenizer, which runs the original regular
// expressions (compiled with regexp2) over OpenAI's vocabularies.

type peerPair struct {
	ours  *Tokenizer
	codec peer.Codec
}

var (
	peerOnce sync.Map // encoding -> *peerPair
)

func loadPeer(t testing.TB, enc peer.Encoding, p Pattern) *peerPair {
	t.Helper()
	if v, ok := peerOnce.Load(enc); ok {
		return v.(*peerPair)
	}
	codec, err := peer.Get(enc)
	if err != nil {
		t.Fatal(err)
	}
	// Rebuild the rank file from the peer's vocabulary.
	var buf bytes.Buffer
	for id := uint(0); ; id++ {
		s, err := codec.Decode([]uint{id})
		if err != nil {
			break
		}
		fmt.Fprintf(&buf, "%s %d\n", base64.StdEncoding.EncodeToString([]byte(s)), id)
	}
	ours, err := LoadTiktoken(buf.Bytes(), p, nil)
	if err != nil {
		t.Fatal(err)
	}
	pp := &peerPair{ours, codec}
	peerOnce.Store(enc, pp)
	return pp
}

func (pp *peerPair) check(t testing.TB, text string) {
	t.Helper()
	want, _, err := pp.codec.Encode(text)
	if err != nil {
		t.Fatal(err)
	}
	got := pp.ours.Encode(text)
	if len(got) != len(want) || !slices.EqualFunc(got, want, func(a int, b uint) bool { return uint(a) == b }) {
		t.Errorf("%s: %q:\n got %v\nwant %v", pp.codec.GetName(), truncate(text), got, want)
	}
}

var peerEncodings = []struct {
	enc peer.Encoding
	p   Pattern
}{{peer.Cl100kBase, PatternCL100K}, {peer.O200kBase, PatternO200K}, {peer.R50kBase, PatternGPT2}}

func TestAgainstTiktokenGo(t *testing.T) {
	if testing.Short() {
		t.Skip("loads three OpenAI vocabularies")
	}
	sample := sampleText(t, 400000)
	for _, e := range peerEncodings {
		pp := loadPeer(t, e.enc, e.p)
		for _, s := range roundTripTexts {
			if utf8.ValidString(s) {
				pp.check(t, s)
			}
		}
		for _, line := range strings.SplitAfter(sample, "\n") {
			pp.check(t, line)
		}
		pp.check(t, sample)
	}
}
