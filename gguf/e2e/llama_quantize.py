"""Quantizes a GGUF model with llama.cpp itself (llama_model_quantize of
node-llama-cpp's prebuilt libllama, through ctypes), so that golem is
tested on a quantized model file golem did not write:

    python3 llama_quantize.py LIBLLAMA IN.gguf OUT.gguf q8_0|q4_0

"pure" (every matrix of the one type, no k-quant mixture: golem reads
Q8_0 and Q4_0, not Q6_K), one thread. Exits non-zero if llama.cpp fails."""
import ctypes as C
import sys

lib_path, inp, out, typ = sys.argv[1:5]
ftype = {"q8_0": 7, "q4_0": 2}[typ]  # LLAMA_FTYPE_MOSTLY_Q8_0, _Q4_0


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
p.nthread, p.ftype, p.pure = 1, ftype, True
rc = lib.llama_model_quantize(inp.encode(), out.encode(), C.byref(p))
sys.exit(rc)
