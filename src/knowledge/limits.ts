/** How much knowledge a tenant may have; plain numbers, so importing them builds no schema. */
/** Characters of a document's content; a request body is also bounded by MAX_BODY_BYTES (64 KiB by default). */
export const MAX_DOCUMENT_CHARS = 60_000;
/** Pairs of one Q&A source. */
export const MAX_PAIRS = 200;
/** Bytes read from a fetched URL; a longer page fails its source. */
export const MAX_FETCH_BYTES = 1_000_000;
/** Chunks one source may produce; a longer text fails its source. */
export const MAX_CHUNKS_PER_SOURCE = 2_000;
/** Sources one tenant may have. */
export const MAX_SOURCES_PER_TENANT = 500;
