/**
 * PII redaction (src/privacy/redact.ts): its cost per message on the hot path, and what it finds in
 * ordinary prose (the repository's docs and README), every hit printed for review.
 * Usage: bash scripts/node.sh node bench/redaction.ts
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { redact, redactorOf } from "../src/privacy/redact.ts";

const root = join(import.meta.dirname, "..");
const files = [
  "README.md",
  ...readdirSync(join(root, "docs"))
    .filter((f) => f.endsWith(".md"))
    .map((f) => `docs/${f}`),
];
// Prose only: fenced code blocks are not what visitors write.
const lines = files.flatMap((f) =>
  readFileSync(join(root, f), "utf8")
    .split(/^```[\s\S]*?^```/m)
    .join("\n")
    .split("\n")
    .filter((l) => l.trim().length > 0),
);

const hits: string[] = [];
for (const line of lines) {
  const out = redact(line);
  if (out !== line) hits.push(`${line.trim()}\n  -> ${out.trim()}`);
}
// The harsher corpus: the code blocks too (commands, JSON, SQL, tables of numbers).
const everything = files
  .flatMap((f) => readFileSync(join(root, f), "utf8").split("\n"))
  .filter((l) => l.trim());
const codeHits = everything
  .filter((l) => redact(l) !== l)
  .map((l) => `${l.trim()}\n  -> ${redact(l).trim()}`);

const messages = [
  "Hi, where is my order? It was supposed to arrive on 2024-05-01.",
  "My order number is 123456789 and I paid 49.99 EUR, can you check the status please?",
  "You can reach me at jane.doe@example.com or +44 20 7946 0958 after 5pm.",
  "I want to return the blue jacket I bought last week, size M, it does not fit.",
  "Please refund to DE89 3704 0044 0532 0130 00, card was 4242 4242 4242 4242.",
  "ok thanks",
  "Can you explain the difference between the premium plan and the basic plan in a few sentences? I am trying to decide which one to buy for my small team of five people.",
];
const tenant = redactorOf({
  redactPatterns: ["\\bCUST-\\d{6}\\b", "member no\\.? \\w{4,8}"],
  redactBeforeModel: false,
});

function perMessageMicros(fn: (m: string) => string): number {
  const rounds = 20_000;
  for (let i = 0; i < 2_000; i++) for (const m of messages) fn(m);
  const t0 = performance.now();
  let sink = 0;
  for (let i = 0; i < rounds; i++) for (const m of messages) sink += fn(m).length;
  const ms = performance.now() - t0;
  if (sink < 0) console.log(sink);
  return (ms * 1000) / (rounds * messages.length);
}

const chars = messages.reduce((n, m) => n + m.length, 0) / messages.length;
console.log(`corpus: ${files.length} files, ${lines.length} prose lines`);
console.log(
  `lines changed by redaction: ${hits.length} (${((100 * hits.length) / lines.length).toFixed(2)}%)`,
);
for (const h of hits) console.log(`- ${h}`);
console.log(`with code blocks: ${everything.length} lines, ${codeHits.length} changed`);
for (const h of codeHits) console.log(`- ${h}`);
console.log(`messages: ${messages.length}, ${chars.toFixed(0)} characters on average`);
console.log(`baseline (string copy): ${perMessageMicros((m) => m.slice(0)).toFixed(3)} µs/message`);
console.log(`built-in kinds: ${perMessageMicros((m) => redact(m)).toFixed(3)} µs/message`);
console.log(
  `built-in + 2 tenant patterns: ${perMessageMicros((m) => redact(m, tenant)).toFixed(3)} µs/message`,
);
