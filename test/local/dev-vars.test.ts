import { parseEnv } from "node:util";
import { describe, expect, it } from "vitest";
import {
  envFileText,
  FORWARDED_VARS,
  forwardedVars,
  LAUNCHER_VARS,
  modelSummary,
  parseDevVars,
  WRANGLER_VARS,
} from "../../local/dev-vars.ts";
import { EnvSchema } from "../../src/env.ts";

describe("the settings npm run dev hands the worker", () => {
  it("covers every EnvSchema key: set by the launcher, by wrangler.jsonc or forwarded, once", () => {
    const covered = [...LAUNCHER_VARS, ...WRANGLER_VARS, ...FORWARDED_VARS];
    expect(new Set(covered).size).toBe(covered.length);
    expect([...covered].sort()).toEqual(Object.keys(EnvSchema.shape).sort());
  });

  it("takes the environment over .dev.vars, and .dev.vars where the environment says nothing", () => {
    const devVars = parseDevVars(
      [
        "# a comment",
        'OPENAI_API_KEY="sk-from-file"',
        "ANTHROPIC_API_KEY=sk-ant-file",
        "PROVIDER_TIMEOUT_MS=5000",
        "UNRELATED=1",
        "NOTIFY_QUEUE_NAME=elsewhere",
      ].join("\n"),
    );
    const { vars, notes } = forwardedVars({ OPENAI_API_KEY: "sk-from-env", HOME: "/root" }, devVars);
    expect(vars).toEqual({
      OPENAI_API_KEY: "sk-from-env",
      ANTHROPIC_API_KEY: "sk-ant-file",
      PROVIDER_TIMEOUT_MS: "5000",
    });
    expect(notes).toEqual([]);
  });

  it("lets an empty environment variable switch a .dev.vars key off", () => {
    const { vars } = forwardedVars({ OPENAI_API_KEY: "" }, { OPENAI_API_KEY: "sk-file" });
    expect(vars).toEqual({});
  });

  it("forwards the key variables OPENAI_COMPAT_PROVIDERS names, from either source", () => {
    const compat = JSON.stringify({
      groq: { baseUrl: "https://api.groq.com/openai/v1", apiKeyVar: "GROQ_API_KEY" },
      together: { baseUrl: "https://api.together.xyz/v1", apiKeyVar: "TOGETHER_API_KEY" },
      ollama: { baseUrl: "http://127.0.0.1:11434/v1" },
    });
    const { vars } = forwardedVars(
      { OPENAI_COMPAT_PROVIDERS: compat, GROQ_API_KEY: "gsk-env" },
      { OTHER_KEY: "x" },
    );
    expect(vars).toEqual({ OPENAI_COMPAT_PROVIDERS: compat, GROQ_API_KEY: "gsk-env" });
    expect(modelSummary(vars)).toBe(
      "models: mock, mock-slow; gpt-*, o* need OPENAI_API_KEY; claude-* needs ANTHROPIC_API_KEY; " +
        "groq/* (GROQ_API_KEY set); together/* needs TOGETHER_API_KEY; ollama/* (no key needed)",
    );
  });

  it("forwards a malformed OPENAI_COMPAT_PROVIDERS as it is, for the worker to refuse by name", () => {
    const { vars } = forwardedVars({ OPENAI_COMPAT_PROVIDERS: "{not json" }, {});
    expect(vars).toEqual({ OPENAI_COMPAT_PROVIDERS: "{not json" });
    expect(modelSummary(vars)).toBe(
      "models: mock, mock-slow; gpt-*, o* need OPENAI_API_KEY; claude-* needs ANTHROPIC_API_KEY",
    );
  });

  it("ignores, and says so, what .dev.vars sets that the launcher sets itself", () => {
    const { vars, notes } = forwardedVars({}, { DATABASE_URL: "postgres://elsewhere/db", ADMIN_TOKEN: "x" });
    expect(vars).toEqual({});
    expect(notes).toEqual([
      ".dev.vars sets DATABASE_URL: ignored, npm run dev sets it itself",
      ".dev.vars sets ADMIN_TOKEN: ignored, npm run dev sets it itself",
    ]);
  });

  it("says which models work when keys are set", () => {
    expect(modelSummary({ OPENAI_API_KEY: "sk", ANTHROPIC_API_KEY: "sk-ant" })).toBe(
      "models: mock, mock-slow; gpt-*, o* (OPENAI_API_KEY set); claude-* (ANTHROPIC_API_KEY set)",
    );
  });

  it("writes an env file wrangler reads back unchanged, JSON and quotes included", () => {
    const vars = {
      OPENAI_COMPAT_PROVIDERS: JSON.stringify({ groq: { baseUrl: "https://api.groq.com/openai/v1" } }),
      NOTIFY_WEBHOOK_SECRET: `it's a "secret"`,
      EMAIL_FROM: "bot@example.com",
      PATHISH: "C:\\dir\\n 'x'",
    };
    expect(parseEnv(envFileText(vars))).toEqual(vars);
    expect(wranglerParse(envFileText(vars))).toEqual(vars);
    expect(() => envFileText({ BAD: `'\`"` })).toThrow("BAD: its value holds every kind of quote");
  });
});

/** wrangler's own env-file parser (dotenv's, bundled in wrangler-dist/cli.js), for the round trip. */
function wranglerParse(src: string): Record<string, string> {
  const LINE =
    /(?:^|^)\s*(?:export\s+)?([\w.-]+)(?:\s*=\s*?|:\s+?)(\s*'(?:\\'|[^'])*'|\s*"(?:\\"|[^"])*"|\s*`(?:\\`|[^`])*`|[^#\r\n]+)?\s*(?:#.*)?(?:$|$)/gm;
  const out: Record<string, string> = {};
  for (const m of src.replace(/\r\n?/gm, "\n").matchAll(LINE)) {
    let value = (m[2] ?? "").trim();
    const quote = value[0];
    value = value.replace(/^(['"`])([\s\S]*)\1$/gm, "$2");
    if (quote === '"') value = value.replace(/\\n/g, "\n").replace(/\\r/g, "\r");
    out[m[1] as string] = value;
  }
  return out;
}
