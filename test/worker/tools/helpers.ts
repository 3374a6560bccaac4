/** A valid tool definition, with overrides: what POST /v1/tools accepts. */
export function toolBody(name: string, overrides: Record<string, unknown> = {}) {
  return {
    name,
    description: "Looks up an order by its number",
    parameters: {
      type: "object",
      properties: { order_id: { type: "string", description: "The order number" } },
      required: ["order_id"],
    },
    target: { kind: "https", url: "https://tools.example.com/orders" },
    ...overrides,
  };
}
