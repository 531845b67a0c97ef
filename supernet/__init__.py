"""How weights are shared and trained: SuperLMs for encoders and decoders, distillation losses,
the training loop, and extraction of a sub-network into a stock HF model."""
