#!/usr/bin/env python3
"""Writes the tiny models the real-Ollama suite serves: random weights, llama architecture.

usage: make_tiny_model.py OUT.gguf [--seed N] [--embed]

2 layers, width 64, context 256, a SentencePiece-style vocabulary of 369 pieces (control
tokens, the 256 byte tokens, letters, digits, punctuation and a few words): about 0.5 MB, and
fast on one CPU core. Random weights answer with gibberish, which is all a gateway test
wants: real wire formats, real token counts (the chat template included), real durations,
real `done_reason`s, real loading and unloading.

The output matrix never samples a token that would make invalid UTF-8 (bytes >= 0x80,
control bytes, unk/bos): column 0 of the residual stream is a constant "bias channel"
(every embedding has 8.0 there and no layer writes to it), and banned tokens get -200 in it.

`--embed` adds mean pooling, which makes an embedding-only model for Ollama.
Needs `pip install gguf numpy` (tests/python/requirements.txt has both).
"""

from __future__ import annotations

import argparse

import gguf
import numpy as np

N_EMBD, N_LAYER, N_HEAD, N_FF, N_CTX = 64, 2, 4, 128, 256
HEAD_DIM = N_EMBD // N_HEAD
WORDS = (
    "the a an and is are was to of in on it you I he she we they hello world hi how what why "
    "yes no this that with for be have do say ok sure tiny model test"
).split()


def vocabulary() -> tuple[list[str], list[float], list[int]]:
    """Pieces, scores and token types: <unk>, <s>, </s>, 256 bytes, then text pieces."""
    kind = gguf.TokenType
    tokens = ["<unk>", "<s>", "</s>"]
    scores = [0.0, 0.0, 0.0]
    types = [kind.UNKNOWN, kind.CONTROL, kind.CONTROL]
    for b in range(256):
        tokens.append(f"<0x{b:02X}>")
        scores.append(0.0)
        types.append(kind.BYTE)
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    letters += [chr(c) for c in range(ord("A"), ord("Z") + 1)]
    pieces = ["\u2581", *letters, *"0123456789.,!?'-:;", *("\u2581" + w for w in WORDS)]
    seen = set(tokens)
    for i, piece in enumerate(pieces):
        if piece in seen:
            continue
        seen.add(piece)
        tokens.append(piece)
        # Longer pieces score higher, so that the tokenizer prefers whole words.
        scores.append(-float(i) if len(piece) == 1 else len(piece) - 1.0 - i / 1000.0)
        types.append(kind.NORMAL)
    return tokens, scores, types


def never_sampled(index: int, types: list[int]) -> bool:
    kind = gguf.TokenType
    if types[index] in (kind.UNKNOWN, kind.USER_DEFINED) or index == 1:
        return True
    if types[index] == kind.BYTE:
        byte = index - 3
        return byte >= 0x80 or (byte < 0x20 and byte != 0x0A)
    return False


def write(out: str, seed: int, embed: bool) -> None:
    rng = np.random.default_rng(seed)
    tokens, scores, types = vocabulary()
    n_vocab = len(tokens)

    w = gguf.GGUFWriter(out, "llama")
    w.add_name("llm-quota-tiny")
    w.add_context_length(N_CTX)
    w.add_embedding_length(N_EMBD)
    w.add_block_count(N_LAYER)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    w.add_rope_dimension_count(HEAD_DIM)
    w.add_vocab_size(n_vocab)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    if embed:
        w.add_pooling_type(gguf.PoolingType.MEAN)
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_unk_token_id(0)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)

    def random(name: str, *shape: int, scale: float = 0.02, keep_bias_channel: bool = False):
        matrix = (rng.standard_normal(shape) * scale).astype(np.float32)
        if keep_bias_channel:
            matrix[0, :] = 0  # never write into the bias channel
        w.add_tensor(name, matrix)

    def ones(name: str, n: int):
        w.add_tensor(name, np.ones(n, dtype=np.float32))

    embedding = rng.standard_normal((n_vocab, N_EMBD)).astype(np.float32)
    embedding[:, 0] = 8.0
    w.add_tensor("token_embd.weight", embedding)
    for i in range(N_LAYER):
        ones(f"blk.{i}.attn_norm.weight", N_EMBD)
        random(f"blk.{i}.attn_q.weight", N_HEAD * HEAD_DIM, N_EMBD)
        random(f"blk.{i}.attn_k.weight", N_HEAD * HEAD_DIM, N_EMBD)
        random(f"blk.{i}.attn_v.weight", N_HEAD * HEAD_DIM, N_EMBD)
        random(f"blk.{i}.attn_output.weight", N_EMBD, N_HEAD * HEAD_DIM, keep_bias_channel=True)
        ones(f"blk.{i}.ffn_norm.weight", N_EMBD)
        random(f"blk.{i}.ffn_gate.weight", N_FF, N_EMBD)
        random(f"blk.{i}.ffn_up.weight", N_FF, N_EMBD)
        random(f"blk.{i}.ffn_down.weight", N_EMBD, N_FF, keep_bias_channel=True)
    ones("output_norm.weight", N_EMBD)
    output = (rng.standard_normal((n_vocab, N_EMBD)) * 0.5).astype(np.float32)
    output[:, 0] = 0.0
    for i in range(n_vocab):
        if never_sampled(i, types):
            output[i, 0] = -200.0
    w.add_tensor("output.weight", output)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="the .gguf file to write")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--embed", action="store_true", help="mean pooling: an embedding model")
    args = parser.parse_args()
    write(args.out, args.seed, args.embed)


if __name__ == "__main__":
    main()
