// Shared by the estimator (tokens.ts) and the script that trains its tables (local/token-tables.ts).

/** o200k_base's pre-tokenizer: words with their leading space or mark, 1-3 digits, punctuation, spaces. */
export const PIECE =
  /[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?:'(?:[sS]|[dD]|[mM]|[tT]|[lL][lL]|[vV][eE]|[rR][eE]))?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?:'(?:[sS]|[dD]|[mM]|[tT]|[lL][lL]|[vV][eE]|[rR][eE]))?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+/gu;
/** The ASCII punctuation marks, in the order of PUNCT_PAIRS. */
export const PUNCT = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
