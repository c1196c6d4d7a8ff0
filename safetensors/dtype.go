// Package safetensors reads and writes the safetensors checkpoint format used by
// Hugging Face model folders (model.safetensors, or shards listed in
// model.safetensors.index.json).
//
// A file is an 8-byte little-endian header length n, n bytes of JSON header
// (padded with spaces to a multiple of 8), then the tensor data. The header maps
// each tensor name to {"dtype","shape","data_offsets":[begin,end]} with offsets
// relative to the start of the data area; the optional "__metadata__" entry maps
// strings to strings.
//
// Open reads a file's header and checks it strictly, so that a hostile or
// truncated file gives an error naming the file and the tensor, never a panic;
// tensors are then read by offset (pread), not through a shared memory map, so
// that a file rewritten in place while it is read gives an error, not a SIGBUS,
// and File.Changed tells whether the file stayed the one opened. A path that is
// not a regular file (a FIFO) is refused without blocking.
// Write produces exactly the bytes the reference Python/Rust implementation
// would write for the same tensors, atomically.
package safetensors

// Data types, named as in the safetensors header.
const (
	BOOL    = "BOOL"
	U8      = "U8"
	I8      = "I8"
	F8E5M2  = "F8_E5M2"
	F8E4M3  = "F8_E4M3"
	I16     = "I16"
	U16     = "U16"
	F16     = "F16"
	BF16    = "BF16"
	I32     = "I32"
	U32     = "U32"
	F32     = "F32"
	F64     = "F64"
	I64     = "I64"
	U64     = "U64"
	metaKey = "__metadata__"
)

// dtypeInfo holds, for each known dtype, its element size in bytes and its rank
// in the reference implementation's enum, which orders tensors in written files
// (descending rank, then by name).
var dtypeInfo = map[string]struct{ size, rank int }{
	BOOL:   {1, 0},
	U8:     {1, 1},
	I8:     {1, 2},
	F8E5M2: {1, 3},
	F8E4M3: {1, 4},
	I16:    {2, 5},
	U16:    {2, 6},
	F16:    {2, 7},
	BF16:   {2, 8},
	I32:    {4, 9},
	U32:    {4, 10},
	F32:    {4, 11},
	F64:    {8, 12},
	I64:    {8, 13},
	U64:    {8, 14},
}

// DTypeSize returns the size in bytes of one element of dtype, or 0 if the
// dtype is unknown.
func DTypeSize(dtype string) int { return dtypeInfo[dtype].size }

func isFloat(dtype string) bool {
	return dtype == F32 || dtype == F16 || dtype == BF16 || dtype == F64
}

func isInt(dtype string) bool {
	switch dtype {
	case BOOL, U8, I8, I16, U16, I32, U32, I64, U64:
		return true
	}
	return false
}
