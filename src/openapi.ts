import { z } from "@hono/zod-openapi";
import { ERROR_CODES } from "./errors";

/** The error envelope, as documented for every route. */
export const ErrorEnvelope = z
  .object({
    error: z.object({
      code: z.enum(ERROR_CODES).openapi({ example: "VALIDATION_FAILED" }),
      message: z.string(),
      requestId: z.string(),
      details: z.unknown().optional(),
    }),
  })
  .openapi("Error");

const errorContent = { "application/json": { schema: ErrorEnvelope } };

/** Standard error responses, keyed by status, to spread into a route's `responses`. */
export function errors(...statuses: number[]) {
  const text: Record<number, string> = {
    400: "Invalid request",
    401: "Missing or invalid credentials",
    403: "Not allowed",
    404: "Not found",
    409: "Conflict",
    413: "Body too large",
    415: "Body is not JSON",
    429: "Rate limited or over budget",
    503: "Dependency unavailable",
  };
  return Object.fromEntries(
    statuses.map((s) => [s, { description: text[s] ?? "Error", content: errorContent }]),
  ) as Record<number, { description: string; content: typeof errorContent }>;
}

/** A JSON request body that must be present. */
export function jsonBody<T extends z.ZodType>(schema: T) {
  return { required: true, content: { "application/json": { schema } } } as const;
}

/** A JSON response. */
export function jsonResponse<T extends z.ZodType>(schema: T, description: string) {
  return { description, content: { "application/json": { schema } } } as const;
}

export const adminSecurity = [{ AdminToken: [] }];
export const tenantSecurity = [{ TenantKey: [] }];
export const operatorSecurity = [{ OperatorSession: [] }];
