"""Writes a GGUF file with ggml itself (the libggml-base of node-llama-cpp's
prebuilt llama.cpp, through ctypes), so that golem's reader is tested on a
file golem did not write and golem's quantizers against ggml's own:

    python3 ggml_write.py LIBGGML_BASE OUT.gguf

Metadata: one key of every GGUF value type and three arrays. (Not
general.alignment: ggml's writer pads the data to its default 32 whatever
the key says, a file its own reader refuses.) Tensors (values x[i] = ((37*i) % 101 - 50) / 16 * (1 + i % 5), the
same formula in gguf's Go test; the first block -8, then halves): "f32", "f16", "bf16", "q8_0", "q4_0", each
[64, 3] (ne0 = 64), converted and quantized by ggml (ggml_fp32_to_fp16_row,
ggml_fp32_to_bf16_row, ggml_quantize_chunk: quantize_row_q8_0_ref and
quantize_row_q4_0_ref); then "q4_1", "q5_0", "q5_1", "q2_K" ... "q6_K", "iq4_nl", each
[256, 3] quantized by ggml, beside "NAME.deq": its values as ggml's
dequantize_row_NAME gives them, F32."""
import ctypes as C
import sys

lib_path, out = sys.argv[1], sys.argv[2]
g = C.CDLL(lib_path)


class InitParams(C.Structure):
    _fields_ = [("mem_size", C.c_size_t), ("mem_buffer", C.c_void_p), ("no_alloc", C.c_bool)]


g.ggml_init.restype = C.c_void_p
g.ggml_init.argtypes = [InitParams]
g.ggml_new_tensor_2d.restype = C.c_void_p
g.ggml_new_tensor_2d.argtypes = [C.c_void_p, C.c_int, C.c_int64, C.c_int64]
g.ggml_set_name.argtypes = [C.c_void_p, C.c_char_p]
g.ggml_get_data.restype = C.c_void_p
g.ggml_get_data.argtypes = [C.c_void_p]
g.ggml_quantize_chunk.restype = C.c_size_t
g.ggml_quantize_chunk.argtypes = [C.c_int, C.c_void_p, C.c_void_p, C.c_int64, C.c_int64, C.c_int64, C.c_void_p]
g.ggml_fp32_to_fp16_row.argtypes = [C.c_void_p, C.c_void_p, C.c_int64]
g.ggml_fp32_to_bf16_row.argtypes = [C.c_void_p, C.c_void_p, C.c_int64]
g.gguf_init_empty.restype = C.c_void_p
g.gguf_add_tensor.argtypes = [C.c_void_p, C.c_void_p]
g.gguf_write_to_file.restype = C.c_bool
g.gguf_write_to_file.argtypes = [C.c_void_p, C.c_char_p, C.c_bool]
g.gguf_set_arr_data.argtypes = [C.c_void_p, C.c_char_p, C.c_int, C.c_void_p, C.c_size_t]
g.gguf_set_arr_str.argtypes = [C.c_void_p, C.c_char_p, C.POINTER(C.c_char_p), C.c_size_t]

ctx = g.gguf_init_empty()
scalars = [
    ("u8", "u8", C.c_uint8, 200), ("i8", "i8", C.c_int8, -100), ("u16", "u16", C.c_uint16, 60000),
    ("i16", "i16", C.c_int16, -30000), ("u32", "u32", C.c_uint32, 4000000000), ("i32", "i32", C.c_int32, -2000000000),
    ("f32", "f32", C.c_float, 1.5), ("bool", "bool", C.c_bool, True), ("u64", "u64", C.c_uint64, 1 << 63),
    ("i64", "i64", C.c_int64, -(1 << 62)), ("f64", "f64", C.c_double, 3.25),
]
for key, fn, ctype, v in scalars:
    f = getattr(g, "gguf_set_val_" + fn)
    f.argtypes = [C.c_void_p, C.c_char_p, ctype]
    f(ctx, key.encode(), v)
g.gguf_set_val_str.argtypes = [C.c_void_p, C.c_char_p, C.c_char_p]
g.gguf_set_val_str(ctx, b"general.architecture", b"llama")
g.gguf_set_val_str(ctx, b"str", "héllo".encode())
i32s = (C.c_int32 * 3)(1, -1, 3)
g.gguf_set_arr_data(ctx, b"a.i32", 5, i32s, 3)  # GGUF_TYPE_INT32
f32s = (C.c_float * 2)(0.25, -2.0)
g.gguf_set_arr_data(ctx, b"a.f32", 6, f32s, 2)  # GGUF_TYPE_FLOAT32
strs = (C.c_char_p * 3)(b"a", b"", "\u0120the".encode())
g.gguf_set_arr_str(ctx, b"a.str", strs, 3)

mem = g.ggml_init(InitParams(64 << 20, None, False))
NE0, NE1 = 64, 3
n = NE0 * NE1
vals = [((37 * i) % 101 - 50) / 16 * (1 + i % 5) for i in range(n)]
# The first block has scale 1 in Q4_0 and halves to round: ggml truncates
# x/d + 8.5, which differs from rounding x/d (-2.5 -> -2, not -3).
vals[:32] = [-8.0] + [(i - 16) / 2 for i in range(1, 32)]
x = (C.c_float * n)(*vals)
for name, typ in [("f32", 0), ("f16", 1), ("bf16", 30), ("q8_0", 8), ("q4_0", 2)]:
    t = g.ggml_new_tensor_2d(mem, typ, NE0, NE1)
    g.ggml_set_name(t, name.encode())
    data = g.ggml_get_data(t)
    if typ == 0:
        C.memmove(data, x, 4 * n)
    elif typ == 1:
        g.ggml_fp32_to_fp16_row(x, data, n)
    elif typ == 30:
        g.ggml_fp32_to_bf16_row(x, data, n)
    else:
        g.ggml_quantize_chunk(typ, x, data, 0, NE1, NE0, None)
    g.gguf_add_tensor(ctx, t)
# The types golem reads but does not write, [256, 3], quantized by ggml
# (ggml_quantize_chunk, no importance matrix), each beside "NAME.deq": its
# values as ggml's own dequantize_row_NAME gives them, as F32.
NE0 = 256
n = NE0 * NE1
vals = [((37 * i) % 101 - 50) / 16 * (1 + i % 5) for i in range(n)]
x = (C.c_float * n)(*vals)
for name, typ in [("q4_1", 3), ("q5_0", 6), ("q5_1", 7), ("q2_K", 10), ("q3_K", 11), ("q4_K", 12), ("q5_K", 13), ("q6_K", 14), ("iq4_nl", 20)]:
    t = g.ggml_new_tensor_2d(mem, typ, NE0, NE1)
    g.ggml_set_name(t, name.encode())
    data = g.ggml_get_data(t)
    g.ggml_quantize_chunk(typ, x, data, 0, NE1, NE0, None)
    g.gguf_add_tensor(ctx, t)
    d = g.ggml_new_tensor_2d(mem, 0, NE0, NE1)
    g.ggml_set_name(d, (name + ".deq").encode())
    deq = getattr(g, "dequantize_row_" + name)
    deq.argtypes = [C.c_void_p, C.c_void_p, C.c_int64]
    deq(data, g.ggml_get_data(d), n)
    g.gguf_add_tensor(ctx, d)
if not g.gguf_write_to_file(ctx, out.encode(), False):
    sys.exit("ggml_write.py: gguf_write_to_file failed")
