/** Strings an attacker tries first: SQL, markup, templates, paths, control and bidi characters. */
export const INJECTIONS = [
  "'; drop table tenants; --",
  '" or 1=1 --',
  "<script>alert(1)</script>",
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a template-injection probe, on purpose.
  "${7*7}",
  "../../../../etc/passwd",
  "\u0000\u0001\u0002",
  "\ud83d\ude00\u202e\u200b",
  "%00%0d%0aSet-Cookie: x=1",
  "{{constructor.constructor('return 1')()}}",
  "__proto__",
];
