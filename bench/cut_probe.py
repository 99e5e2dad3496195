"""Is a cut model the function that pruning trained? Two checks on a real dense model and a given structure.

1. Surgery: the cut model against the gated model with the same final masks (what tests/test_surgery.py
   checks on tiny configs), largest difference over the output states.
2. CoFi's view of pruning (`prune.skip_empty_sublayers=false`; auxprune's only one until 2026-12-07): a layer
   whose heads all sample to zero still applies its attention LayerNorm (to the residual plus the output
   projection's bias; `attn_block` is not a pruned family by default), and an FFN sublayer with no units the
   same; the cut removes such sublayers. This compares the sentence embeddings of the cut model with those of
   the gated model that keeps them (cosine per sentence), with the hidden gate and without it. (The default
   view now skips them, as the cut does; the runs' own `cut_check` measures that.)
The structure (heads and FFN units per layer, hidden dimensions kept) is given, e.g. a pruned run's; which
units are kept is drawn at random (seeded), the gate values uniform in [0.2, 1].

    python bench/cut_probe.py bench/work/size_matched/stsb_mpnet_baseline_bf16_seed1/teacher --task glue/stsb \\
        --heads 3 1 0 0 0 0 0 0 0 1 2 9 --ffn 1237 1087 974 860 711 741 667 455 723 892 811 1330 --hidden 411
"""

from __future__ import annotations

import argparse
import copy
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling bench scripts, however this one is loaded
from embedding_spread import DATA, dev_sentences  # noqa: E402
from results_file import add_record, display, machine  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "cut_probe.json"


def structure_masks(model, heads: list[int], ffn: list[int], hidden: int, seed: int):
    """Final masks keeping `heads[l]` heads and `ffn[l]` units of layer l and `hidden` dimensions, drawn at random."""
    import torch

    from auxprune.structure import Dims, dense_masks, make_consistent

    c = model.config
    masks = dense_masks(Dims(c.num_hidden_layers, c.original_num_heads, c.head_dim, c.original_ffn_size, c.hidden_size))
    g = torch.Generator().manual_seed(seed)

    def some(total: int, kept: int):
        keep = torch.zeros(total, dtype=torch.bool)
        keep[torch.randperm(total, generator=g)[:kept]] = True
        return keep

    for layer, (h, f) in enumerate(zip(heads, ffn, strict=True)):
        masks.keep["heads"][layer] = some(c.original_num_heads, h)
        masks.keep["ffn_units"][layer] = some(c.original_ffn_size, f)
    masks.keep["hidden"] = some(c.hidden_size, hidden)
    for family in masks.values:
        masks.values[family] = torch.rand(masks.values[family].shape, generator=g) * 0.8 + 0.2
    make_consistent(masks.keep)
    return masks


def probe(model_dir: Path, task: str, heads: list[int], ffn: list[int], hidden: int, seed: int, sentences: int) -> dict:
    import torch
    import torch.nn.functional as F

    import auxprune
    from auxprune.surgery import cut

    model, tokenizer = auxprune.load(model_dir)
    model.eval()
    if len(heads) != model.config.num_hidden_layers or len(ffn) != model.config.num_hidden_layers:
        sys.exit(f"cut_probe: --heads and --ffn need {model.config.num_hidden_layers} values (one per layer)")
    texts = dev_sentences(task, sentences, DATA)
    batch = dict(tokenizer(texts, padding=True, return_tensors="pt"))
    batch.pop("token_type_ids", None)
    mask = batch["attention_mask"].unsqueeze(-1).float()

    def states(encoder, gates=None):
        out = encoder(**batch, gates=gates) if gates is not None else encoder(**batch)
        return out[0] if isinstance(out, tuple) else out.last_hidden_state

    def embeddings(h):
        return F.normalize((h * mask).sum(1) / mask.sum(1), dim=-1)

    masks = structure_masks(model, heads, ffn, hidden, seed)
    row = {"model_dir": display(model_dir), "task": task, "heads": heads, "ffn": ffn, "hidden": hidden, "seed": seed,
           "sentences": len(texts)}
    with torch.no_grad():
        kept = masks.keep["hidden"].nonzero().squeeze(-1)
        gated = states(model.encoder, masks.as_gates())[..., kept]
        row["surgery_max_abs_diff"] = float((states(cut(model, masks).eval().encoder) - gated).abs().max())
        row["output_scale"] = float(gated.abs().max())
        for name, with_hidden in (("without_hidden_gate", False), ("with_hidden_gate", True)):
            m = copy.deepcopy(masks)
            if not with_hidden:
                m.keep["hidden"][:] = True
                m.values["hidden"][:] = 1.0
            index = m.keep["hidden"].nonzero().squeeze(-1)
            cut_embeddings = embeddings(states(cut(model, m).eval().encoder))
            trained = copy.deepcopy(m)
            trained.keep["attn_block"][:] = True  # as CoFi's view sees it: the sublayers with no heads keep their LayerNorm
            trained.keep["ffn_block"][:] = True
            cosine = (cut_embeddings * embeddings(states(model.encoder, trained.as_gates())[..., index])).sum(-1)
            row[name] = {"mean_cosine": round(float(cosine.mean()), 4), "min_cosine": round(float(cosine.min()), 4),
                         "max_cosine": round(float(cosine.max()), 4)}
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path, help="a dense model folder auxprune saved (a run's teacher/)")
    parser.add_argument("--task", required=True, help="whose dev sentences to run (e.g. glue/stsb)")
    parser.add_argument("--heads", nargs="+", type=int, required=True, help="heads kept per layer")
    parser.add_argument("--ffn", nargs="+", type=int, required=True, help="FFN units kept per layer")
    parser.add_argument("--hidden", type=int, required=True, help="hidden dimensions kept")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sentences", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    command = shlex.join(["python", "bench/cut_probe.py", *sys.argv[1:]])
    row = probe(args.model_dir, args.task, args.heads, args.ffn, args.hidden, args.seed, args.sentences)
    add_record(RESULTS, {**row, "command": command}, command,
               lambda r: (r["model_dir"], r["task"], tuple(r["heads"]), tuple(r["ffn"]), r["hidden"], r["seed"]),
               {"protocol": "module docstring of bench/cut_probe.py", "machine": machine()})
    print(f"surgery: largest difference {row['surgery_max_abs_diff']:.2e} (outputs up to {row['output_scale']:.2f}); "
          f"cut against pruning's view, cosine of sentence embeddings: without the hidden gate "
          f"{row['without_hidden_gate']['mean_cosine']:.3f}, with it {row['with_hidden_gate']['mean_cosine']:.3f}")


if __name__ == "__main__":
    main()
