#!/usr/bin/env python3
"""Train a small OPT on real text (WikiText-2) and write it as a Hugging Face folder.

A checkpoint with trained weights for aweq-dist (the built-in generated models
have random ones): OPT architecture (pre-LayerNorm, learned positions,
ReLU MLP), GPT-2 byte-level BPE, vocabulary padded to 50272 like OPT, float32.

Data: /work/shared/data (or --data): gpt2-tokenizer/encoder.json (GPT-2's
vocab.json), gpt2-tokenizer/vocab.bpe (its merges.txt), wikitext-2/wiki.test.raw.
The text file is cut at a line boundary: training = the lines up to and
including the first line that ends at or after 85% of its bytes, held out = the
rest (the numbers are printed; for the shared file: lines 1-2385 (bytes
0-1097737, 85.06%) train, lines 2386-2891 are held out, i.e. `tail -n +2386
wiki.test.raw` is the held-out text; --heldout-text FILE writes it).
Both parts are fed through the evaluation protocol of bench/hf_ppl.py (rows
joined with "\\n\\n", BOS first), so training sees text shaped like the
evaluation's.

Writes to --out: config.json, model.safetensors (float32), generation_config.json,
vocab.json, merges.txt, tokenizer_config.json, special_tokens_map.json (BOS =
EOS = UNK = "<|endoftext|>", add_bos_token true: AutoTokenizer prepends it,
the way OPT folders prepend "</s>"). Then prints the held-out perplexity with
bench/hf_ppl.py's code, at 512 tokens and at 2048.

    python bench/train_opt_wikitext.py --out build/trained-opt [--data /work/shared/data]
        [--steps N] [--seed S]

Needs torch, transformers, safetensors (PyPI):
    python3 -m venv build/venv && build/venv/bin/pip install torch transformers safetensors
"""

import argparse
import json
import math
import os
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import hf_ppl  # noqa: E402  (the evaluation protocol, shared)

VOCAB = 50272       # OPT's padded vocabulary (GPT-2's 50257 + 15 unused ids)
EOT = "<|endoftext|>"
EOT_ID = 50256
PAD_ID = 50257      # first unused id: the embedding's padding_idx must not be a real token
TRAIN_FRACTION = 0.85


def split_text(raw):
    """(train, heldout, train_lines, total_lines, cut_byte): cut at the end of
    the first line that ends at or after TRAIN_FRACTION of the bytes."""
    b = raw.encode("utf-8")
    cut = b.index(b"\n", int(len(b) * TRAIN_FRACTION)) + 1
    train, held = b[:cut].decode("utf-8"), b[cut:].decode("utf-8")
    return train, held, train.count("\n"), raw.count("\n") + (0 if raw.endswith("\n") else 1), cut


def write_tokenizer(out, data):
    tokdir = os.path.join(data, "gpt2-tokenizer")
    shutil.copyfile(os.path.join(tokdir, "encoder.json"), os.path.join(out, "vocab.json"))
    shutil.copyfile(os.path.join(tokdir, "vocab.bpe"), os.path.join(out, "merges.txt"))
    special = {"content": EOT, "lstrip": False, "normalized": True, "rstrip": False,
               "single_word": False}
    with open(os.path.join(out, "special_tokens_map.json"), "w") as f:
        json.dump({"bos_token": special, "eos_token": special, "unk_token": special}, f, indent=2)
        f.write("\n")
    cfg = {
        "tokenizer_class": "GPT2Tokenizer",
        "add_bos_token": True,
        "add_prefix_space": False,
        "errors": "replace",
        "bos_token": special,
        "eos_token": special,
        "unk_token": special,
        "model_max_length": 1000000000000000019884624838656,
        "clean_up_tokenization_spaces": False,
    }
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")


def lr_at(step, steps, peak, warmup):
    """Linear warm-up, then cosine down to 10% of the peak."""
    if step < warmup:
        return peak * (step + 1) / warmup
    p = (step - warmup) / max(1, steps - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * p)))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="output folder (e.g. build/trained-opt)")
    ap.add_argument("--data", default="/work/shared/data", help="folder with gpt2-tokenizer/ and wikitext-2/")
    ap.add_argument("--steps", type=int, default=200, help="optimizer steps (default 200)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--ffn", type=int, default=1024)
    ap.add_argument("--seq-len", type=int, default=512, help="training window (default 512)")
    ap.add_argument("--long-every", type=int, default=4,
                    help="every N-th step trains on 2048-token windows so that all 2048 positions "
                         "learn (0: never; default 4)")
    ap.add_argument("--batch-tokens", type=int, default=2048, help="tokens per step (default 2048)")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--heldout-text", default=None, help="also write the held-out text to this file")
    ap.add_argument("--no-eval", action="store_true", help="skip the held-out perplexity")
    a = ap.parse_args(argv)

    import torch
    import transformers
    from transformers import AutoTokenizer, GenerationConfig, OPTConfig, OPTForCausalLM

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    torch.use_deterministic_algorithms(True)
    t_start = time.time()

    raw = open(os.path.join(a.data, "wikitext-2", "wiki.test.raw"), "rb").read().decode("utf-8")
    train_raw, held_raw, n_train_lines, n_lines, cut = split_text(raw)
    print(f"data: wiki.test.raw, {len(raw.encode())} bytes, {n_lines} lines; training = lines "
          f"1-{n_train_lines} (bytes 0-{cut - 1}, {100 * cut / len(raw.encode()):.2f}%), held out = lines "
          f"{n_train_lines + 1}-{n_lines} (`tail -n +{n_train_lines + 1}`)")
    if a.heldout_text:
        with open(a.heldout_text, "wb") as f:
            f.write(held_raw.encode("utf-8"))

    os.makedirs(a.out, exist_ok=True)
    write_tokenizer(a.out, a.data)
    tok = AutoTokenizer.from_pretrained(a.out)
    train_ids = hf_ppl.tokenize(tok, "\n\n".join(hf_ppl.wikitext_rows(train_raw)))
    held_ids = hf_ppl.tokenize(tok, "\n\n".join(hf_ppl.wikitext_rows(held_raw)))
    assert train_ids[0] == EOT_ID, "the tokenizer must prepend BOS"
    print(f"tokens: {len(train_ids)} training, {len(held_ids)} held out (GPT-2 BPE, BOS first)")

    max_pos = 2048
    cfg = OPTConfig(
        vocab_size=VOCAB, hidden_size=a.hidden, num_hidden_layers=a.layers, ffn_dim=a.ffn,
        num_attention_heads=a.heads, max_position_embeddings=max_pos, do_layer_norm_before=True,
        word_embed_proj_dim=a.hidden, activation_function="relu", dropout=0.0,
        attention_dropout=0.0, layerdrop=0.0, enable_bias=True, layer_norm_elementwise_affine=True,
        pad_token_id=PAD_ID, bos_token_id=EOT_ID, eos_token_id=EOT_ID, init_std=0.02,
        tie_word_embeddings=True, architectures=["OPTForCausalLM"])
    model = OPTForCausalLM(cfg)
    n_params = sum(p.numel() for p in model.parameters())  # tied head counted once
    n_embed = model.model.decoder.embed_tokens.weight.numel() + model.model.decoder.embed_positions.weight.numel()
    print(f"model: OPT d={a.hidden}, {a.layers} layers, {a.heads} heads, ffn {a.ffn}, vocab {VOCAB}, "
          f"{max_pos} positions: {n_params:,} parameters ({n_params - n_embed:,} outside the embeddings)")

    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.95), eps=1e-8)
    gen = torch.Generator().manual_seed(a.seed)
    data = torch.tensor(train_ids, dtype=torch.long)
    warmup = max(1, a.steps // 20)
    model.train()
    t0 = time.time()
    tokens_seen = 0
    for step in range(a.steps):
        long_step = a.long_every > 0 and step % a.long_every == a.long_every - 1
        L = max_pos if long_step else a.seq_len
        B = max(1, a.batch_tokens // L)
        # random windows of the training stream (seeded)
        starts = torch.randint(0, len(train_ids) - L, (B,), generator=gen)
        x = torch.stack([data[s:s + L] for s in starts.tolist()])
        for g in opt.param_groups:
            g["lr"] = lr_at(step, a.steps, a.lr, warmup)
        loss = model(input_ids=x, labels=x).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        tokens_seen += B * L
        if step % 20 == 0 or step == a.steps - 1:
            el = time.time() - t0
            print(f"step {step + 1}/{a.steps}  L {L}  loss {loss.item():.4f}  lr {opt.param_groups[0]['lr']:.2e}  "
                  f"{tokens_seen / el:.0f} tok/s  {el:.0f} s", flush=True)
    train_s = time.time() - t0
    print(f"trained: {a.steps} steps, {tokens_seen:,} tokens ({tokens_seen / len(train_ids):.2f} passes "
          f"over the training text), {train_s:.1f} s ({tokens_seen / train_s:.0f} tok/s, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}, transformers {transformers.__version__})")

    model.eval()
    model.save_pretrained(a.out, safe_serialization=True)
    GenerationConfig(bos_token_id=EOT_ID, eos_token_id=EOT_ID, pad_token_id=PAD_ID).save_pretrained(a.out)
    # transformers >= 4.56 writes "dtype"; Hub folders and older readers know "torch_dtype"
    cpath = os.path.join(a.out, "config.json")
    with open(cpath) as f:
        conf = json.load(f)
    if "torch_dtype" not in conf:
        conf["torch_dtype"] = conf.get("dtype", "float32")
        with open(cpath, "w") as f:
            json.dump(conf, f, indent=2, sort_keys=True)
            f.write("\n")
    print(f"wrote {a.out}: {', '.join(sorted(os.listdir(a.out)))}")

    if not a.no_eval:
        reloaded = hf_ppl.load_model(a.out)
        for L in (512, 2048):
            t1 = time.time()
            total, n = hf_ppl.window_nll(reloaded, held_ids, L)
            print(f"held out: wikitext2 ppl {math.exp(total / (n * (L - 1))):.6f} on {n} windows x {L} tokens "
                  f"({n * (L - 1)} predicted tokens), {time.time() - t1:.1f} s")
    print(f"total time {time.time() - t_start:.1f} s")


if __name__ == "__main__":
    main()
