import OpenAI from "openai";

// Your worker's /v1 and one of the tenant's secret keys (sk_...: the console's Keys tab, or
// POST /admin/tenants/{id}/keys). A secret key belongs on servers; browsers get the widget's pk_ key.
const client = new OpenAI({
  baseURL: `${process.env.CHATEDGE_URL}/v1`, // e.g. https://chat.example.com
  apiKey: process.env.CHATEDGE_SECRET_KEY,
  maxRetries: 0, // hand every 429 to askOrWait below; by default the SDK retries twice itself
});
// The tenant's model, or one of its allowed_models; `client.models.list()` names them.
const model = process.env.CHATEDGE_MODEL ?? "gpt-4o-mini";

/** One whole answer. `user` is your end user: rate limits and A/B variants are per user. */
export async function ask(question: string, user: string): Promise<string> {
  const res = await client.chat.completions.create({
    model,
    user,
    messages: [{ role: "user", content: question }],
  });
  return res.choices[0]?.message.content ?? "";
}

/** The same, streamed: each piece of text as it comes, then the turn's token usage. */
export async function askStreaming(question: string, user: string, onText: (text: string) => void) {
  const stream = await client.chat.completions.create({
    model,
    user,
    stream: true,
    stream_options: { include_usage: true },
    messages: [{ role: "user", content: question }],
  });
  let usage: OpenAI.CompletionUsage | null | undefined;
  for await (const chunk of stream) {
    onText(chunk.choices[0]?.delta?.content ?? "");
    usage = chunk.usage ?? usage;
  }
  return usage;
}

/** A rate limit or a spent budget is HTTP 429, which the SDK throws as OpenAI.RateLimitError. */
export async function askOrWait(question: string, user: string): Promise<string> {
  try {
    return await ask(question, user);
  } catch (err) {
    if (!(err instanceof OpenAI.RateLimitError)) throw err;
    // code "rate_limit_exceeded" with param "user", "tenant" or "global" (whose limit), or
    // "insufficient_quota" with param the budget ("monthly_tokens", ...). Retry-After: when to retry.
    return `Busy (${err.code}: ${err.param}), try again in ${err.headers.get("retry-after")} s.`;
  }
}
