"""Recipes: one runnable file per reproduced result (``flowgrad train <name>``). Each writes
``<name>.md``, ``<name>.json`` and its figures, with the published number beside ours, into
its own run directory (``runs/<name>-<time>/``), or into ``results/`` with ``--publish``; each
has a ``quick`` variant that the tests run to show it learns."""

from __future__ import annotations

import importlib

RECIPES = {
    "digits_mlp": "MLP on scikit-learn's bundled 8x8 digits (the embedded default, no download)",
    "mnist_mlp": "MNIST: Simard et al. (2003)'s MLP 784-800-10 vs their 1.6%, and a modern "
                 "784-800-800-10 ReLU MLP (no published counterpart)",
    "mnist_cnn": "MNIST: LeNet-5 (LeCun et al. 1998) vs its 0.95%, and a modern 3x3-conv CNN "
                 "(no published counterpart)",
    "fashion_mnist": "Fashion-MNIST: the modern CNN and MLP, test errors side by side",
    "mnist1d": "MNIST-1D (Greydanus 2020): logistic regression, MLP, CNN vs the official run",
    "relu_vs_tanh": "Deep MLP with ReLU vs tanh vs sigmoid (Glorot, Bordes & Bengio 2011)",
    "debug_checks": "The slide \"Debugging\" as checks (determinism, model gradcheck, overfit a "
                    "small set, anomaly mode, flow graph): healthy models vs planted bugs",
    "debug_stats": "Weight/gradient statistics and learning curves on MNIST-1D: vanishing "
                   "gradients, saturation, over/underfitting verdicts",
    "validate_analyze": "Validate and Analyze on MNIST-1D: capacity sweep, learning curve, "
                        "scikit-learn baselines, confusion, worst examples, significance",
    "noise_injection": "Plain SGD vs annealed gradient noise on a deep narrow net",
    "curriculum": "Curriculum (BasicShapes then GeomShapes) vs none (Bengio et al. 2009)",
    "guided_training": "Guided training with an intermediate concept (Gulcehre & Bengio 2013)",
    "saddle_points": "Hessian spectrum along training: early critical points are saddles",
    "backprop_cost": "Gradient cost by backprop, O(n), vs finite differences, O(n^2)",
    "ptb_lstm": "Penn Treebank: Zaremba et al. (2014)'s small 2x200 LSTM, no dropout, vs "
                "their 114.5 test perplexity (also WikiText-2)",
    "ptb_ngram": "Penn Treebank: Kneser-Ney 3/4/5-gram and interpolated trigram vs Mikolov's "
                 "KN5 141.2; optionally the feed-forward NPLM (vs 140.2)",
    "brown_nplm": "Brown corpus: Bengio et al. (2003)'s neural probabilistic language model "
                  "variants and mixtures vs n-grams (their Table 1), embeddings analysed",
    "teacher_forcing": "Compounding error of free running vs teacher forcing; scheduled sampling",
    "long_term_dependencies": "Latching one bit vs T (tanh RNN, LSTM, GRU), Jacobian "
                              "products, gradient clipping (Bengio et al. 1994)",
    "memory_recall": "Neural Turing Machine vs a same-size LSTM on copy (Graves et al. 2014)",
    "meta_transfer": "Meta-transfer objective (Bengio et al. 2019): adaptation speed, gamma",
    "scan": "SCAN (Lake & Baroni 2018): RNN, attention and transformer seq2seq vs syntactic "
            "attention (Russin et al. 2019) on the simple, length and add-primitive splits",
    "seq2seq_length": "Reversal beyond the training lengths: RNN encoder-decoder vs additive "
                      "attention (Bahdanau, Cho & Bengio 2015, Fig. 2)",
    "transformer_lm": "PTB or WikiText-2: a GPT-style causal transformer language model beside "
                      "the LSTM of ptb_lstm",
    "sachs_structure": "Sachs et al. (2005) flow cytometry: NOTEARS, PC, GES, SDI vs the consensus",
    "sdi": "SDI (Ke et al. 2019): causal graphs from unknown interventions, Tables 1 and 2",
    "dcgan": "DCGAN vs MLP GAN on (Fashion-)MNIST: feature Fréchet distances, real floor",
    "conditional_gan": "Conditional MLP GAN and DCGAN on MNIST: samples classified as class",
    "gan_ring": "GAN on a ring of 8 Gaussians: modes covered, minimax vs non-saturating loss",
    "gan_mnist": "MNIST: Goodfellow et al. (2014)'s adversarial nets, Parzen log-likelihood vs 225",
    "nce": "NCE (Gutmann & Hyvärinen 2010, 2012): consistency over ν; a 2-D mixture by an MLP",
    "zero_shot": "Zero-shot Fashion-MNIST classes via a joint image-description embedding (WARP)",
    "distributed_codes": "Distributed vs local codes: unseen attribute combinations, examples vs m",
    "family_trees": "Hinton's family trees: TransE/RESCAL/DistMult link prediction, embeddings",
    "linear_regions": "Linear regions vs depth at fixed units (Montúfar et al. 2014); tent map",
    "data_fusion": "Deep data fusion: a digit image with a context tiled at all positions",
    "concept_units": "Object-detector units in a scene classifier vs random weights (dissection)",
    "multitask_tagging": "Brown POS tags: multitask (tagging + ranking LM) vs single-task tagger",
    "rims_copying": "Copying (RIMs Table 1): RIMs vs a same-size LSTM at 4x the training length",
    "scoff_adding": "Adding k values (SCOFF Table 1): LSTM, RIMs and SCOFF at length 200",
    "rims_seq_mnist": "Sequential MNIST at 16/19/24 after 14x14 (RIMs Table 2): RIMs vs LSTM",
    "workspace_triangles": "Equilateral triangles: transformer with/without a shared workspace",
    "bouncing_balls": "Bouncing balls (SCOFF Fig. 5): LSTM/RIMs/SCOFF rollouts, 4 and 6-8 balls",
    "fourroom": "MiniGrid FourRooms (shared workspace paper's table): PPO agents with LSTM, "
                "RIMs, RIMs + shared workspace and RMC memory, final success rates",
    "sort_of_clevr": "Sort-of-CLEVR: transformer with/without a shared workspace (TR, TR+HSW, "
                     "TR+SSW), non-relational, binary and ternary questions",
}


def get(name: str):
    """The recipe module ``name`` (it has ``DEFAULTS`` and ``run(**options)``)."""
    if name not in RECIPES:
        raise KeyError(f"unknown recipe {name!r}; available: {', '.join(RECIPES)}")
    return importlib.import_module(f"{__name__}.{name}")
