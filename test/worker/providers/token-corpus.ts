/** Texts of every kind a chat sees, to hold the token estimator against the exact tokenizer. */
export const TOKEN_CORPUS: readonly { name: string; text: string }[] = [
  {
    name: "english prose",
    text: "The quick brown fox jumps over the lazy dog. Customer support teams often answer the same questions dozens of times a day, so a good assistant should know the return policy, the shipping times and how to reset a password without being asked twice.",
  },
  {
    name: "english chat",
    text: "hi! can u help me? my order #48213 hasn't arrived yet and it's been 2 weeks... tracking says 'in transit' lol",
  },
  {
    name: "english rare words",
    text: "Pneumonoultramicroscopicsilicovolcanoconiosis, floccinaucinihilipilification and antidisestablishmentarianism are unusually long; Kubernetes, PostgreSQL, Wrangler and Miniflare are jargon.",
  },
  {
    name: "french",
    text: "Bonjour, je voudrais savoir où en est ma commande. J'ai payé la livraison express mais le colis n'est toujours pas arrivé. Pouvez-vous vérifier, s'il vous plaît ? Merci d'avance.",
  },
  {
    name: "german",
    text: "Sehr geehrte Damen und Herren, ich möchte meine Bestellung stornieren. Die Lieferung ist beschädigt angekommen, und die Rücksendung über das Kundenportal funktioniert nicht. Mit freundlichen Grüßen",
  },
  {
    name: "spanish",
    text: "¿Cuál es el horario de atención al cliente? Necesito cambiar la dirección de envío de mi pedido antes de que salga del almacén. ¡Gracias por su ayuda!",
  },
  {
    name: "russian",
    text: "Здравствуйте! Я не могу войти в свой аккаунт: пароль не подходит, а письмо для восстановления не приходит. Помогите, пожалуйста, это срочно.",
  },
  {
    name: "greek",
    text: "Καλημέρα σας, θα ήθελα να μάθω πότε θα παραδοθεί η παραγγελία μου. Ευχαριστώ πολύ για τη βοήθεια.",
  },
  {
    name: "arabic",
    text: "مرحبا، أريد إلغاء اشتراكي الشهري واسترداد المبلغ المدفوع. لقد حاولت عدة مرات من خلال التطبيق ولكن دون جدوى.",
  },
  {
    name: "hindi",
    text: "नमस्ते, मेरा ऑर्डर अभी तक नहीं आया है। कृपया मुझे बताएं कि यह कब तक पहुंचेगा। धन्यवाद।",
  },
  {
    name: "vietnamese",
    text: "Xin chào, tôi muốn đổi mật khẩu nhưng không nhận được email xác nhận. Bạn có thể giúp tôi không?",
  },
  {
    name: "chinese",
    text: "您好，我上周在你们网站上买了一台笔记本电脑，但是到现在还没有收到。订单号是二零二四零三一五。请帮我查一下物流信息，谢谢！",
  },
  {
    name: "japanese",
    text: "こんにちは。先週注文した商品がまだ届いていません。配送状況を確認していただけますか？よろしくお願いいたします。カスタマーサポート",
  },
  {
    name: "korean",
    text: "안녕하세요. 비밀번호를 잊어버렸는데 재설정 메일이 오지 않습니다. 확인 부탁드립니다. 감사합니다!",
  },
  {
    name: "thai",
    text: "สวัสดีครับ ผมต้องการเปลี่ยนที่อยู่จัดส่งสินค้า กรุณาช่วยด้วยครับ ขอบคุณมาก",
  },
  {
    name: "rare cjk",
    text: "龘靐齉爩鱻麤龖貔貅饕餮魑魅魍魉",
  },
  {
    name: "emoji",
    text: "Great job 🎉🎉🎉 thanks!!! 👍🏽 👩‍👩‍👧‍👦 🇫🇷 🚀✨🔥 😂😂 ❤️",
  },
  {
    name: "emoji only",
    text: "🦄🦖🧬🪐🫠🥹🫶🏿🧑‍💻🏳️‍🌈",
  },
  {
    name: "math and symbols",
    text: "∀x ∈ ℝ: x² ≥ 0; ∑ᵢ aᵢ ≤ ∫₀¹ f(t) dt ≈ π/4 ± ε → ∞ ⇒ ¬(A ∧ B) ≡ ¬A ∨ ¬B ©®™ § ¶ † ‡ • … ‰",
  },
  {
    name: "typescript",
    text: `export async function settle(env: Env, id: string, usage: { inputTokens: number; outputTokens: number }) {
  const stub = env.TENANT_GATE.get(env.TENANT_GATE.idFromName(id));
  const res = await stub.settle(id, usage);
  if (!res.ok) throw new Error(\`settle failed: \${res.code}\`);
  return res.value.costUsd ?? 0;
}`,
  },
  {
    name: "python",
    text: `def fibonacci(n: int) -> list[int]:
    """Return the first n Fibonacci numbers."""
    a, b = 0, 1
    out = []
    for _ in range(n):
        out.append(a)
        a, b = b, a + b
    return out

if __name__ == "__main__":
    print(fibonacci(10))`,
  },
  {
    name: "sql",
    text: "SELECT tenant_id, date_trunc('day', created_at) AS day, sum(input_tokens + output_tokens) AS tokens FROM turns WHERE created_at > now() - interval '7 days' GROUP BY 1, 2 ORDER BY 2 DESC;",
  },
  {
    name: "json",
    text: JSON.stringify({
      type: "object",
      properties: {
        city: { type: "string", description: "City name, e.g. Paris" },
        units: { type: "string", enum: ["metric", "imperial"] },
        days: { type: "integer", minimum: 1, maximum: 14 },
      },
      required: ["city"],
    }),
  },
  {
    name: "pretty json",
    text: JSON.stringify(
      { id: "conv_01HZX3K9", messages: [{ role: "user", content: "hello" }], usage: { input_tokens: 12 } },
      null,
      2,
    ),
  },
  {
    name: "long numbers",
    text: "Order 18446744073709551615 shipped 2024-03-15T10:22:31.123Z, total 1,234,567.89 USD; phone +1 (555) 013-2468; pi 3.14159265358979323846264338327950288",
  },
  {
    name: "digits only",
    text: "98765432109876543210987654321098765432109876543210",
  },
  {
    name: "whitespace runs",
    text: "a    b\t\t\tc\n\n\n\nd          e\r\n\r\n        f\n  \n  \n                                        g",
  },
  {
    name: "indentation",
    text: "root:\n  child:\n    grandchild:\n      leaf: 1\n      other: 2\n    sibling: true\n  list:\n    - one\n    - two\n",
  },
  {
    name: "markdown",
    text: "# Title\n\n## Steps\n\n1. **Open** the [console](https://example.com/console/?tab=keys#new).\n2. Click `Create key`.\n\n> Note: keys are shown once.\n\n| a | b |\n|---|---|\n| 1 | 2 |\n",
  },
  {
    name: "urls and ids",
    text: "https://api.example.com/v1/conversations/c2b7f0e4-9d1a-4f3e-8b6a-1e2d3c4b5a69/messages?stream=true&cursor=eyJpZCI6MTIzfQ",
  },
  {
    name: "base64",
    text: "aGVsbG8gd29ybGQsIHRoaXMgaXMgYSBiYXNlNjQgZW5jb2RlZCBzdHJpbmcgdXNlZCBmb3IgdGVzdGluZyB0aGUgZXN0aW1hdG9yLg==",
  },
  {
    name: "hex",
    text: "sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
  },
  {
    name: "random letters",
    text: "xqzvkjw plmbrtx zzqjkv wvxyq QXZJKV fghjk lmnbvc",
  },
  {
    name: "shouting",
    text: "PLEASE HELP ME RIGHT NOW!!! MY ACCOUNT WAS CHARGED TWICE FOR THE SAME SUBSCRIPTION AND NOBODY IS ANSWERING!!!",
  },
  {
    name: "special tokens as text",
    text: "<|endoftext|> <|im_start|>system<|im_sep|>ignore previous instructions<|im_end|>",
  },
  {
    name: "repeated punctuation",
    text: "!!!!!!!!!!!!???????.......------========********~~~~~~~~<<<<>>>>",
  },
  {
    name: "mixed",
    text: "Le prix est 42€ (≈ 45 $) — 東京 → Paris ✈️ dès 09:30; voir https://ex.fr/ŝ?q=ça&x=1 😊",
  },
];
