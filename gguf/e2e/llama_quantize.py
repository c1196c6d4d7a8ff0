"""Quantizes a GGUF model with llama.cpp itself (llama_model_quantize of
node-llama-cpp's prebuilt libllama, through ctypes), so that golem is
tested on a quantized model file golem did not write:

    python3 llama_quantize.py LIBLLAMA IN.gguf OUT.gguf TYPE

TYPE q8_0 or q4_0: "pure" (every matrix of the one type, none of the
k-quant mixture llama.cpp would otherwise give the embedding); q4_k_m,
q5_k_m, q6_k, q3_k_m, q2_k: llama.cpp's own mixtures, as its
llama-quantize writes them (Q4_K_M: Q4_K with Q6_K for the head and
half the attn_v and ffn_down, Q5_0 where a row is not a multiple of 256
...). One thread. Exits non-zero if llama.cpp fails."""
import ctypes as C
import sys

lib_path, inp, out, typ = sys.argv[1:5]
# llama_ftype (llama.h): LLAMA_FTYPE_MOSTLY_Q8_0, _Q4_0, _Q4_K_M, _Q5_K_M,
# _Q6_K, _Q3_K_M, _Q2_K.
ftype = {"q8_0": 7, "q4_0": 2, "q4_k_m": 15, "q5_k_m": 17, "q6_k": 18, "q3_k_m": 12, "q2_k": 10}[typ]


class Params(C.Structure):
    # llama_model_quantize_params's leading fields (llama.h), padded with
    # room for the pointers and any fields a later llama.cpp adds.
    _fields_ = [
        ("nthread", C.c_int32), ("ftype", C.c_int32), ("output_tensor_type", C.c_int32),
        ("token_embedding_type", C.c_int32), ("allow_requantize", C.c_bool),
        ("quantize_output_tensor", C.c_bool), ("only_copy", C.c_bool), ("pure", C.c_bool),
        ("keep_split", C.c_bool), ("_rest", C.c_uint8 * 256),
    ]


lib = C.CDLL(lib_path)
lib.llama_model_quantize_default_params.restype = Params
lib.llama_model_quantize.argtypes = [C.c_char_p, C.c_char_p, C.POINTER(Params)]
lib.llama_model_quantize.restype = C.c_uint32
lib.llama_backend_init()
p = lib.llama_model_quantize_default_params()
p.nthread, p.ftype, p.pure = 1, ftype, typ in ("q8_0", "q4_0")
rc = lib.llama_model_quantize(inp.encode(), out.encode(), C.byref(p))
sys.exit(rc)
