"""Tokenizer, fast encoder, FIM, repo-level format, packing and the token shard format.

The token shard format (read by training/ without Dagster) is documented in
:mod:`corpus.tokenize.format`.
"""

from corpus.tokenize.format import FORMAT, TokenShards, TokenShardWriter
from corpus.tokenize.tokenizer import SPECIAL_TOKENS, TokenizerError, load_tokenizer, train_bpe

__all__ = ["FORMAT", "SPECIAL_TOKENS", "TokenShardWriter", "TokenShards", "TokenizerError", "load_tokenizer",
           "train_bpe"]
