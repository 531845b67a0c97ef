"""Constants shared by tests (importable because tests/ is on sys.path via conftest)."""

TINY_ENCODER_JSON = (
    '{"family": "encoder", "num_layers": 2, "hidden_size": 48, "num_heads": 3, "num_kv_heads": 3,'
    ' "head_dim": 16, "intermediate_size": 100, "vocab_size": 90, "max_position": 32,'
    ' "type_vocab_size": 2}'
)
