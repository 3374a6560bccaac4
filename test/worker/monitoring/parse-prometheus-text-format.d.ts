/** The parser ships no types: it returns prom2json's shape (checked field by field in the test). */
declare module "parse-prometheus-text-format" {
  export default function parsePrometheusTextFormat(text: string): unknown[];
}
